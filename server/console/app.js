// app.js - the console's entry: one page (index.html) whose script draws what the URL says, so
// every page has its own address and survives a reload. It talks to cofferd only through the
// Connect API (connect.js), same origin, with the session cookie the server sets at sign-in: no
// token or value is ever kept in the page's storage or put in a URL.
const page = document.getElementById("page");

// The routes of docs/console.md: a path pattern and the function that draws its page.
const routes = [
  [/^\/$/, signIn],
];

function route(path) {
  for (const [pattern, draw] of routes) {
    const m = pattern.exec(path);
    if (m) return () => draw(...m.slice(1).map(decodeURIComponent));
  }
  return notFound;
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  // text only: values and descriptions are never parsed as HTML
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function show(...nodes) {
  page.replaceChildren(...nodes);
  page.focus();
}

// The sign-in page: a person's token (admin, editor or viewer) in the field "Token".
function signIn() {
  document.title = "Sign in · Coffer";
  const token = el("input", { id: "token", type: "password", autocomplete: "off", spellcheck: "false" });
  const message = el("p", { role: "alert", class: "error" });
  const form = el("form", { class: "card", "aria-labelledby": "signin-title" },
    el("h1", { id: "signin-title" }, "Sign in to Coffer"),
    el("label", { for: "token" }, "Token"),
    token,
    el("p", { class: "muted" }, "An admin, editor or viewer token. It is exchanged for a session and not kept in this page."),
    el("button", { type: "submit" }, "Sign in"),
    message);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    message.textContent = "Signing in is not served by this cofferd yet.";
    token.value = "";
  });
  show(form);
}

function notFound() {
  document.title = "Not found · Coffer";
  show(el("h1", {}, "Not found"), el("p", {}, el("a", { href: "/" }, "Back to the projects")));
}

route(location.pathname)();
