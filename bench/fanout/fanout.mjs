// fanout.mjs - WatchSecrets at fleet scale, from a client that is not ours (grpc-js).
//
//   node fanout.mjs --target ADDR --proto DIR --token RUNTIME --admin ADMIN --project P
//                   [--streams N] [--connections K] [--writes W] [--label L]
//
// Opens N WatchSecrets streams of (P, main, live) from now, all at once, over K connections (each
// a channel of its own), and waits until each has its first message. Then makes W writes, one
// every 1.5 s (an UpdateSecret of S through its own connection, as an admin), and measures, for
// every stream and every write, the time from the write's answer to the first message that brings
// the stream to its revision or later. Every failure of a stream is counted by its code. The last
// line is machine-readable:
//   RESULT label=L streams=N open_s=... opened=... failed=... writes=W p50_ms=... p99_ms=...
//   max_ms=... missed=...
// Figures, not assertions: scripts/dev bench.
import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";
import path from "node:path";

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, "")] = process.argv[i + 1];
const N = Number(args.streams ?? 10000);
const K = Number(args.connections ?? 20);
const W = Number(args.writes ?? 5);
const label = args.label ?? "fanout";
const now = () => Number(process.hrtime.bigint() / 1000n) / 1000; // ms

const def = protoLoader.loadSync([path.join(args.proto, "coffer/v1/secrets.proto")], {
  includeDirs: [args.proto],
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
});
const Secrets = grpc.loadPackageDefinition(def).coffer.v1.Secrets;
const connect = (i) =>
  new Secrets(args.target, grpc.credentials.createInsecure(), {
    "grpc.use_local_subchannel_pool": 1, // a connection of its own
    "grpc-node.fanout-connection": i,
    "grpc.max_receive_message_length": 4 << 20,
  });
const bearer = (token) => {
  const md = new grpc.Metadata();
  md.add("authorization", `Bearer ${token}`);
  return md;
};

const clients = Array.from({ length: K }, (_, i) => connect(i));
const md = bearer(args.token);
const streams = [];
let opened = 0;
let failed = 0;
const codes = {};
const t0 = now();
let openedAt = 0;
for (let i = 0; i < N; i++) {
  const s = { first: 0, arrivals: [] }; // arrivals: [revision, ms]
  const call = clients[i % K].WatchSecrets(
    { project: args.project, environment: "main", version: "VERSION_LIVE", from_revision: 0 },
    md,
  );
  call.on("data", (m) => {
    const t = now();
    if (!s.first) {
      s.first = t;
      if (++opened === N) openedAt = t;
    }
    s.arrivals.push([m.revision, t]);
  });
  call.on("error", (e) => {
    if (e.code === grpc.status.CANCELLED && done) return;
    failed++;
    codes[e.code] = (codes[e.code] ?? 0) + 1;
  });
  s.call = call;
  streams.push(s);
}
let done = false;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
while (opened + failed < N && now() - t0 < 120000) await sleep(50);
const openS = ((openedAt || now()) - t0) / 1000;
console.error(`${label}: ${opened} of ${N} streams open in ${openS.toFixed(2)} s over ${K} connections; ${failed} failed ${JSON.stringify(codes)}`);
if (process.send) process.send("open");
if (args["hold-s"]) await sleep(Number(args["hold-s"]) * 1000);

// The writes, and when each was answered.
const admin = connect(K + 1);
const amd = bearer(args.admin);
const writes = [];
for (let w = 0; w < W; w++) {
  await sleep(1500);
  const rev = await new Promise((resolve, reject) =>
    admin.UpdateSecret(
      { project: args.project, name: "S", value: `fanout-${w}-${Date.now()}`, value_update: "value" },
      amd,
      { deadline: Date.now() + 10000 },
      (err, res) => (err ? reject(err) : resolve(res.revision)),
    ),
  );
  writes.push([rev, now()]);
}
await sleep(3000);
const lat = [];
let missed = 0;
for (const s of streams) {
  for (const [rev, at] of writes) {
    const got = s.arrivals.find(([r]) => r >= rev);
    if (got) lat.push(Math.max(0, got[1] - at));
    else missed++;
  }
}
lat.sort((a, b) => a - b);
const pct = (p) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor((p / 100) * lat.length))] : NaN);
console.error(
  `${label}: ${W} writes x ${N} streams: from the write's answer to the stream, p50 ${pct(50).toFixed(1)} ms, ` +
    `p99 ${pct(99).toFixed(1)} ms, max ${pct(100).toFixed(1)} ms; ${missed} missed`,
);
console.log(
  `RESULT label=${label} streams=${N} open_s=${openS.toFixed(2)} opened=${opened} failed=${failed} ` +
    `writes=${W} p50_ms=${pct(50).toFixed(1)} p99_ms=${pct(99).toFixed(1)} max_ms=${pct(100).toFixed(1)} missed=${missed}`,
);
done = true;
for (const s of streams) s.call.cancel();
for (const c of clients) c.close();
admin.close();
process.exit(0);
