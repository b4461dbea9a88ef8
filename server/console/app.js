// app.js - the console's entry: one page (index.html) whose script draws what the URL says, so
// every page has its own address and survives a reload. It talks to cofferd only through the
// Connect API (connect.js), same origin, with the session cookie the server sets at sign-in: no
// token or value is ever kept in the page's storage or put in a URL. Values and descriptions are
// written as text, never parsed as HTML.
import { call, stream, RpcError } from "/console/connect.js";
import "/components/secret-input.js";

const page = document.getElementById("page");
const who = document.getElementById("who");
// a revealed value shows this long, a copied one stays on the clipboard this long (the server's
// --console-reveal-seconds, told with the session)
const revealMs = () => (me?.revealSeconds || 30) * 1000;
let me = null; // the session: { token: {...}, expireTime, idleSeconds }
let watching = null; // the live updates of the page shown (an AbortController)

const S = "coffer.v1.Secrets", E = "coffer.v1.Environments", P = "coffer.v1.Projects";
const A = "coffer.v1.Access", SESSIONS = "coffer.console.v1.Sessions";

// ---- building blocks ----

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function show(title, ...nodes) {
  document.title = `${title} · Coffer`;
  page.replaceChildren(...nodes);
}

function go(path) {
  history.pushState(null, "", path);
  render();
}

function link(href, text, attrs = {}) {
  return el("a", { href, ...attrs, onclick: (e) => { e.preventDefault(); go(href); } }, text);
}

const role = () => me?.token?.role || "";
const canWrite = () => role() === "ROLE_ADMIN" || role() === "ROLE_EDITOR";
const isAdmin = () => role() === "ROLE_ADMIN";

function failure(err) {
  return el("p", { role: "alert", class: "error" }, err instanceof RpcError ? err.message : String(err));
}

// A modal dialog: its title, its body, and its buttons; resolves with the button's value.
function dialog(title, body, buttons) {
  return new Promise((resolve) => {
    const d = el("dialog", { "aria-labelledby": "dialog-title" });
    const close = (v) => { d.close(); d.remove(); resolve(v); };
    const form = el("form", { method: "dialog" },
      el("h2", { id: "dialog-title" }, title), body,
      el("p", { class: "error", role: "alert", id: "dialog-error" }),
      el("div", { class: "actions" }, buttons.map(([text, value, cls]) =>
        el("button", { type: value === "cancel" ? "button" : "submit", class: cls, value,
          onclick: value === "cancel" ? () => close(null) : undefined }, text))));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const value = e.submitter?.value;
      if (typeof d.onchoose === "function") {
        try {
          if ((await d.onchoose(value)) === false) return;
        } catch (err) {
          form.querySelector("#dialog-error").textContent = err.message;
          return;
        }
      }
      close(value);
    });
    d.addEventListener("cancel", () => close(null));
    d.append(form);
    document.body.append(d);
    d.showModal();
    dialog.current = d;
  });
}

function field(label, input) {
  const id = `f-${label.toLowerCase().replace(/\W+/g, "-")}`;
  input.id = id;
  return [el("label", { for: id }, label), input];
}

// The "⋯" menu of a row: a button named "More actions for NAME" and its items.
function moreMenu(name, items) {
  const menu = el("ul", { role: "menu", hidden: true, class: "menu", "aria-label": `Actions for ${name}` });
  const button = el("button", { type: "button", class: "quiet more", "aria-label": `More actions for ${name}`,
    "aria-haspopup": "menu", "aria-expanded": "false" }, "⋯");
  const close = () => { menu.hidden = true; button.setAttribute("aria-expanded", "false"); };
  for (const [text, act] of items) {
    menu.append(el("li", { role: "none" }, el("button", { type: "button", role: "menuitem",
      onclick: () => { close(); act(); } }, text)));
  }
  button.addEventListener("click", () => {
    const open = menu.hidden;
    document.querySelectorAll(".menu").forEach((m) => { m.hidden = true; });
    menu.hidden = !open;
    button.setAttribute("aria-expanded", String(open));
    if (open) menu.querySelector("[role=menuitem]")?.focus();
  });
  menu.addEventListener("keydown", (e) => { if (e.key === "Escape") { close(); button.focus(); } });
  return el("div", { class: "more-wrap" }, button, menu);
}

function when(ts) {
  return ts ? new Date(ts).toLocaleString() : "";
}

// ---- signing in and out ----

function signIn() {
  const token = el("input", { type: "password", autocomplete: "off", spellcheck: "false", required: true });
  const message = el("p", { role: "alert", class: "error" });
  const form = el("form", { class: "card", "aria-labelledby": "signin-title" },
    el("h1", { id: "signin-title" }, "Sign in to Coffer"),
    field("Token", token),
    el("p", { class: "muted" }, "An admin, editor or viewer token. It is exchanged for a session and not kept in this page."),
    el("button", { type: "submit" }, "Sign in"),
    message);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const secret = token.value.trim();
    token.value = "";
    try {
      const res = await fetch(`/${SESSIONS}/SignIn`, {
        method: "POST", credentials: "same-origin",
        headers: { Authorization: `Bearer ${secret}`, "Content-Type": "application/json" }, body: "{}",
      });
      const body = await res.json();
      if (!res.ok) throw new RpcError(body.code, body.message);
      me = body;
      render();
    } catch (err) {
      message.textContent = err.message;
    }
  });
  show("Sign in", form);
}

async function signOut() {
  try { await call(SESSIONS, "SignOut"); } catch { /* it has ended anyway */ }
  me = null;
  go("/");
}

function header() {
  who.replaceChildren(me ? el("span", {}, `${me.token.name} (${role().replace("ROLE_", "").toLowerCase()})`,
    " ", el("button", { type: "button", class: "quiet", onclick: signOut }, "Sign out")) : "");
}

// ---- projects ----

async function projects() {
  let list = [];
  try {
    list = isAdmin() ? (await call(P, "ListProjects", { pageSize: 500 })).projects || [] : [{ name: me.token.project }];
  } catch (err) {
    return show("Projects", el("h1", {}, "Projects"), failure(err));
  }
  const newProject = isAdmin() && el("button", { type: "button", onclick: async () => {
    const name = el("input", { required: true, autocomplete: "off" });
    const description = el("input", { autocomplete: "off" });
    const p = dialog("New Project", [...field("Name", name), ...field("Description", description)],
      [["Create", "create"], ["Cancel", "cancel", "quiet"]]);
    dialog.current.onchoose = () => call(P, "CreateProject", { name: name.value, description: description.value });
    if (await p) go(`/projects/${encodeURIComponent(name.value)}/secrets`);
  } }, "New Project");
  show("Projects", el("div", { class: "head" }, el("h1", {}, "Projects"), newProject),
    el("ul", { class: "projects" }, list.map((p) =>
      el("li", {}, link(`/projects/${encodeURIComponent(p.name)}/secrets`, p.name), " ",
        el("span", { class: "muted" }, p.description || "")))));
}

function tabs(p, current) {
  const items = [["Secrets", "secrets"], ["Environments", "environments"], ["Access", "access"], ["Audit", "audit"], ["Playground", "playground"]];
  return [el("p", { class: "crumbs" }, link("/", "Projects"), " / ", p),
    el("nav", { class: "tabs", "aria-label": "Settings" }, items.map(([text, slug]) =>
      link(`/projects/${encodeURIComponent(p)}/${slug}`, text, { "aria-current": slug === current ? "page" : undefined })))];
}

// ---- secrets ----

async function secretsPage(p) {
  let list;
  try {
    list = (await call(S, "ListSecrets", { project: p, pageSize: 500 })).secrets || [];
  } catch (err) {
    return show(p, ...tabs(p, "secrets"), failure(err));
  }
  const message = el("p", { role: "status", class: "muted" });
  const rows = list.map((s) => secretRow(p, s, message));
  const add = canWrite() && el("button", { type: "button", onclick: () => newSecret(p).then((n) => n && render()) }, "New Secret");
  show(`${p} · Secrets`, ...tabs(p, "secrets"), el("div", { class: "head" }, el("h1", {}, "Secrets"), add), message,
    el("table", {}, el("thead", {}, el("tr", {}, ["Name", "Value", "Visibility", "Description", "Updated", ""].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows)));
  live(p);
}

function secretRow(p, s, message) {
  const restricted = s.visibility === "VISIBILITY_RESTRICTED";
  const value = el("td", {});
  if (restricted) {
    value.append(el("span", { class: "muted" }, "Restricted"));
  } else {
    const text = el("span", { class: "value" });
    const button = el("button", { type: "button", class: "quiet", "aria-label": `Reveal ${s.name}` }, "••••••••");
    let timer = null;
    const hide = () => {
      clearTimeout(timer);
      text.textContent = "";
      button.textContent = "••••••••";
      button.setAttribute("aria-label", `Reveal ${s.name}`);
    };
    button.addEventListener("click", async () => {
      if (button.getAttribute("aria-label").startsWith("Hide")) return hide();
      try {
        const r = await call(S, "RevealSecret", { project: p, name: s.name });
        text.textContent = r.value || "";
        button.textContent = "Hide";
        button.setAttribute("aria-label", `Hide ${s.name}`);
        timer = setTimeout(hide, revealMs());
      } catch (err) {
        message.textContent = `Cannot reveal ${s.name}: ${err.message}`;
      }
    });
    value.append(button, " ", text);
  }
  const actions = [];
  if (canWrite()) actions.push(["Edit", () => editSecret(p, s).then((ok) => ok && render())]);
  if (!restricted && canWrite()) actions.push(["Copy value", () => copyValue(p, s, message)]);
  actions.push(["History", () => historyOf(p, s)]);
  if (canWrite()) actions.push(["Delete", () => deleteSecret(p, s).then((ok) => ok && render())]);
  return el("tr", {}, el("th", { scope: "row" }, s.name), value,
    el("td", {}, restricted ? "Restricted" : "Masked"), el("td", {}, s.description || ""),
    el("td", {}, when(s.updateTime || s.createTime)), el("td", {}, moreMenu(s.name, actions)));
}

export async function newSecret(p) {
  const name = el("input", { required: true, autocomplete: "off", pattern: "[A-Za-z_][A-Za-z0-9_]*" });
  const value = el("input", { type: "password", autocomplete: "off" });
  const vis = el("select", {}, el("option", { value: "VISIBILITY_MASKED" }, "Masked"), el("option", { value: "VISIBILITY_RESTRICTED" }, "Restricted"));
  const description = el("input", { autocomplete: "off" });
  const warn = el("p", { class: "muted", hidden: true }, "A restricted secret can never be revealed again, by anyone: only runtimes receive it.");
  vis.addEventListener("change", () => { warn.hidden = vis.value !== "VISIBILITY_RESTRICTED"; });
  const d = dialog("New Secret", [...field("Name", name), ...field("Value", value), ...field("Visibility", vis), warn, ...field("Description", description)],
    [["Create", "create"], ["Cancel", "cancel", "quiet"]]);
  dialog.current.onchoose = async () => {
    await call(S, "CreateSecret", { project: p, name: name.value, value: value.value, visibility: vis.value, description: description.value });
    value.value = "";
  };
  return (await d) ? name.value : null;
}

async function editSecret(p, s) {
  const value = el("input", { type: "password", autocomplete: "off", placeholder: "unchanged" });
  const description = el("input", { autocomplete: "off", value: s.description || "" });
  const d = dialog(`Edit ${s.name}`, [...field("Value", value), ...field("Description", description)], [["Save", "save"], ["Cancel", "cancel", "quiet"]]);
  dialog.current.onchoose = async () => {
    const req = { project: p, name: s.name, description: description.value, expectedRevision: s.revision };
    if (value.value !== "") req.value = value.value;
    await call(S, "UpdateSecret", req);
    value.value = "";
  };
  return d;
}

async function copyValue(p, s, message) {
  try {
    const r = await call(S, "RevealSecret", { project: p, name: s.name });
    await navigator.clipboard.writeText(r.value || "");
    message.textContent = `Copied ${s.name}; the clipboard is cleared in ${revealMs() / 1000} seconds.`;
    setTimeout(async () => {
      try {
        if ((await navigator.clipboard.readText()) === r.value) await navigator.clipboard.writeText("");
      } catch { /* the page lost the clipboard: nothing to clear */ }
    }, revealMs());
  } catch (err) {
    message.textContent = `Cannot copy ${s.name}: ${err.message}`;
  }
}

async function historyOf(p, s) {
  let rows = [];
  let note = "";
  try {
    const ev = (await call(A, "ListAuditEvents", { project: p, pageSize: 500 })).events || [];
    const writes = /\/(CreateSecret|UpdateSecret|DeleteSecret|ApplyChanges|SetOverride|DeleteOverride|MergeEnvironment)$/;
    rows = ev.filter((e) => e.secret === s.name && !e.code && writes.test(e.method));
  } catch (err) {
    note = err.code === "permission_denied" ? "The history is read from the audit log, which admins read." : err.message;
  }
  await dialog(`History of ${s.name}`, [
    note ? el("p", { class: "muted" }, note) : el("table", {}, el("thead", {}, el("tr", {}, ["Revision", "When", "What", "Who"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows.map((e) => el("tr", {}, el("td", {}, e.revision), el("td", {}, when(e.time)), el("td", {}, e.method.split("/").pop()), el("td", {}, e.tokenId))))),
    el("p", { class: "muted" }, "Revisions only: values are never shown here."),
  ], [["Close", "close"]]);
}

async function deleteSecret(p, s) {
  const d = dialog(`Delete ${s.name}?`, [el("p", {}, `The secret ${s.name} and its overrides in every environment are deleted.`)],
    [["Delete", "delete", "danger"], ["Cancel", "cancel", "quiet"]]);
  dialog.current.onchoose = () => call(S, "DeleteSecret", { project: p, name: s.name });
  return d;
}

// Changes made elsewhere show without a reload: WatchSecrets on the project's defaults.
function live(p) {
  const ctl = new AbortController();
  watching = ctl;
  stream(S, "WatchSecrets", { project: p, environment: "main", version: "VERSION_LIVE" }, (m) => {
    if (!m.heartbeat && (m.changed?.length || m.resync) && !document.querySelector("dialog[open]")) render();
  }, ctl.signal).catch(() => { /* the page changed, or the stream ended: nothing to show */ });
}

// ---- environments and overrides ----

async function environmentsPage(p) {
  let envs;
  try {
    envs = (await call(E, "ListEnvironments", { project: p, pageSize: 500 })).environments || [];
  } catch (err) {
    return show(p, ...tabs(p, "environments"), failure(err));
  }
  const base = `/projects/${encodeURIComponent(p)}/environments`;
  show(`${p} · Environments`, ...tabs(p, "environments"), el("h1", {}, "Environments"),
    el("table", {}, el("thead", {}, el("tr", {}, ["Name", "Description", "Revision", ""].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, envs.map((e) => {
        const items = [["Override live secrets", () => go(`${base}/${encodeURIComponent(e.name)}/overrides/live`)],
          ["Override draft secrets", () => go(`${base}/${encodeURIComponent(e.name)}/overrides/draft`)]];
        if (canWrite() && e.name !== "main") {
          items.push(["Merge into main", () => merge(p, e.name)]);
          items.push(["Delete", async () => {
            const d = dialog(`Delete ${e.name}?`, [el("p", {}, `The environment ${e.name} and all its overrides are deleted.`)], [["Delete", "delete", "danger"], ["Cancel", "cancel", "quiet"]]);
            dialog.current.onchoose = () => call(E, "DeleteEnvironment", { project: p, name: e.name });
            if (await d) render();
          }]);
        }
        return el("tr", {}, el("th", { scope: "row" }, e.name), el("td", {}, e.description || ""), el("td", {}, e.revision), el("td", {}, moreMenu(e.name, items)));
      }))));
}

async function overridesPage(p, env, version) {
  const V = version === "live" ? "VERSION_LIVE" : "VERSION_DRAFT";
  let secrets, overrides;
  try {
    secrets = (await call(S, "ListSecrets", { project: p, pageSize: 500 })).secrets || [];
    overrides = (await call(E, "ListOverrides", { project: p, environment: env, version: V, pageSize: 500 })).overrides || [];
  } catch (err) {
    return show(p, ...tabs(p, "environments"), failure(err));
  }
  const over = new Set(overrides.map((o) => o.secret));
  show(`${p} · ${env} ${version}`, ...tabs(p, "environments"), el("h1", {}, `Overrides of ${env}, ${version}`),
    el("table", {}, el("thead", {}, el("tr", {}, ["Secret", "Value comes from", ""].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, secrets.map((s) => el("tr", {}, el("th", { scope: "row" }, s.name),
        el("td", {}, over.has(s.name) ? `an override of ${env} (${version})` : "the project default"),
        el("td", {}, canWrite() && [
          el("button", { type: "button", class: "quiet", onclick: async () => {
            const value = el("input", { type: "password", autocomplete: "off" });
            const d = dialog(`Override ${s.name}`, field("Value", value), [["Save", "save"], ["Cancel", "cancel", "quiet"]]);
            dialog.current.onchoose = async () => { await call(E, "SetOverride", { project: p, environment: env, version: V, secret: s.name, value: value.value }); value.value = ""; };
            if (await d) render();
          } }, `Override ${s.name}`),
          over.has(s.name) && el("button", { type: "button", class: "quiet", onclick: async () => {
            await call(E, "DeleteOverride", { project: p, environment: env, version: V, secret: s.name });
            render();
          } }, `Remove override ${s.name}`),
        ]))))));
}

async function merge(p, source) {
  const body = el("div", {});
  const preview = async () => {
    const [src, dst] = await Promise.all([call(E, "GetEnvironment", { project: p, name: source }), call(E, "GetEnvironment", { project: p, name: "main" })]);
    const dry = await call(E, "MergeEnvironment", { project: p, source, dryRun: true });
    const changes = dry.changes || [];
    const live = changes.some((c) => c.version === "VERSION_LIVE");
    body.replaceChildren(
      changes.length ? el("ul", {}, changes.map((c) => el("li", {}, `${c.secret} (${c.version === "VERSION_LIVE" ? "live" : "draft"}): ${c.kind.replace("CHANGE_KIND_", "").toLowerCase()}`))) : el("p", {}, "Nothing changes."),
      live && el("p", { class: "advice" }, "This merge carries live overrides. Remove live overrides of non-production credentials before merging, so the live agent is not connected to non-production APIs."));
    return { src: src.revision, dst: dst.revision };
  };
  let expected = await preview();
  const d = dialog(`Merge ${source} into main`, body, [["Merge", "merge"], ["Cancel", "cancel", "quiet"]]);
  dialog.current.onchoose = async () => {
    try {
      await call(E, "MergeEnvironment", { project: p, source, expectedSourceRevision: expected.src, expectedTargetRevision: expected.dst });
    } catch (err) {
      if (err.code !== "aborted") throw err;
      expected = await preview();
      throw new Error("Something changed meanwhile: here is the new preview. Merge again to apply it.");
    }
  };
  if (await d) render();
}

// ---- access and audit ----

async function accessPage(p) {
  let tokens;
  try {
    tokens = (await call(A, "ListTokens", { project: p, pageSize: 500 })).tokens || [];
  } catch (err) {
    return show(p, ...tabs(p, "access"), el("h1", {}, "Access"), failure(err));
  }
  const create = el("button", { type: "button", onclick: async () => {
    const name = el("input", { required: true, autocomplete: "off" });
    const r = el("select", {}, ["Runtime", "Viewer", "Editor"].map((x) => el("option", { value: `ROLE_${x.toUpperCase()}` }, x)));
    const d = dialog("New Token", [...field("Name", name), ...field("Role", r)], [["Create", "create"], ["Cancel", "cancel", "quiet"]]);
    let made = null;
    dialog.current.onchoose = async () => { made = await call(A, "CreateToken", { name: name.value, role: r.value, project: p }); };
    if (!(await d) || !made) return;
    const secret = el("input", { readonly: true, value: made.secret, "aria-label": "Token secret" });
    await dialog("Token created", [el("p", {}, "This secret is shown once: copy it now."), secret,
      el("button", { type: "button", class: "quiet", onclick: () => navigator.clipboard.writeText(made.secret) }, "Copy")], [["Done", "done"]]);
    secret.value = "";
    render();
  } }, "New Token");
  show(`${p} · Access`, ...tabs(p, "access"), el("div", { class: "head" }, el("h1", {}, "Access"), create),
    el("table", {}, el("thead", {}, el("tr", {}, ["Name", "Id", "Role", "Created", ""].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, tokens.map((t) => el("tr", {}, el("th", { scope: "row" }, t.name), el("td", {}, t.id), el("td", {}, t.role.replace("ROLE_", "").toLowerCase()), el("td", {}, when(t.createTime)),
        el("td", {}, el("button", { type: "button", class: "quiet", onclick: async () => {
          const d = dialog(`Revoke ${t.name}?`, [el("p", {}, "Everything that uses this token stops working at once.")], [["Revoke", "revoke", "danger"], ["Cancel", "cancel", "quiet"]]);
          dialog.current.onchoose = () => call(A, "RevokeToken", { id: t.id });
          if (await d) render();
        } }, `Revoke ${t.name}`)))))));
}

async function auditPage(p) {
  let events;
  try {
    events = (await call(A, "ListAuditEvents", { project: p, pageSize: 500 })).events || [];
  } catch (err) {
    return show(p, ...tabs(p, "audit"), el("h1", {}, "Audit"), failure(err));
  }
  const filter = el("input", { type: "search", autocomplete: "off" });
  const body = el("tbody", {});
  const draw = () => {
    const f = filter.value.toLowerCase();
    body.replaceChildren(...events.filter((e) => !f || [e.method, e.secret, e.environment, e.tokenId].join(" ").toLowerCase().includes(f)).reverse().map((e) =>
      el("tr", {}, el("td", {}, when(e.time)), el("td", {}, e.method.split("/").pop()), el("td", {}, e.secret || ""), el("td", {}, e.environment || ""),
        el("td", {}, e.tokenId || ""), el("td", {}, e.code ? `error ${e.code}` : "ok"), el("td", {}, e.transport || ""))));
  };
  filter.addEventListener("input", draw);
  draw();
  show(`${p} · Audit`, ...tabs(p, "audit"), el("h1", {}, "Audit"), ...field("Filter", filter),
    el("table", {}, el("thead", {}, el("tr", {}, ["When", "Call", "Secret", "Environment", "Token", "Result", "Transport"].map((h) => el("th", { scope: "col" }, h)))), body));
}

// ---- the playground: the { picker ----

async function playgroundPage(p) {
  const input = el("coffer-secret-input", { label: "Tool input" });
  input.variables = [];
  input.secretNames = async () => ((await call(S, "ListSecrets", { project: p, pageSize: 500 })).secrets || []).map((s) => s.name);
  input.addEventListener("coffer-create-secret", async (e) => {
    const name = await newSecret(p);
    if (name) e.detail.insert(name);
  });
  show(`${p} · Playground`, ...tabs(p, "playground"), el("h1", {}, "Playground"),
    el("p", { class: "muted" }, "Type { in the field to pick a secret by name; it is written as {secret.NAME}."), input);
}

// ---- routes ----

const routes = [
  [/^\/$/, projects],
  [/^\/projects\/?$/, projects],
  [/^\/projects\/([^/]+)\/secrets$/, secretsPage],
  [/^\/projects\/([^/]+)\/environments$/, environmentsPage],
  [/^\/projects\/([^/]+)\/environments\/([^/]+)\/overrides\/(draft|live)$/, overridesPage],
  [/^\/projects\/([^/]+)\/access$/, accessPage],
  [/^\/projects\/([^/]+)\/audit$/, auditPage],
  [/^\/projects\/([^/]+)\/playground$/, playgroundPage],
];

function notFound() {
  show("Not found", el("h1", {}, "Not found"), el("p", {}, link("/", "Back to the projects")));
}

async function render() {
  if (watching) { watching.abort(); watching = null; }
  if (!me) {
    try { me = await call(SESSIONS, "GetSession"); } catch { me = null; }
  }
  header();
  if (!me) return signIn();
  for (const [pattern, draw] of routes) {
    const m = pattern.exec(location.pathname);
    if (m) {
      try {
        return await draw(...m.slice(1).map(decodeURIComponent));
      } catch (err) {
        if (err instanceof RpcError && err.code === "unauthenticated") { me = null; return render(); }
        return show("Error", failure(err));
      }
    }
  }
  return notFound();
}

window.addEventListener("popstate", render);
document.addEventListener("click", (e) => {
  if (!e.target.closest(".more-wrap")) document.querySelectorAll(".menu").forEach((m) => { m.hidden = true; });
});
render();
