// tests/connect/connect.test.mjs - an independent Connect client (connect-es, with connect-node
// over HTTP/1.1) against the real cofferd, with the registry made at run time from protoc's
// descriptor set of our proto files (no code generation). Run by tests/connect/run.sh with Node's
// test runner. Every unary RPC in JSON and in binary, GET, Connect-Timeout-Ms, WatchSecrets as a
// stream, each error code's HTTP status and error JSON, refusals by role and scope, and the
// audit rows' transport; run.sh then scans the server's log for the canary values.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import net from "node:net";
import { createRegistryFromDescriptors } from "@bufbuild/protobuf";
import { createPromiseClient, ConnectError, Code } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";

const BASE = process.env.COFFER_CONNECT_URL;
const ADMIN = readFileSync(process.env.COFFER_CONNECT_ADMIN_TOKEN_FILE, "utf8").trim();
const CANARY = process.env.COFFER_CANARY;
const registry = createRegistryFromDescriptors(readFileSync(process.env.COFFER_CONNECT_DESCRIPTORS));
const svc = (name) => registry.findService(name);
const Projects = svc("coffer.v1.Projects");
const Secrets = svc("coffer.v1.Secrets");
const Environments = svc("coffer.v1.Environments");
const Access = svc("coffer.v1.Access");
const Health = svc("grpc.health.v1.Health");
for (const s of [Projects, Secrets, Environments, Access, Health]) assert.ok(s, "a service of the descriptor set");

const VERSION_DRAFT = 1, VERSION_LIVE = 2, MASKED = 1, RESTRICTED = 2;
const ROLE_EDITOR = 2, ROLE_VIEWER = 3, ROLE_RUNTIME = 4;

function clients(token, opts = {}) {
  const transport = createConnectTransport({
    baseUrl: BASE,
    httpVersion: "1.1",
    useBinaryFormat: !!opts.binary,
    useHttpGet: !!opts.get,
    interceptors: [(next) => async (req) => {
      if (token) req.header.set("Authorization", `Bearer ${token}`);
      return next(req);
    }],
  });
  return {
    projects: createPromiseClient(Projects, transport),
    secrets: createPromiseClient(Secrets, transport),
    envs: createPromiseClient(Environments, transport),
    access: createPromiseClient(Access, transport),
    health: createPromiseClient(Health, transport),
  };
}

let seq = 0;
const unique = (p) => `${p}-${process.pid}-${Date.now() % 100000}-${seq++}`;

async function rejects(promise, code, what) {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof ConnectError, `${what}: a ConnectError, got ${e}`);
    assert.equal(e.code, code, `${what}: code ${Code[e.code]} (${e.rawMessage}), want ${Code[code]}`);
    return e;
  }
  assert.fail(`${what}: succeeded, want ${Code[code]}`);
}

// A raw Connect request: the HTTP status, the content type and the body as JSON (or text).
async function raw(path, { method = "POST", body, headers = {}, token = ADMIN } = {}) {
  const h = { ...headers };
  if (token) h.Authorization = `Bearer ${token}`;
  if (method === "POST" && !("Content-Type" in h)) h["Content-Type"] = "application/json";
  const res = await fetch(BASE + path, { method, headers: h, body });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, type: res.headers.get("content-type"), cache: res.headers.get("cache-control"), json, text, headers: res.headers };
}

// Sends a POST head announcing n bytes and a little of them on a socket of its own; what the
// server answered (before it closed the connection).
function overLimit(path, n) {
  const { hostname, port } = new URL(BASE);
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(port), hostname, () => {
      sock.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${n}\r\n\r\n{"value":"`);
    });
    let got = "";
    sock.on("data", (d) => { got += d; });
    sock.on("error", () => resolve(got));
    sock.on("close", () => resolve(got));
    sock.setTimeout(5000, () => { sock.destroy(); reject(new Error(`no answer: ${got}`)); });
  });
}

// Every unary RPC, in one encoding: the life of a project from its creation to its deletion.
async function everyRpc(binary) {
  const c = clients(ADMIN, { binary });
  const p = unique(binary ? "bin" : "json");
  const made = await c.projects.createProject({ name: p, description: "made over Connect" });
  assert.equal(made.name, p);
  assert.equal((await c.projects.getProject({ name: p })).description, "made over Connect");
  assert.ok((await c.projects.listProjects({ pageSize: 500 })).projects.some((x) => x.name === p));

  const s = await c.secrets.createSecret({ project: p, name: "API_KEY", value: `${CANARY}-a`, visibility: MASKED, description: "k" });
  assert.equal(s.visibility, MASKED);
  assert.ok(s.revision > 0n, "int64 as bigint");
  assert.ok(s.createTime && s.createTime.seconds > 0n, "a Timestamp");
  await c.secrets.createSecret({ project: p, name: "DB_PASSWORD", value: `${CANARY}-r`, visibility: RESTRICTED });
  assert.equal((await c.secrets.getSecret({ project: p, name: "API_KEY" })).description, "k");
  assert.equal((await c.secrets.listSecrets({ project: p })).secrets.length, 2);
  const u = await c.secrets.updateSecret({ project: p, name: "API_KEY", valueUpdate: { case: "value", value: `${CANARY}-b` }, expectedRevision: s.revision });
  assert.ok(u.revision > s.revision);
  assert.equal((await c.secrets.revealSecret({ project: p, name: "API_KEY" })).value, `${CANARY}-b`);

  const e = await c.envs.createEnvironment({ project: p, name: "staging", description: "st" });
  assert.equal(e.name, "staging");
  assert.equal((await c.envs.getEnvironment({ project: p, name: "staging" })).description, "st");
  assert.ok((await c.envs.listEnvironments({ project: p })).environments.some((x) => x.name === "staging"));
  const o = await c.envs.setOverride({ project: p, environment: "staging", version: VERSION_DRAFT, secret: "API_KEY", value: `${CANARY}-o` });
  assert.equal(o.secret, "API_KEY");
  assert.equal((await c.envs.listOverrides({ project: p, environment: "staging" })).overrides.length, 1);
  const dry = await c.envs.mergeEnvironment({ project: p, source: "staging", dryRun: true });
  assert.equal(dry.applied, false);
  assert.equal(dry.changes.length, 1);
  await c.envs.setOverride({ project: p, environment: "staging", version: VERSION_LIVE, secret: "DB_PASSWORD", value: `${CANARY}-l` });
  await c.envs.deleteOverride({ project: p, environment: "staging", version: VERSION_LIVE, secret: "DB_PASSWORD" });

  const applied = await c.secrets.applyChanges({ project: p, changes: [
    { change: { case: "createSecret", value: { name: "EXTRA", value: `${CANARY}-x` } } },
    { change: { case: "setOverride", value: { environment: "staging", version: VERSION_LIVE, secret: "EXTRA", value: `${CANARY}-y` } } },
  ] });
  assert.equal(applied.applied, true);
  assert.equal(applied.results.length, 2);

  const rt = await c.access.createToken({ name: unique("rt"), role: ROLE_RUNTIME, project: p, ttlSeconds: 3600n });
  assert.ok(rt.secret.length > 20);
  const r = await clients(rt.secret, { binary }).secrets.resolveSecrets({ project: p, environment: "staging", version: VERSION_DRAFT });
  const values = Object.fromEntries(r.secrets.map((x) => [x.name, x.value]));
  assert.equal(values.API_KEY, `${CANARY}-o`, "the draft override");
  assert.equal(values.DB_PASSWORD, `${CANARY}-r`, "a restricted value reaches a runtime");
  assert.ok((await c.access.listTokens({ project: p })).tokens.some((t) => t.id === rt.token.id));
  const me = await c.access.whoAmI({});
  assert.equal(me.role, 1);
  const audit = await c.access.listAuditEvents({ project: p, pageSize: 100 });
  const resolve = audit.events.find((ev) => ev.method === "/coffer.v1.Secrets/ResolveSecrets");
  assert.ok(resolve, "the resolve is audited");
  assert.equal(resolve.transport, "connect", "the audit row says Connect carried it");
  assert.match(resolve.peer, /^ipv[46]:/, "with the peer address");
  await c.access.revokeToken({ id: rt.token.id });
  await rejects(clients(rt.secret, { binary }).secrets.resolveSecrets({ project: p, environment: "main", version: VERSION_LIVE }), Code.Unauthenticated, "a revoked token");

  assert.equal((await c.health.check({ service: "" })).status, 1);
  await c.secrets.deleteSecret({ project: p, name: "EXTRA" });
  await c.envs.deleteEnvironment({ project: p, name: "staging" });
  await c.projects.deleteProject({ name: p });
  await rejects(c.projects.getProject({ name: p }), Code.NotFound, "a deleted project");
}

test("every unary RPC over Connect JSON", () => everyRpc(false));
test("every unary RPC over Connect binary (application/proto)", () => everyRpc(true));

test("every unary method of the descriptor set is served (none is unknown to the server)", async () => {
  for (const s of [Projects, Secrets, Environments, Access, Health]) {
    for (const m of Object.values(s.methods)) {
      if (m.kind !== 0) continue; // unary only
      const r = await raw(`/${s.typeName}/${m.name}`, { body: "{}" });
      assert.ok(r.json && typeof r.json === "object", `${m.name}: JSON`);
      if (r.status !== 200)
        assert.notEqual(r.json.code, "unimplemented", `${s.typeName}/${m.name}: ${r.text}`);
    }
  }
});

test("GET for methods without side effects, JSON and base64 binary", async () => {
  const c = clients(ADMIN, { get: true });
  const p = unique("get");
  await clients(ADMIN).projects.createProject({ name: p });
  assert.equal((await c.projects.getProject({ name: p })).name, p, "connect-es's GET");
  const msg = encodeURIComponent(JSON.stringify({ name: p }));
  const r = await raw(`/coffer.v1.Projects/GetProject?connect=v1&encoding=json&message=${msg}`, { method: "GET" });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.name, p);
  const bin = registry.findMessage("coffer.v1.GetProjectRequest");
  const b64 = Buffer.from(new bin({ name: p }).toBinary()).toString("base64url");
  const rb = await fetch(`${BASE}/coffer.v1.Projects/GetProject?connect=v1&encoding=proto&base64=1&message=${b64}`, { headers: { Authorization: `Bearer ${ADMIN}` } });
  assert.equal(rb.status, 200);
  assert.equal(rb.headers.get("content-type"), "application/proto");
  const back = registry.findMessage("coffer.v1.Project").fromBinary(new Uint8Array(await rb.arrayBuffer()));
  assert.equal(back.name, p);
  // a method with side effects is refused by GET, and nothing is deleted
  const del = await raw(`/coffer.v1.Projects/DeleteProject?connect=v1&encoding=json&message=${msg}`, { method: "GET" });
  assert.equal(del.status, 405);
  assert.equal(del.headers.get("allow"), "POST");
  assert.equal((await clients(ADMIN).projects.getProject({ name: p })).name, p);
});

test("Connect-Timeout-Ms is the call's deadline", async () => {
  const p = unique("deadline");
  const c = clients(ADMIN);
  await c.projects.createProject({ name: p });
  const rt = await c.access.createToken({ name: unique("rt"), role: ROLE_RUNTIME, project: p });
  const t0 = Date.now();
  // a revision far ahead parks the call until its deadline
  await rejects(clients(rt.secret).secrets.resolveSecrets({ project: p, environment: "main", version: VERSION_LIVE, minRevision: 1000000n }, { timeoutMs: 400 }), Code.DeadlineExceeded, "a resolve past its deadline");
  const took = Date.now() - t0;
  assert.ok(took >= 300 && took < 5000, `answered after ${took} ms`);
  const r = await raw("/coffer.v1.Secrets/ResolveSecrets", { token: rt.secret, headers: { "Connect-Timeout-Ms": "300", "Content-Type": "application/json" }, body: JSON.stringify({ project: p, environment: "main", version: "VERSION_LIVE", minRevision: "1000000" }) });
  assert.equal(r.status, 504);
  assert.equal(r.json.code, "deadline_exceeded");
  const bad = await raw("/coffer.v1.Projects/ListProjects", { headers: { "Connect-Timeout-Ms": "soon", "Content-Type": "application/json" }, body: "{}" });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.code, "invalid_argument");
});

test("each error code's HTTP status and error JSON", async () => {
  const p = unique("errors");
  const c = clients(ADMIN);
  await c.projects.createProject({ name: p });
  const s = await c.secrets.createSecret({ project: p, name: "R", value: `${CANARY}-e`, visibility: RESTRICTED });
  const rt = await c.access.createToken({ name: unique("rt"), role: ROLE_RUNTIME, project: p });
  const post = (path, body, token) => raw(path, { body: JSON.stringify(body), token });
  const cases = [
    ["not_found", 404, post("/coffer.v1.Secrets/GetSecret", { project: p, name: "NOPE" })],
    ["invalid_argument", 400, post("/coffer.v1.Secrets/GetSecret", { project: p, name: "no spaces" })],
    ["unauthenticated", 401, post("/coffer.v1.Projects/ListProjects", {}, "cof_nope")],
    ["unauthenticated", 401, post("/coffer.v1.Projects/ListProjects", {}, null)],
    ["permission_denied", 403, post("/coffer.v1.Secrets/CreateSecret", { project: p, name: "X", value: "v" }, rt.secret)],
    ["already_exists", 409, post("/coffer.v1.Projects/CreateProject", { name: p })],
    ["aborted", 409, post("/coffer.v1.Secrets/DeleteSecret", { project: p, name: "R", expectedRevision: String(s.revision + 100n) })],
    ["failed_precondition", 400, post("/coffer.v1.Secrets/RevealSecret", { project: p, name: "R" })],
    ["out_of_range", 400, post("/coffer.v1.Secrets/ResolveSecrets", { project: p, environment: "main", version: "VERSION_LIVE", atRevision: "999999999" }, rt.secret)],
    ["unimplemented", 404, post("/coffer.v1.Nope/Nothing", {})],
    ["unimplemented", 404, post("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", {})],
  ];
  for (const [code, status, pending] of cases) {
    const r = await pending;
    assert.equal(r.status, status, `${code}: ${r.text}`);
    assert.equal(r.type, "application/json");
    assert.equal(r.json.code, code, r.text);
    assert.equal(typeof r.json.message, "string");
    assert.equal(r.cache, "no-store");
    assert.ok(!r.text.includes(CANARY), "no value in an error");
  }
  // what connect-es makes of them
  await rejects(c.secrets.revealSecret({ project: p, name: "R" }), Code.FailedPrecondition, "reveal restricted");
  await rejects(c.secrets.getSecret({ project: p, name: "NOPE" }), Code.NotFound, "get missing");
});

test("bad requests are refused and change nothing", async () => {
  const p = unique("bad");
  const c = clients(ADMIN);
  await c.projects.createProject({ name: p });
  const before = (await c.projects.getProject({ name: p })).revision;
  const cases = [
    [400, "invalid_argument", "application/json", '{"project":"' + p + '","name":"A","value":"v","visiblity":"VISIBILITY_RESTRICTED"}', /unknown field "visiblity"/],
    [400, "invalid_argument", "application/json", '{"project":"' + p + '","name":"A",', /does not parse/],
    [400, "invalid_argument", "application/json", '{"project":"' + p + '","name":7}', /"name"/],
    [400, "invalid_argument", "application/json", '{"project":"' + p + '","name":"A","visibility":"LOUD"}', /Visibility/],
    [415, "invalid_argument", "text/plain", "{}", /Content-Type/],
    [400, "invalid_argument", "application/proto", "\xff\xff\xff", /./],
  ];
  for (const [status, code, type, body, says] of cases) {
    const r = await raw("/coffer.v1.Secrets/CreateSecret", { headers: { "Content-Type": type }, body });
    assert.equal(r.status, status, `${body}: ${r.text}`);
    assert.equal(r.json.code, code, r.text);
    assert.match(r.json.message, says);
  }
  // a body over --max-message-bytes is answered from its head, before the body is read
  const big = await overLimit("/coffer.v1.Secrets/CreateSecret", 5 << 20);
  assert.match(big, /^HTTP\/1\.1 413 /);
  assert.match(big, /"code":"resource_exhausted"/);
  const v2 = await raw("/coffer.v1.Projects/ListProjects", { headers: { "Connect-Protocol-Version": "2", "Content-Type": "application/json" }, body: "{}" });
  assert.equal(v2.status, 400);
  assert.equal((await c.projects.getProject({ name: p })).revision, before, "nothing was written");
  assert.equal((await c.secrets.listSecrets({ project: p })).secrets.length, 0);
});

test("refusals by role and scope", async () => {
  const p = unique("roles"), q = unique("other");
  const c = clients(ADMIN);
  await c.projects.createProject({ name: p });
  await c.projects.createProject({ name: q });
  await c.secrets.createSecret({ project: p, name: "M", value: `${CANARY}-m`, visibility: MASKED });
  const viewer = await c.access.createToken({ name: unique("v"), role: ROLE_VIEWER, project: p });
  const editor = await c.access.createToken({ name: unique("e"), role: ROLE_EDITOR, project: p });
  const rt = await c.access.createToken({ name: unique("rt"), role: ROLE_RUNTIME, project: p, versions: [VERSION_LIVE] });
  const v = clients(viewer.secret), e = clients(editor.secret), r = clients(rt.secret);
  assert.equal((await v.secrets.listSecrets({ project: p })).secrets.length, 1, "a viewer lists");
  await rejects(v.secrets.revealSecret({ project: p, name: "M" }), Code.PermissionDenied, "a viewer reveals");
  await rejects(v.secrets.createSecret({ project: p, name: "N", value: "v" }), Code.PermissionDenied, "a viewer writes");
  assert.equal((await e.secrets.revealSecret({ project: p, name: "M" })).value, `${CANARY}-m`, "an editor reveals");
  await rejects(e.secrets.listSecrets({ project: q }), Code.PermissionDenied, "an editor of another project");
  await rejects(e.secrets.resolveSecrets({ project: p, environment: "main", version: VERSION_LIVE }), Code.PermissionDenied, "a person resolves");
  assert.equal((await r.secrets.resolveSecrets({ project: p, environment: "main", version: VERSION_LIVE })).secrets.length, 1);
  await rejects(r.secrets.resolveSecrets({ project: p, environment: "main", version: VERSION_DRAFT }), Code.PermissionDenied, "a runtime outside its versions");
  await rejects(r.secrets.resolveSecrets({ project: q, environment: "main", version: VERSION_LIVE }), Code.PermissionDenied, "a runtime of another project");
  await rejects(r.secrets.revealSecret({ project: p, name: "M" }), Code.PermissionDenied, "a runtime reveals");
});

async function watchOnce(binary) {
  const p = unique(binary ? "wbin" : "wjson");
  const c = clients(ADMIN);
  await c.projects.createProject({ name: p });
  await c.secrets.createSecret({ project: p, name: "A", value: `${CANARY}-w1` });
  const rt = await c.access.createToken({ name: unique("rt"), role: ROLE_RUNTIME, project: p });
  const abort = new AbortController();
  const seen = [];
  const stream = clients(rt.secret, { binary }).secrets.watchSecrets({ project: p, environment: "main", version: VERSION_LIVE }, { signal: abort.signal });
  const reading = (async () => {
    try {
      for await (const m of stream) {
        seen.push(m);
        if (m.changed.includes("B")) abort.abort();
      }
    } catch (e) {
      if (!(e instanceof ConnectError && e.code === Code.Canceled)) throw e;
    }
  })();
  await new Promise((r) => setTimeout(r, 300));
  const made = await c.secrets.createSecret({ project: p, name: "B", value: `${CANARY}-w2` });
  const timer = setTimeout(() => abort.abort(), 10000);
  await reading;
  clearTimeout(timer);
  const change = seen.find((m) => m.changed.includes("B"));
  assert.ok(change, `the change reached the stream (${JSON.stringify(seen.map((m) => m.changed))})`);
  assert.equal(change.revision, made.revision);
}

test("WatchSecrets as a Connect server stream (application/connect+json)", () => watchOnce(false));
test("WatchSecrets as a Connect server stream (application/connect+proto)", () => watchOnce(true));

test("a stream's refusal comes in its end-of-stream message", async () => {
  const p = unique("wrefused"), q = unique("wother");
  const c = clients(ADMIN);
  await c.projects.createProject({ name: p });
  await c.projects.createProject({ name: q });
  const rt = await c.access.createToken({ name: unique("rt"), role: ROLE_RUNTIME, project: q });
  const stream = clients(rt.secret).secrets.watchSecrets({ project: p, environment: "main", version: VERSION_LIVE }, { timeoutMs: 10000 });
  await rejects((async () => { for await (const _ of stream); })(), Code.PermissionDenied, "a runtime of another project watches");
});

// ---- console sessions (coffer.console.v1.Sessions; docs/console.md) ----

async function signIn(token) {
  const res = await fetch(`${BASE}/coffer.console.v1.Sessions/SignIn`, {
    method: "POST", headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" }, body: "{}",
  });
  const body = await res.json();
  const cookie = res.headers.get("set-cookie") || "";
  return { status: res.status, body, cookie, value: (/coffer_session=([^;]*)/.exec(cookie) || [])[1] };
}

// A call the way the console makes it: the cookie, from the console's own origin.
function withCookie(path, value, body = "{}", headers = {}) {
  return raw(path, { token: null, body, headers: { Cookie: `coffer_session=${value}`, Origin: BASE, "Content-Type": "application/json", ...headers } });
}

test("signing in sets a session cookie (HttpOnly, SameSite=Strict) and never returns its secret", async () => {
  const s = await signIn(ADMIN);
  assert.equal(s.status, 200, JSON.stringify(s.body));
  assert.match(s.cookie, /^coffer_session=[^;]+; Path=\/; HttpOnly; SameSite=Strict$/, "no Secure over plaintext");
  assert.ok(!("secret" in s.body), "the body carries no secret");
  assert.ok(!JSON.stringify(s.body).includes(s.value), "nor the cookie's value");
  assert.equal(s.body.token.role, "ROLE_ADMIN");
  assert.equal(s.body.idleSeconds, 900);
  const end = Date.parse(s.body.expireTime) - Date.now();
  assert.ok(end > 11.9 * 3600e3 && end <= 12 * 3600e3 + 5e3, `ends in 12 h (${end} ms)`);
  const who = await withCookie("/coffer.console.v1.Sessions/GetSession", s.value);
  assert.equal(who.status, 200);
  assert.equal(who.json.token.id, s.body.token.id);
  const listed = await withCookie("/coffer.v1.Projects/ListProjects", s.value);
  assert.equal(listed.status, 200, listed.text);
  // a token never signs in with a session, and a runtime token never signs in
  const again = await withCookie("/coffer.console.v1.Sessions/SignIn", s.value);
  assert.equal(again.status, 401);
  const p = unique("rtsign");
  await clients(ADMIN).projects.createProject({ name: p });
  const rt = await clients(ADMIN).access.createToken({ name: unique("rt"), role: ROLE_RUNTIME, project: p });
  const refused = await signIn(rt.secret);
  assert.equal(refused.status, 403);
  assert.equal(refused.body.code, "permission_denied");
  assert.equal(refused.cookie, "");
});

test("a call riding on the cookie from another origin is refused, and writes nothing", async () => {
  const s = await signIn(ADMIN);
  const name = unique("csrf");
  for (const headers of [{ Origin: "https://evil.example" }, { Origin: "null" }, { "Sec-Fetch-Site": "cross-site" }, { "Sec-Fetch-Site": "same-site" }]) {
    const r = await withCookie("/coffer.v1.Projects/CreateProject", s.value, JSON.stringify({ name }), headers);
    assert.equal(r.status, 403, JSON.stringify(headers));
    assert.equal(r.json.code, "permission_denied");
  }
  await rejects(clients(ADMIN).projects.getProject({ name }), Code.NotFound, "nothing was written");
  // a form of another site cannot even reach a method: its content type is refused first
  const form = await raw("/coffer.v1.Projects/CreateProject", { token: null, body: `name=${name}`, headers: { Cookie: `coffer_session=${s.value}`, Origin: BASE, "Content-Type": "application/x-www-form-urlencoded" } });
  assert.equal(form.status, 415);
  await rejects(clients(ADMIN).projects.getProject({ name }), Code.NotFound, "nothing was written by a form");
});

test("a session ends on sign-out and at once when its token is revoked", async () => {
  const p = unique("sess");
  const c = clients(ADMIN);
  await c.projects.createProject({ name: p });
  const editor = await c.access.createToken({ name: unique("e"), role: ROLE_EDITOR, project: p });
  const viewer = await c.access.createToken({ name: unique("v"), role: ROLE_VIEWER, project: p });
  const se = await signIn(editor.secret), sv = await signIn(viewer.secret);
  assert.equal((await withCookie("/coffer.v1.Secrets/ListSecrets", se.value, JSON.stringify({ project: p }))).status, 200);
  // the viewer's session has the viewer's rights, no more
  const write = await withCookie("/coffer.v1.Secrets/CreateSecret", sv.value, JSON.stringify({ project: p, name: "A", value: `${CANARY}-s` }));
  assert.equal(write.status, 403);
  await c.access.revokeToken({ id: editor.token.id });
  const after = await withCookie("/coffer.v1.Secrets/ListSecrets", se.value, JSON.stringify({ project: p }));
  assert.equal(after.status, 401, "the revoked token's session ended");
  assert.match(after.headers.get("set-cookie") || "", /Max-Age=0/, "and its cookie is cleared");
  const out = await withCookie("/coffer.console.v1.Sessions/SignOut", sv.value);
  assert.equal(out.status, 200);
  assert.match(out.headers.get("set-cookie") || "", /^coffer_session=; .*Max-Age=0/);
  assert.equal((await withCookie("/coffer.v1.Secrets/ListSecrets", sv.value, JSON.stringify({ project: p }))).status, 401);
  // Bearer tokens work as before, without cookies
  assert.equal((await c.secrets.listSecrets({ project: p })).secrets.length, 0);
});
