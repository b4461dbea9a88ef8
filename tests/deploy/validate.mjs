// tests/deploy/validate.mjs - checks deploy/ against the Kubernetes schemas (kubernetes-models)
// and against cofferd itself:
//   node validate.mjs DEPLOY_DIR COFFERD_HELP_FILE COFFER_HELP_FILE
// The help files are `cofferd --help` and `coffer help; coffer help run`: every COFFER_* variable
// the manifests set must be a setting cofferd (or, for an application, the CLI) reads. The example
// overlay is applied (namespace, images, strategic-merge patches by name) and validated again;
// every folder of deploy/examples is validated, and the application example is checked against
// the CLI and the base (the command, the token, the snapshot's volume, the NetworkPolicy).
import fs from "node:fs";
import path from "node:path";
import YAML from "yaml";
import { Service, ServiceAccount } from "kubernetes-models/v1";
import { Deployment } from "kubernetes-models/apps/v1";
import { Job } from "kubernetes-models/batch/v1";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1";
import { HorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2";
import { SecretStore, ExternalSecret } from "@kubernetes-models/external-secrets/external-secrets.io/v1";

const [deployDir, helpFile, cliHelpFile] = process.argv.slice(2);
const help = fs.readFileSync(helpFile, "utf8");
const cliHelp = fs.readFileSync(cliHelpFile, "utf8");
const models = {
  "v1/Service": Service,
  "v1/ServiceAccount": ServiceAccount,
  "apps/v1/Deployment": Deployment,
  "batch/v1/Job": Job,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
  "networking.k8s.io/v1/NetworkPolicy": NetworkPolicy,
  "autoscaling/v2/HorizontalPodAutoscaler": HorizontalPodAutoscaler,
  "external-secrets.io/v1/SecretStore": SecretStore,
  "external-secrets.io/v1/ExternalSecret": ExternalSecret,
};
const SECRETS = new Set(["coffer-database", "coffer-root-key", "coffer-bootstrap-token", "coffer-tls"]);
let passed = 0, failed = 0;
function check(ok, what) {
  if (ok) { passed++; console.log(`ok: ${what}`); } else { failed++; console.log(`FAIL: ${what}`); }
}

function load(dir) {
  const kust = YAML.parse(fs.readFileSync(path.join(dir, "kustomization.yaml"), "utf8"));
  return { kust, docs: (kust.resources || []).flatMap((r) => {
    const p = path.join(dir, r);
    if (fs.statSync(p).isDirectory()) return [];
    return YAML.parseAllDocuments(fs.readFileSync(p, "utf8")).map((d) => d.toJSON()).filter(Boolean);
  }) };
}

function validate(docs, label) {
  for (const doc of docs) {
    const key = `${doc.apiVersion}/${doc.kind}`;
    const Model = models[key];
    check(Model !== undefined, `${label}: ${key} ${doc.metadata?.name} has a schema`);
    if (!Model) continue;
    try {
      new Model(doc).validate();
      check(true, `${label}: ${key} ${doc.metadata.name} validates`);
    } catch (e) {
      check(false, `${label}: ${key} ${doc.metadata.name}: ${e.message}`);
    }
  }
}

// Strategic merge, enough for these patches: maps merge, lists of named items merge by name.
function merge(base, patch) {
  if (Array.isArray(base) && Array.isArray(patch)) {
    const out = base.map((x) => structuredClone(x));
    for (const p of patch) {
      const i = p && p.name !== undefined ? out.findIndex((x) => x.name === p.name) : -1;
      if (i >= 0) out[i] = merge(out[i], p); else out.push(p);
    }
    return out;
  }
  if (base && patch && typeof base === "object" && typeof patch === "object") {
    const out = { ...base };
    for (const [k, v] of Object.entries(patch)) out[k] = k in base ? merge(base[k], v) : v;
    return out;
  }
  return patch;
}

const base = load(path.join(deployDir, "base"));
validate(base.docs, "base");
// Control: the schema check does reject a broken Deployment.
{
  const broken = structuredClone(base.docs.find((d) => d.kind === "Deployment"));
  broken.spec.replicas = "three";
  broken.spec.template.spec.containers[0].ports[0].containerPort = "grpc";
  let rejected = false;
  try { new Deployment(broken).validate(); } catch { rejected = true; }
  check(rejected, "control: the schema check rejects a malformed Deployment");
}
const byKind = (docs, kind) => docs.filter((d) => d.kind === kind);
check(byKind(base.docs, "Secret").length === 0, "no Secret is kept in the manifests");

// The server as cofferd reads and serves it.
const dep = byKind(base.docs, "Deployment")[0];
const pod = dep.spec.template.spec;
const c = pod.containers[0];
const env = Object.fromEntries(c.env.map((e) => [e.name, e]));
const portOf = (name) => c.ports.find((p) => p.name === name)?.containerPort;
check(dep.spec.replicas === 3, "3 replicas");
for (const name of Object.keys(env))
  check(!name.startsWith("COFFER_") || help.includes(name), `cofferd reads ${name}`);
check(env.COFFER_LISTEN?.value?.endsWith(`:${portOf("grpc")}`), "COFFER_LISTEN is the grpc container port");
check(env.COFFER_METRICS_LISTEN?.value?.endsWith(`:${portOf("metrics")}`), "COFFER_METRICS_LISTEN is the metrics container port");
check(!env.COFFER_HTTP_LISTEN || env.COFFER_HTTP_LISTEN.value?.endsWith(`:${portOf("https")}`),
      "COFFER_HTTP_LISTEN is the https container port");
check(c.readinessProbe?.grpc?.port === portOf("grpc") && c.readinessProbe.grpc.service === "",
      "readiness: native gRPC probe of health service \"\" (NOT_SERVING while the database is down)");
check(c.livenessProbe?.grpc?.port === portOf("grpc") && c.livenessProbe.grpc.service === "liveness",
      "liveness: native gRPC probe of health service \"liveness\" (independent of the database)");
check(c.resources?.requests?.cpu && c.resources?.limits?.memory, "resource requests and limits");
check(pod.securityContext?.runAsNonRoot === true && pod.securityContext.runAsUser === 10001, "non-root (uid 10001, as in the image)");
check(c.securityContext?.readOnlyRootFilesystem === true && c.securityContext.allowPrivilegeEscalation === false,
      "read-only root file system, no privilege escalation");
check((pod.topologySpreadConstraints || []).some((t) => t.topologyKey === "kubernetes.io/hostname"), "topology spread over nodes");
const secretRefs = [
  ...c.env.filter((e) => e.valueFrom?.secretKeyRef).map((e) => e.valueFrom.secretKeyRef.name),
  ...pod.volumes.filter((v) => v.secret).map((v) => v.secret.secretName),
];
check(secretRefs.length >= 4 && secretRefs.every((n) => SECRETS.has(n)), `secrets come from ${[...SECRETS].join(", ")}`);
for (const key of ["COFFER_ROOT_KEY_FILE", "COFFER_BOOTSTRAP_TOKEN_FILE", "COFFER_TLS_CERT_FILE", "COFFER_TLS_KEY_FILE"]) {
  const file = env[key]?.value || "";
  check(c.volumeMounts.some((m) => file.startsWith(m.mountPath + "/")), `${key} is on a mounted Secret volume`);
}
check(env.COFFER_DATABASE_URL?.valueFrom?.secretKeyRef?.name === "coffer-database", "the database URL comes from a Secret");
const grace = Number(env.COFFER_GRACE_SECONDS?.value || 10);
check(pod.terminationGracePeriodSeconds > grace, "terminationGracePeriodSeconds exceeds cofferd's grace period");

const svc = byKind(base.docs, "Service")[0];
check(svc.spec.ports.every((p) => c.ports.some((cp) => cp.name === p.targetPort)), "Service targets the named container ports");
check(["grpc", "metrics"].every((n) => svc.spec.ports.some((p) => p.name === n)), "Service has grpc and metrics ports");
const sel = dep.spec.selector.matchLabels;
const matches = (s) => Object.entries(s || {}).every(([k, v]) => dep.spec.template.metadata.labels[k] === v);
check(matches(svc.spec.selector), "Service selects the Deployment's pods");
check(matches(byKind(base.docs, "PodDisruptionBudget")[0].spec.selector.matchLabels), "PodDisruptionBudget selects them");
check(matches(byKind(base.docs, "NetworkPolicy")[0].spec.podSelector.matchLabels), "NetworkPolicy selects them");
const np = byKind(base.docs, "NetworkPolicy")[0];
const npPorts = JSON.stringify(np.spec);
check([portOf("grpc"), portOf("metrics"), 5432].every((p) => npPorts.includes(`"port":${p}`)), "NetworkPolicy opens grpc, metrics and PostgreSQL");
const hpa = byKind(base.docs, "HorizontalPodAutoscaler")[0];
check(hpa.spec.scaleTargetRef.name === dep.metadata.name && hpa.spec.minReplicas >= 3, "HPA scales the Deployment from 3");
const job = byKind(base.docs, "Job")[0];
const jc = job.spec.template.spec.containers[0];
check(JSON.stringify(jc.args) === '["migrate"]' && jc.image === c.image, "migration Job runs `cofferd migrate` with the same image");
check(jc.env.every((e) => !e.name.startsWith("COFFER_") || help.includes(e.name)), "the Job sets only settings cofferd reads");
check(sel && Object.keys(sel).length > 0, "Deployment selector");

// The example overlay.
const ovDir = path.join(deployDir, "overlays", "example");
const ov = YAML.parse(fs.readFileSync(path.join(ovDir, "kustomization.yaml"), "utf8"));
check((ov.resources || []).includes("../../base"), "overlay builds on the base");
let docs = structuredClone(base.docs);
for (const p of ov.patches || []) {
  const patch = YAML.parse(fs.readFileSync(path.join(ovDir, p.path), "utf8"));
  const i = docs.findIndex((d) => d.kind === p.target.kind && d.metadata.name === p.target.name);
  check(i >= 0, `overlay patch ${p.path} targets ${p.target.kind}/${p.target.name}`);
  if (i >= 0) docs[i] = merge(docs[i], patch);
}
for (const d of docs) {
  if (ov.namespace) d.metadata.namespace = ov.namespace;
  for (const pod of [d.spec?.template?.spec].filter(Boolean))
    for (const ct of pod.containers)
      for (const img of ov.images || [])
        if (ct.image.split(":")[0] === img.name) ct.image = `${img.newName || img.name}:${img.newTag}`;
}
check((ov.images || []).every((img) => base.docs.some((d) => JSON.stringify(d).includes(`"image":"${img.name}:`))),
      "overlay images name the base image");
validate(docs, "overlay");

// Every example is a kustomization of valid objects, with no Secret in it.
const exDir = path.join(deployDir, "examples");
const examples = fs.existsSync(exDir) ? fs.readdirSync(exDir).sort() : [];
const loaded = {};
for (const name of examples) {
  loaded[name] = load(path.join(exDir, name));
  validate(loaded[name].docs, `examples/${name}`);
  check(byKind(loaded[name].docs, "Secret").length === 0, `examples/${name}: no Secret is kept in the manifests`);
}

// The application example: a container that starts through `coffer run --watch --fallback` with
// nothing but a runtime token from a Secret.
check(examples.includes("app"), "deploy/examples/app exists");
if (loaded.app) {
  const app = byKind(loaded.app.docs, "Deployment")[0];
  const apod = app?.spec?.template?.spec || {};
  const ac = (apod.containers || [])[0] || {};
  const cmd = [...(ac.command || []), ...(ac.args || [])];
  const sep = cmd.indexOf("--");
  const opts = sep > 0 ? cmd.slice(2, sep) : [];
  const optv = (name) => { const i = opts.indexOf(name); return i >= 0 ? opts[i + 1] : undefined; };
  check(path.basename(cmd[0] || "") === "coffer" && cmd[1] === "run", "app: the container starts through `coffer run`");
  check(sep > 0 && sep < cmd.length - 1, "app: `coffer run ... -- PROGRAM` names the program after --");
  check(opts.includes("--watch"), "app: coffer run --watch (restart on change)");
  for (const o of opts.filter((o) => o.startsWith("--")))
    check(cliHelp.includes(`[${o}`), `app: coffer run takes ${o}`);
  const snap = optv("--fallback") || "";
  const snapMount = (ac.volumeMounts || []).find((m) => snap.startsWith(m.mountPath + "/"));
  const snapVol = (apod.volumes || []).find((v) => v.name === snapMount?.name);
  check(snapVol?.emptyDir !== undefined && !snapMount.readOnly,
        "app: the fallback snapshot is on a writable emptyDir (it outlives container restarts)");
  const aenv = Object.fromEntries((ac.env || []).map((e) => [e.name, e]));
  for (const name of Object.keys(aenv))
    check(!name.startsWith("COFFER_") || cliHelp.includes(name), `app: the CLI reads ${name}`);
  check(aenv.COFFER_TOKEN?.valueFrom?.secretKeyRef?.name !== undefined && aenv.COFFER_TOKEN.value === undefined,
        "app: COFFER_TOKEN comes from a Kubernetes Secret");
  const ca = aenv.COFFER_CA_FILE?.value || "";
  check(ca && (ac.volumeMounts || []).some((m) => ca.startsWith(m.mountPath + "/")), "app: COFFER_CA_FILE is on a mounted volume");
  const [host, port] = (aenv.COFFER_ADDR?.value || "").split(":");
  const grpcPort = svc.spec.ports.find((p) => p.name === "grpc")?.port;
  check(host?.split(".")[0] === svc.metadata.name && Number(port) === grpcPort,
        "app: COFFER_ADDR is the coffer Service's grpc port");
  const labels = app?.spec?.template?.metadata?.labels || {};
  check(np.spec.ingress.some((r) => (r.ports || []).some((p) => p.port === portOf("grpc")) &&
        (r.from || []).some((f) => Object.entries(f.podSelector?.matchLabels || {}).every(([k, v]) => labels[k] === v))),
        "app: its pods are let in by Coffer's NetworkPolicy");
  check(apod.securityContext?.runAsNonRoot === true && ac.securityContext?.readOnlyRootFilesystem === true &&
        ac.securityContext?.allowPrivilegeEscalation === false, "app: non-root, read-only root file system");
  check(apod.automountServiceAccountToken === false, "app: no Kubernetes API token mounted");
}
// The External Secrets Operator example: stores over Coffer's HTTP endpoint, with the token from
// a labelled Secret, and a NetworkPolicy that opens that port to ESO alone.
check(examples.includes("external-secrets"), "deploy/examples/external-secrets exists");
if (loaded["external-secrets"]) {
  const docs = loaded["external-secrets"].docs;
  // Control: the ESO schema check does reject a broken store.
  let rejected = false;
  try { new SecretStore({ metadata: { name: "x" }, spec: { provider: { webhook: { result: { jsonPath: "$" } } } } }).validate(); }
  catch { rejected = true; }
  check(rejected, "control: the ESO schema check rejects a webhook store without a URL");
  const httpPort = portOf("https");
  const svcHttps = svc.spec.ports.find((p) => p.targetPort === "https");
  check(env.COFFER_HTTP_LISTEN !== undefined && svcHttps !== undefined,
        "external-secrets: the base serves HTTP (COFFER_HTTP_LISTEN) behind the Service");
  const stores = byKind(docs, "SecretStore");
  check(stores.length >= 1, "external-secrets: a SecretStore");
  const PATH = /^\/v1\/projects\/[a-z0-9-]+\/environments\/[a-z0-9-]+\/versions\/(draft|live)\/secrets(\/\{\{ \.remoteRef\.key \}\})?$/;
  for (const st of stores) {
    const w = st.spec.provider.webhook || {};
    let u = null;
    try { u = new URL(w.url.replace(/\{\{[^}]*\}\}/g, "KEY")); } catch { /* checked below */ }
    check(u && u.protocol === "https:" && u.hostname.split(".")[0] === svc.metadata.name &&
          Number(u.port) === svcHttps?.port,
          `external-secrets: store ${st.metadata.name} calls the coffer Service's https port over TLS`);
    check(PATH.test(decodeURI(w.url.replace(/^https:\/\/[^/]+/, ""))),
          `external-secrets: store ${st.metadata.name} uses a path of the HTTP API (docs/api.md)`);
    check((w.method || "GET") === "GET", `external-secrets: store ${st.metadata.name} only GETs`);
    const ref = (w.secrets || [])[0];
    check(/^Bearer \{\{ \.[a-z]+\.[a-z]+ \}\}$/.test(w.headers?.Authorization || "") &&
          ref && w.headers.Authorization.includes(`.${ref.name}.${ref.secretRef.key}`),
          `external-secrets: store ${st.metadata.name} sends the token from its Secret as a bearer token`);
    check(w.caProvider?.key !== undefined, `external-secrets: store ${st.metadata.name} verifies Coffer with a CA`);
    const single = w.url.includes(".remoteRef.key");
    check(w.result?.jsonPath === (single ? "$.value" : "$.secrets"),
          `external-secrets: store ${st.metadata.name} reads ${single ? "$.value" : "$.secrets"}, the shape it gets`);
  }
  const ess = byKind(docs, "ExternalSecret");
  const storeNames = new Set(stores.map((s) => s.metadata.name));
  check(ess.some((e) => (e.spec.data || []).length > 0), "external-secrets: an ExternalSecret for one key");
  check(ess.some((e) => (e.spec.dataFrom || []).some((d) => d.extract)), "external-secrets: an ExternalSecret that extracts the whole environment");
  for (const e of ess)
    check(storeNames.has(e.spec.secretStoreRef.name), `external-secrets: ${e.metadata.name} uses a store of the example`);
  const enp = byKind(docs, "NetworkPolicy")[0];
  check(enp !== undefined && matches(enp.spec.podSelector.matchLabels) &&
        enp.spec.ingress.every((r) => r.ports.every((p) => p.port === httpPort)) &&
        enp.spec.ingress.every((r) => r.from.every((f) => f.namespaceSelector)),
        "external-secrets: its NetworkPolicy opens only Coffer's https port, to ESO's namespace");
  check(!JSON.stringify(np.spec.ingress).includes(`"port":${httpPort}`),
        "the base NetworkPolicy keeps the HTTP port closed");
}
console.log(`deploy: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
