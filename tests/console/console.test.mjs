// tests/console/console.test.mjs - the console in a real browser: puppeteer-core driving Debian's
// chromium (headless) against a real cofferd and PostgreSQL, started by tests/console/run.sh.
// Controls are found by their accessible names, as people find them; axe-core checks each page.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import puppeteer from "puppeteer-core";

const BASE = process.env.COFFER_CONSOLE_URL;
const OTHER = BASE.replace("127.0.0.1", "localhost"); // another origin of the same server
const ADMIN = readFileSync(process.env.COFFER_CONSOLE_ADMIN_TOKEN_FILE, "utf8").trim();
const CANARY = process.env.COFFER_CANARY;
const AXE = createRequire(import.meta.url).resolve("axe-core/axe.min.js");

let browser;
before(async () => {
  browser = await puppeteer.launch({
    executablePath: process.env.COFFER_CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
});
after(() => browser?.close());

// ---- the API, for set-up and for checking what the console did ----
async function api(method, body, token = ADMIN) {
  const res = await fetch(`${BASE}/${method}`, {
    method: "POST", headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  const json = await res.json();
  if (!res.ok) throw new Error(`${method}: ${json.code}: ${json.message}`);
  return json;
}
let seq = 0;
const unique = (p) => `${p}-${process.pid % 10000}-${seq++}`;
async function project(name = unique("c")) {
  await api("coffer.v1.Projects/CreateProject", { name });
  return name;
}
async function token(role, p) {
  return (await api("coffer.v1.Access/CreateToken", { name: unique("t"), role, project: p })).secret;
}

// ---- the browser ----
async function signedIn(secret = ADMIN) {
  const ctx = await browser.createBrowserContext();
  const page = await ctx.newPage();
  page.errors = [];
  page.on("pageerror", (e) => page.errors.push(String(e)));
  await page.goto(`${BASE}/`, { waitUntil: "networkidle0" });
  await (await page.waitForSelector("::-p-aria(Token)")).type(secret);
  await (await page.waitForSelector("::-p-aria(Sign in)")).click();
  await page.waitForFunction(() => !document.title.startsWith("Sign in"), { timeout: 5000 }).catch(() => {});
  return page;
}
const byName = (page, name) => page.waitForSelector(`::-p-aria(${name})`, { timeout: 5000 });
// The control named name: a button, a link or a menu item before anything else that shares its
// name (a table cell takes its name from the button in it).
async function click(page, name) {
  const roles = ["button", "link", "menuitem", "tab", "option"];
  for (let i = 0; i < 50; i++) {
    for (const role of roles) {
      const h = await page.$(`::-p-aria([name="${name}"][role="${role}"])`);
      if (h && (await h.isVisible())) return h.click();
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no control named ${name}`);
}
async function fill(page, name, text) {
  const f = await byName(page, name);
  await f.click({ clickCount: 3 });
  await f.type(text);
}
async function open(page, path) {
  await page.goto(`${BASE}${path}`, { waitUntil: "networkidle2" });
}
const text = (page) => page.evaluate(() => document.body.innerText);
async function gone(page, name) {
  await page.waitForFunction((n) => ![...document.querySelectorAll("button,a")].some((b) => (b.getAttribute("aria-label") || b.textContent) === n), { timeout: 5000 }, name);
}
async function axe(page) {
  await page.setBypassCSP(true); // the policy forbids injected scripts, axe included: it is one
  await page.reload({ waitUntil: "networkidle2" });
  await page.addScriptTag({ path: AXE });
  const r = await page.evaluate(async () => (await window.axe.run(document, { resultTypes: ["violations"] })).violations
    .filter((v) => v.impact === "serious" || v.impact === "critical").map((v) => `${v.id}: ${v.nodes.map((n) => n.target).join(" ")}`));
  await page.setBypassCSP(false);
  return r;
}

test("signing in: a wrong or runtime token is refused, a person's token opens the projects; nothing is kept in the page", async () => {
  const p = await project();
  const ctx = await browser.createBrowserContext();
  const page = await ctx.newPage();
  await page.goto(`${BASE}/`, { waitUntil: "networkidle0" });
  await fill(page, "Token", "coffer_notavalidtoken");
  await click(page, "Sign in");
  await page.waitForFunction(() => document.querySelector("[role=alert]")?.textContent.length > 0);
  const rt = await token("ROLE_RUNTIME", p);
  await fill(page, "Token", rt);
  await click(page, "Sign in");
  await page.waitForFunction(() => /runtime token cannot sign in/.test(document.querySelector("[role=alert]")?.textContent || ""));
  await fill(page, "Token", ADMIN);
  await click(page, "Sign in");
  await byName(page, "New Project");
  assert.equal(await page.title(), "Projects · Coffer");
  const kept = await page.evaluate(() => ({ l: localStorage.length, s: sessionStorage.length, c: document.cookie, url: location.href }));
  assert.deepEqual(kept, { l: 0, s: 0, c: "", url: `${BASE}/` }, "no token in storage, a script-readable cookie or the URL");
  const cookies = await page.cookies();
  const c = cookies.find((x) => x.name === "coffer_session");
  assert.ok(c && c.httpOnly && c.sameSite === "Strict" && c.path === "/", JSON.stringify(c));
  assert.ok(!(await page.content()).includes(ADMIN), "the token is nowhere in the page");
  // every page has its URL and survives a reload
  await open(page, `/projects/${p}/environments`);
  await page.reload({ waitUntil: "networkidle2" });
  await byName(page, "main");
  assert.equal(await page.title(), `${p} · Environments · Coffer`);
  await ctx.close();
});

test("secrets: new, reveal for a while, hide, restricted never revealed, edit, history, delete; a hostile description is text", async () => {
  const p = await project();
  const page = await signedIn();
  await open(page, `/projects/${p}/secrets`);
  await click(page, "New Secret");
  await fill(page, "Name", "API_KEY");
  await fill(page, "Value", `${CANARY}-one`);
  await fill(page, "Description", "<img src=x onerror=window.pwned=1>");
  await click(page, "Create");
  await byName(page, "Reveal API_KEY");
  assert.ok((await text(page)).includes("<img src=x onerror=window.pwned=1>"), "the description shows literally");
  assert.equal(await page.evaluate(() => window.pwned), undefined);
  assert.equal(await page.$$eval("tbody img", (x) => x.length), 0);
  await click(page, "New Secret");
  await fill(page, "Name", "DB_PASSWORD");
  await fill(page, "Value", `${CANARY}-restricted`);
  await page.select("#f-visibility", "VISIBILITY_RESTRICTED");
  assert.match(await text(page), /can never be revealed again/);
  await click(page, "Create");
  await page.waitForFunction(() => document.body.innerText.includes("DB_PASSWORD"));
  await gone(page, "Reveal DB_PASSWORD");
  await click(page, "Reveal API_KEY");
  await byName(page, "Hide API_KEY");
  assert.ok((await text(page)).includes(`${CANARY}-one`));
  // shown for --console-reveal-seconds (3 here), then hidden by itself
  await page.waitForFunction((v) => !document.body.innerText.includes(v), { timeout: 6000 }, `${CANARY}-one`);
  await byName(page, "Reveal API_KEY");
  await click(page, "Reveal API_KEY");
  await byName(page, "Hide API_KEY");
  await click(page, "Hide API_KEY");
  await byName(page, "Reveal API_KEY");
  assert.ok(!(await text(page)).includes(`${CANARY}-one`), "hidden at once");
  // the restricted row: no reveal, no copy
  await click(page, "More actions for DB_PASSWORD");
  const items = await page.$$eval("[role=menu]:not([hidden]) [role=menuitem]", (x) => x.map((b) => b.textContent));
  assert.deepEqual(items, ["Edit", "History", "Delete"]);
  await page.keyboard.press("Escape");
  // edit, then the history shows revisions and no value
  await click(page, "More actions for API_KEY");
  await click(page, "Edit");
  await fill(page, "Value", `${CANARY}-two`);
  await click(page, "Save");
  await page.waitForFunction(() => !document.querySelector("dialog[open]"));
  await click(page, "Reveal API_KEY");
  await page.waitForFunction((v) => document.body.innerText.includes(v), {}, `${CANARY}-two`);
  await click(page, "More actions for API_KEY");
  await click(page, "History");
  await page.waitForFunction(() => /UpdateSecret/.test(document.querySelector("dialog[open]")?.innerText || ""));
  assert.ok(!(await page.$eval("dialog[open]", (d) => d.innerText)).includes(CANARY));
  await click(page, "Close");
  await click(page, "More actions for API_KEY");
  await click(page, "Delete");
  await page.waitForFunction(() => /API_KEY/.test(document.querySelector("dialog[open]")?.innerText || ""));
  await page.click("dialog[open] button[value=delete]");
  await gone(page, "Reveal API_KEY");
  const left = await api("coffer.v1.Secrets/ListSecrets", { project: p });
  assert.deepEqual(left.secrets.map((s) => s.name), ["DB_PASSWORD"]);
  assert.deepEqual(page.errors, []);
  await page.browserContext().close();
});

test("copy value: an audited reveal straight to the clipboard", async () => {
  const p = await project();
  await api("coffer.v1.Secrets/CreateSecret", { project: p, name: "COPY_ME", value: `${CANARY}-copy` });
  const page = await signedIn();
  await page.browserContext().overridePermissions(BASE, ["clipboard-read", "clipboard-write", "clipboard-sanitized-write"]);
  await open(page, `/projects/${p}/secrets`);
  await click(page, "More actions for COPY_ME");
  await click(page, "Copy value");
  await page.waitForFunction(() => /Copied COPY_ME/.test(document.body.innerText));
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), `${CANARY}-copy`);
  // cleared after --console-reveal-seconds (3 here), since it still holds the value
  await page.waitForFunction(async () => (await navigator.clipboard.readText()) === "", { timeout: 8000, polling: 500 });
  const audit = await api("coffer.v1.Access/ListAuditEvents", { project: p });
  assert.ok(audit.events.some((e) => e.method.endsWith("/RevealSecret") && e.secret === "COPY_ME" && e.transport === "connect"), "the copy is an audited reveal");
  await page.browserContext().close();
});

test("changes made elsewhere appear without a reload", async () => {
  const p = await project();
  const page = await signedIn();
  await open(page, `/projects/${p}/secrets`);
  await byName(page, "New Secret");
  await api("coffer.v1.Secrets/CreateSecret", { project: p, name: "FROM_ELSEWHERE", value: "v" });
  await byName(page, "Reveal FROM_ELSEWHERE");
  await page.browserContext().close();
});

test("environments: override draft, merge into main with its preview and advice", async () => {
  const p = await project();
  await api("coffer.v1.Secrets/CreateSecret", { project: p, name: "OPENAI_API_KEY", value: "sk-default" });
  await api("coffer.v1.Environments/CreateEnvironment", { project: p, name: "staging" });
  const page = await signedIn();
  await open(page, `/projects/${p}/environments`);
  await click(page, "More actions for staging");
  await click(page, "Override draft secrets");
  await page.waitForFunction(() => location.pathname.endsWith("/environments/staging/overrides/draft"));
  await click(page, "Override OPENAI_API_KEY");
  await fill(page, "Value", `${CANARY}-draft`);
  await click(page, "Save");
  await byName(page, "Remove override OPENAI_API_KEY");
  await open(page, `/projects/${p}/environments/staging/overrides/live`);
  await click(page, "Override OPENAI_API_KEY");
  await fill(page, "Value", `${CANARY}-live`);
  await click(page, "Save");
  await byName(page, "Remove override OPENAI_API_KEY");
  await open(page, `/projects/${p}/environments`);
  await click(page, "More actions for staging");
  await click(page, "Merge into main");
  await page.waitForFunction(() => /OPENAI_API_KEY \(draft\)/.test(document.querySelector("dialog[open]")?.innerText || ""));
  const preview = await page.$eval("dialog[open]", (d) => d.innerText);
  assert.match(preview, /OPENAI_API_KEY \(live\)/);
  assert.match(preview, /Remove live overrides of non-production credentials before merging/);
  assert.ok(!preview.includes(CANARY), "names, never values");
  // a change meanwhile: a clear message and a fresh preview, nothing merged
  await api("coffer.v1.Environments/SetOverride", { project: p, environment: "staging", version: "VERSION_DRAFT", secret: "OPENAI_API_KEY", value: `${CANARY}-newer` });
  await page.click("dialog[open] button[value=merge]");
  await page.waitForFunction(() => /changed meanwhile/.test(document.querySelector("dialog[open]")?.innerText || ""));
  await page.click("dialog[open] button[value=merge]");
  await page.waitForFunction(() => !document.querySelector("dialog[open]"));
  const main = await api("coffer.v1.Environments/ListOverrides", { project: p, environment: "main" });
  assert.equal(main.overrides.length, 2, "both overrides merged into main");
  await page.browserContext().close();
});

test("a viewer sees no write controls, and a refused reveal is a message", async () => {
  const p = await project();
  await api("coffer.v1.Secrets/CreateSecret", { project: p, name: "SEEN", value: `${CANARY}-viewer` });
  await api("coffer.v1.Environments/CreateEnvironment", { project: p, name: "staging" });
  const page = await signedIn(await token("ROLE_VIEWER", p));
  await open(page, `/projects/${p}/secrets`);
  await byName(page, "Reveal SEEN");
  assert.equal(await page.$("::-p-aria(New Secret)"), null);
  await click(page, "More actions for SEEN");
  const items = await page.$$eval("[role=menu]:not([hidden]) [role=menuitem]", (x) => x.map((b) => b.textContent));
  assert.deepEqual(items, ["History"]);
  await page.keyboard.press("Escape");
  await click(page, "Reveal SEEN");
  await page.waitForFunction(() => /Cannot reveal SEEN/.test(document.body.innerText));
  assert.ok(!(await text(page)).includes(CANARY));
  await open(page, `/projects/${p}/environments`);
  await click(page, "More actions for staging");
  const envItems = await page.$$eval("[role=menu]:not([hidden]) [role=menuitem]", (x) => x.map((b) => b.textContent));
  assert.deepEqual(envItems, ["Override live secrets", "Override draft secrets"]);
  await open(page, `/projects/${p}/environments/staging/overrides/live`);
  await page.waitForFunction(() => document.body.innerText.includes("the project default"));
  assert.equal(await page.$("::-p-aria(Override SEEN)"), null);
  await page.browserContext().close();
});

test("a cross-site write riding on the cookie is refused, and nothing is written", async () => {
  const page = await signedIn();
  const name = unique("csrf");
  await page.goto(`${OTHER}/console/icon.svg`); // a page of another origin, in the same browser
  const status = await page.evaluate(async (base, n) => {
    try {
      const r = await fetch(`${base}/coffer.v1.Projects/CreateProject`, { method: "POST", credentials: "include", mode: "no-cors",
        headers: { "Content-Type": "text/plain" }, body: JSON.stringify({ name: n }) });
      return r.status;
    } catch (e) { return String(e); }
  }, BASE, name);
  assert.ok(status === 0 || typeof status === "string", `an opaque or failed answer (${status})`);
  const res = await fetch(`${BASE}/coffer.v1.Projects/GetProject`, { method: "POST", headers: { Authorization: `Bearer ${ADMIN}`, "Content-Type": "application/json" }, body: JSON.stringify({ name }) });
  assert.equal(res.status, 404, "nothing was written");
  await page.browserContext().close();
});

test("sign out, and a revoked token's session ends at once", async () => {
  const p = await project();
  const editor = await token("ROLE_EDITOR", p);
  const page = await signedIn(editor);
  await open(page, `/projects/${p}/secrets`);
  await byName(page, "New Secret");
  const id = (await api("coffer.v1.Access/WhoAmI", {}, editor)).id;
  await api("coffer.v1.Access/RevokeToken", { id });
  await page.reload({ waitUntil: "networkidle2" });
  await byName(page, "Token");
  const again = await signedIn();
  await click(again, "Sign out");
  await byName(again, "Token");
  await open(again, `/projects/${p}/secrets`);
  await byName(again, "Token");
  await page.browserContext().close();
  await again.browserContext().close();
});

test("the { picker: Variables and Secrets tabs, filtering, keys, Create Secret", async () => {
  const p = await project();
  for (const n of ["OPENAI_API_KEY", "DATABASE_URL", "OPENAI_ORG"])
    await api("coffer.v1.Secrets/CreateSecret", { project: p, name: n, value: `${CANARY}-${n}` });
  const page = await signedIn();
  await open(page, `/projects/${p}/playground`);
  const field = await byName(page, "Tool input");
  await field.type("key={OPENAI");
  await page.waitForFunction(() => document.querySelector("coffer-secret-input").shadowRoot.querySelectorAll("[role=option]").length === 2);
  const options = await page.evaluate(() => [...document.querySelector("coffer-secret-input").shadowRoot.querySelectorAll("[role=option]")].map((o) => o.textContent));
  assert.deepEqual(options.sort(), ["OPENAI_API_KEY", "OPENAI_ORG"]);
  assert.ok(!(await page.evaluate(() => document.querySelector("coffer-secret-input").shadowRoot.innerHTML)).includes(CANARY), "names, never values");
  await page.keyboard.press("ArrowDown");
  await page.keyboard.press("Enter");
  const v = await page.evaluate(() => document.querySelector("coffer-secret-input").value);
  assert.match(v, /^key=\{secret\.OPENAI_(API_KEY|ORG)\}$/);
  await field.type(" {");
  await page.keyboard.press("Escape");
  assert.equal(await page.evaluate(() => document.querySelector("coffer-secret-input").shadowRoot.querySelector(".pop").hidden), true);
  await field.type("{");
  await click(page, "Variables");
  await page.waitForFunction(() => /No variables/.test(document.querySelector("coffer-secret-input").shadowRoot.innerHTML));
  await click(page, "Create Secret");
  await fill(page, "Name", "NEW_ONE");
  await fill(page, "Value", "v");
  await click(page, "Create");
  await page.waitForFunction(() => /\{secret\.NEW_ONE\}$/.test(document.querySelector("coffer-secret-input").value));
  await page.browserContext().close();
});

test("access: a new token's secret is shown once and works; revoking it ends it; the audit log filters", async () => {
  const p = await project();
  const page = await signedIn();
  await page.browserContext().overridePermissions(BASE, ["clipboard-read", "clipboard-write", "clipboard-sanitized-write"]);
  await open(page, `/projects/${p}/access`);
  await click(page, "New Token");
  await fill(page, "Name", "ci-runtime");
  await click(page, "Create");
  const box = await byName(page, "Token secret");
  const secret = await box.evaluate((i) => i.value);
  assert.match(secret, /^coffer_/);
  await click(page, "Copy");
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret);
  await click(page, "Done");
  await byName(page, "Revoke ci-runtime");
  assert.ok(!(await page.content()).includes(secret), "shown once: gone from the page");
  const r = await fetch(`${BASE}/coffer.v1.Secrets/ResolveSecrets`, { method: "POST", headers: { Authorization: `Bearer ${secret}`, "Content-Type": "application/json" }, body: JSON.stringify({ project: p, environment: "main", version: "VERSION_LIVE" }) });
  assert.equal(r.status, 200, "the new token works");
  await click(page, "Revoke ci-runtime");
  await page.click("dialog[open] button[value=revoke]");
  await gone(page, "Revoke ci-runtime");
  const after = await fetch(`${BASE}/coffer.v1.Secrets/ResolveSecrets`, { method: "POST", headers: { Authorization: `Bearer ${secret}`, "Content-Type": "application/json" }, body: JSON.stringify({ project: p, environment: "main", version: "VERSION_LIVE" }) });
  assert.equal(after.status, 401, "revoked");
  await open(page, `/projects/${p}/audit`);
  await page.waitForFunction(() => /CreateToken/.test(document.body.innerText) && /ResolveSecrets/.test(document.body.innerText));
  await fill(page, "Filter", "CreateToken");
  await page.waitForFunction(() => document.querySelectorAll("tbody tr").length === 1 && /CreateToken/.test(document.querySelector("tbody tr").innerText));
  await page.browserContext().close();
});

test("every page passes axe-core (no serious or critical violation)", async () => {
  const p = await project();
  await api("coffer.v1.Secrets/CreateSecret", { project: p, name: "A", value: "v" });
  await api("coffer.v1.Environments/CreateEnvironment", { project: p, name: "staging" });
  const ctx = await browser.createBrowserContext();
  const anon = await ctx.newPage();
  await anon.goto(`${BASE}/`, { waitUntil: "networkidle0" });
  assert.deepEqual(await axe(anon), [], "the sign-in page");
  const page = await signedIn();
  for (const path of ["/", `/projects/${p}/secrets`, `/projects/${p}/environments`, `/projects/${p}/environments/staging/overrides/draft`,
    `/projects/${p}/access`, `/projects/${p}/audit`, `/projects/${p}/playground`]) {
    await open(page, path);
    assert.deepEqual(await axe(page), [], path);
  }
  await ctx.close();
  await page.browserContext().close();
});
