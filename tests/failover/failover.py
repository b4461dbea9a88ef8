"""The failover suite: what Coffer does when its PostgreSQL fails over, measured under load.

A primary (A) with a synchronous streaming standby (B, made by pg_basebackup -R), two cofferd on
the multi-host URL "host=...,... target_session_attrs=read-write", 20 writes/s and 200 resolves/s
from grpcio, a watch, and pollers of readiness and the cache. Then, in order:

  1. the synchronous standby goes away: commits are not confirmed, so writes end UNKNOWN or
     UNAVAILABLE (never OK) and readiness turns NOT_SERVING; the standby comes back: writes and
     readiness come back, without a restart;
  2. the primary stops and the standby is promoted: writes go through again within 10 s on both
     replicas, with only UNAVAILABLE/UNKNOWN/DEADLINE_EXCEEDED meanwhile;
  3. (a new standby is made from the new primary) the primary hangs (SIGSTOP) and the standby is
     promoted: the cache goes off while the listener is in doubt, writes go through again within
     10 s of the promotion without a restart, a cofferd told SIGTERM during the hang stops within
     its grace, starts again, and serves; the watch is told to resync (a new timeline);
  4. every acknowledged write is there; a token revoked on one replica is refused on the other
     within a second;
  5. an asynchronous standby that lags is promoted, losing an acknowledged write: no replica
     serves the lost value from memory, and a watch that knew it resyncs;
  6. backup and restore: pg_dump and the root key give a database where every secret resolves
     as before and the audit rows are identical; a wrong root key is refused by name.

Run by tests/failover/run.sh (scripts/dev test), which sets COFFER_TEST_* and generates the stubs.
"""
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import grpc

from coffer.v1 import access_pb2 as access, access_pb2_grpc as access_grpc
from coffer.v1 import common_pb2 as common
from coffer.v1 import projects_pb2 as projects, projects_pb2_grpc as projects_grpc
from coffer.v1 import secrets_pb2 as secrets, secrets_pb2_grpc as secrets_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

PG_BIN = os.environ["COFFER_TEST_PG_BIN"]
PG_USER = os.environ.get("COFFER_TEST_PG_USER", "")
STATE = os.environ.get("COFFER_FAILOVER_DIR") or os.path.join(os.environ["COFFER_TEST_STATE"], "failover")
BUILD = os.environ["COFFER_TEST_BUILD"]
ROOT_KEY = os.environ["COFFER_TEST_ROOT_KEY_FILE"]
CODES = grpc.StatusCode
GRACE = 3
failures = []
started = []  # every cofferd started, killed if the suite ends early


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def check(ok, what):
    print(("ok: " if ok else "FAIL: ") + what, flush=True)
    if not ok:
        failures.append(what)


def free_port(start):
    import socket
    p = start
    while True:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p))
                return p
            except OSError:
                p += 1


def as_pg(*cmd, **kw):
    args = [os.path.join(PG_BIN, cmd[0])] + list(cmd[1:])
    if os.geteuid() == 0:
        args = ["runuser", "-u", PG_USER, "--"] + args
    return subprocess.run(args, cwd="/", check=kw.get("check", True), capture_output=True, text=True)


class Cluster:
    """One PostgreSQL server of the pair, in STATE/name, on port."""

    def __init__(self, name, port):
        self.name, self.port = name, port
        self.dir = os.path.join(STATE, name)
        self.logfile = os.path.join(STATE, f"{name}.log")

    def _own(self):
        if os.geteuid() == 0:
            shutil.chown(self.dir, PG_USER)
            os.chmod(self.dir, 0o700)

    def init(self):
        os.makedirs(self.dir)
        self._own()
        as_pg("initdb", "-D", self.dir, "-U", "coffer", "--auth=trust", "--no-locale", "-E", "UTF8")
        with open(os.path.join(self.dir, "postgresql.auto.conf"), "a") as f:
            f.write("listen_addresses = '127.0.0.1'\nunix_socket_directories = ''\nfsync = off\n"
                    "wal_keep_size = '256MB'\n")

    def base_backup(self, source):
        os.makedirs(self.dir)
        self._own()
        as_pg("pg_basebackup", "-h", "127.0.0.1", "-p", str(source.port), "-U", "coffer", "-D",
              self.dir, "-R", "-X", "stream", "--checkpoint=fast")

    def set(self, line):
        with open(os.path.join(self.dir, "postgresql.auto.conf"), "a") as f:
            f.write(line + "\n")

    def start(self):
        open(self.logfile, "a").close()
        if os.geteuid() == 0:
            shutil.chown(self.logfile, PG_USER)
        as_pg("pg_ctl", "-D", self.dir, "-l", self.logfile, "-w", "-t", "60", "-o",
              f"-p {self.port}", "start")

    def stop(self, mode="fast"):
        as_pg("pg_ctl", "-D", self.dir, "-m", mode, "-w", "stop", check=False)

    def reload(self):
        as_pg("pg_ctl", "-D", self.dir, "reload")

    def promote(self):
        as_pg("pg_ctl", "-D", self.dir, "-w", "promote")

    def pids(self):
        """The postmaster and every process it started."""
        with open(os.path.join(self.dir, "postmaster.pid")) as f:
            pm = int(f.readline())
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pm)], capture_output=True, text=True).stdout
        return [pm] + [int(x) for x in out.split()]

    def signal_all(self, sig):
        for pid in self.pids():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def sql(self, query, db="coffer"):
        out = subprocess.run([os.path.join(PG_BIN, "psql"), "-h", "127.0.0.1", "-p", str(self.port),
                              "-U", "coffer", "-d", db, "-qAtc", query],
                             capture_output=True, text=True, timeout=20)
        if out.returncode != 0:
            raise RuntimeError(f"psql on {self.name}: {out.stderr.strip()}")
        return out.stdout.strip()


class Bearer(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """Adds `authorization: Bearer <token>` to every call of a channel."""

    def __init__(self, token):
        self.md = [("authorization", f"Bearer {token}")]

    def intercept_unary_unary(self, cont, d, req):
        return cont(_D(d, self.md), req)

    def intercept_unary_stream(self, cont, d, req):
        return cont(_D(d, self.md), req)


class _D(grpc.ClientCallDetails):
    def __init__(self, d, md):
        self.method, self.timeout = d.method, d.timeout
        self.metadata = list(d.metadata or []) + md
        self.credentials, self.wait_for_ready = d.credentials, getattr(d, "wait_for_ready", None)
        self.compression = getattr(d, "compression", None)


class Replica:
    """One cofferd on the multi-host URL."""

    def __init__(self, name, url, port, mport, token_file=None):
        self.name, self.url, self.port, self.mport = name, url, port, mport
        self.addr = f"127.0.0.1:{port}"
        self.logfile = os.path.join(STATE, f"cofferd-{name}.log")
        self.token_file = token_file
        self.proc = None

    def start(self, root_key=ROOT_KEY, wait=True, extra=()):
        args = [os.path.join(BUILD, "bin", "cofferd"), "serve", "--listen", self.addr, "--database-url",
                self.url, "--root-key-file", root_key, "--migrate", "--grace-seconds", str(GRACE),
                "--metrics-listen", f"127.0.0.1:{self.mport}", "--watch-heartbeat-seconds", "1"]
        if self.token_file:
            args += ["--bootstrap-token-file", self.token_file]
        self.proc = subprocess.Popen(args + list(extra), stdout=open(self.logfile, "a"),
                                     stderr=subprocess.STDOUT)
        started.append(self.proc)
        if wait:
            self.wait_serving(60)

    def health(self, timeout=1.0):
        try:
            with grpc.insecure_channel(self.addr) as ch:
                r = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=timeout)
                return r.status
        except grpc.RpcError:
            return -1

    def wait_serving(self, seconds):
        until = time.time() + seconds
        while time.time() < until:
            if self.health() == health_pb2.HealthCheckResponse.SERVING:
                return True
            if self.proc.poll() is not None:
                raise RuntimeError(f"cofferd {self.name} exited {self.proc.returncode}")
            time.sleep(0.2)
        raise RuntimeError(f"cofferd {self.name} is not SERVING after {seconds} s")

    def metric(self, name):
        import urllib.request
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.mport}/metrics", timeout=1) as r:
                for line in r.read().decode().splitlines():
                    if line.startswith(name + " "):
                        return float(line.split()[1])
        except OSError:
            return None
        return None

    def channel(self, token):
        return grpc.intercept_channel(grpc.insecure_channel(self.addr), Bearer(token))


class Load:
    """20 writes/s and 200 resolves/s over both replicas, a watch, and pollers; every outcome kept
    with its time."""

    def __init__(self, replicas, project, admin, runtime):
        self.replicas, self.project = replicas, project
        self.admin, self.runtime = admin, runtime
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.writes = []    # (t_start, t_end, replica, secret, value, code, revision)
        self.resolves = []  # (t_end, replica, code)
        self.health = []    # (t, replica, status)
        self.cache = []     # (t, replica, enabled)
        self.watch = []     # (t, revision, resync, heartbeat)
        self.threads = []

    def start(self):
        for i in range(4):
            self.threads.append(threading.Thread(target=self._writer, args=(i,), daemon=True))
            self.threads.append(threading.Thread(target=self._resolver, args=(i,), daemon=True))
        self.threads.append(threading.Thread(target=self._poller, daemon=True))
        self.threads.append(threading.Thread(target=self._watcher, daemon=True))
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=15)

    def _writer(self, i):
        n = 0
        stubs = [secrets_grpc.SecretsStub(r.channel(self.admin)) for r in self.replicas]
        while not self.stop.is_set():
            n += 1
            r = (i + n) % len(self.replicas)
            value = f"w{i}-{n}"
            t0 = time.time()
            code, rev = CODES.OK, 0
            try:
                s = stubs[r].UpdateSecret(secrets.UpdateSecretRequest(
                    project=self.project, name=f"W{i}", value=value), timeout=3)
                rev = s.revision
            except grpc.RpcError as e:
                code = e.code()
            with self.lock:
                self.writes.append((t0, time.time(), r, f"W{i}", value, code, rev))
            time.sleep(max(0, 0.2 - (time.time() - t0)))

    def _resolver(self, i):
        stubs = [secrets_grpc.SecretsStub(r.channel(self.runtime)) for r in self.replicas]
        n = 0
        while not self.stop.is_set():
            n += 1
            r = (i + n) % len(self.replicas)
            t0 = time.time()
            code = CODES.OK
            try:
                stubs[r].ResolveSecrets(secrets.ResolveSecretsRequest(
                    project=self.project, environment="main", version=common.VERSION_LIVE), timeout=2)
            except grpc.RpcError as e:
                code = e.code()
            with self.lock:
                self.resolves.append((time.time(), r, code))
            time.sleep(max(0, 0.02 - (time.time() - t0)))

    def _poller(self):
        while not self.stop.is_set():
            for k, r in enumerate(self.replicas):
                t = time.time()
                h = r.health(timeout=0.5)
                c = r.metric("coffer_cache_enabled")
                with self.lock:
                    self.health.append((t, k, h))
                    if c is not None:
                        self.cache.append((t, k, c))
            time.sleep(0.2)

    def _watcher(self):
        stub = secrets_grpc.SecretsStub(self.replicas[0].channel(self.runtime))
        revision = 0
        while not self.stop.is_set():
            try:
                for m in stub.WatchSecrets(secrets.WatchSecretsRequest(
                        project=self.project, environment="main", version=common.VERSION_LIVE,
                        from_revision=revision), timeout=30):
                    with self.lock:
                        self.watch.append((time.time(), m.revision, m.resync, m.heartbeat))
                    revision = m.revision
                    if self.stop.is_set():
                        break
            except grpc.RpcError:
                time.sleep(0.2)

    def first_ok_write_after(self, t, replica=None):
        with self.lock:
            ok = [w[1] for w in self.writes
                  if w[0] >= t and w[5] == CODES.OK and (replica is None or w[2] == replica)]
        return min(ok) if ok else None

    def write_codes_between(self, t0, t1):
        with self.lock:
            return {w[5] for w in self.writes if t0 <= w[0] < t1}


def wait_until(pred, seconds, step=0.2):
    until = time.time() + seconds
    while time.time() < until:
        if pred():
            return True
        time.sleep(step)
    return pred()


def main():
    shutil.rmtree(STATE, ignore_errors=True)
    os.makedirs(STATE)
    if os.geteuid() == 0:
        os.chmod(STATE, 0o755)
    pa, pb = free_port(25600), None
    pb = free_port(pa + 1)
    a, b = Cluster("a", pa), Cluster("b", pb)
    a.init()
    a.start()
    a.sql("CREATE DATABASE coffer", db="postgres")
    b.base_backup(a)
    b.set("synchronous_standby_names = ''")
    b.start()
    a.set("synchronous_standby_names = '*'")
    a.reload()
    check(wait_until(lambda: a.sql("SELECT sync_state FROM pg_stat_replication") == "sync", 30),
          "B streams from A as its synchronous standby")
    url = (f"host=127.0.0.1,127.0.0.1 port={pa},{pb} dbname=coffer user=coffer "
           "target_session_attrs=read-write")
    token_file = os.path.join(STATE, "admin.token")
    r1 = Replica("1", url, free_port(25650), free_port(25660), token_file)
    r1.start()
    r2 = Replica("2", url, free_port(25670), free_port(25680))
    r2.start()
    admin = open(token_file).read().strip()
    with r1.channel(admin) as ch:
        projects_grpc.ProjectsStub(ch).CreateProject(projects.CreateProjectRequest(name="fleet"), timeout=10)
        sec = secrets_grpc.SecretsStub(ch)
        for name in ["A", "B", "W0", "W1", "W2", "W3"]:
            sec.CreateSecret(secrets.CreateSecretRequest(project="fleet", name=name, value=f"{name}-0"),
                             timeout=10)
        runtime = access_grpc.AccessStub(ch).CreateToken(access.CreateTokenRequest(
            name="fleet-rt", role=access.ROLE_RUNTIME, project="fleet"), timeout=10)
    load = Load([r1, r2], "fleet", admin, runtime.secret)
    load.start()
    time.sleep(4)
    check(load.first_ok_write_after(0) is not None, "writes and resolves go through before any failure")

    # ---- 1. the synchronous standby goes away ----
    log("1. the synchronous standby stops")
    t1 = time.time()
    b.stop("fast")
    not_serving = wait_until(lambda: all(r.health() == health_pb2.HealthCheckResponse.NOT_SERVING
                                         for r in (r1, r2)), 15)
    check(not_serving, "commits not confirmed: both replicas say NOT_SERVING (within 15 s)")
    time.sleep(2)
    t1b = time.time()
    codes = load.write_codes_between(t1 + 1, t1b)
    check(CODES.OK not in codes, f"no write is acknowledged while the synchronous standby is away ({codes})")
    # The writes whose commits were on their way when the standby went (started up to a write's
    # 3 s deadline before) hold the database threads: they are the ones answered UNKNOWN; those
    # that queue behind them may reach their deadline first (DEADLINE_EXCEEDED, never started).
    codes = load.write_codes_between(t1 - 3, t1b) - {CODES.OK}
    check(CODES.UNKNOWN in codes, f"a commit not confirmed in time is answered UNKNOWN ({codes})")
    check(codes <= {CODES.UNKNOWN, CODES.UNAVAILABLE, CODES.DEADLINE_EXCEEDED},
          f"writes meanwhile end UNKNOWN (a commit not confirmed), DEADLINE_EXCEEDED (waiting "
          f"for it) or UNAVAILABLE ({codes})")
    b.start()
    t1c = time.time()
    ok_at = wait_until(lambda: load.first_ok_write_after(t1c) is not None, 20)
    check(ok_at, "the standby is back: writes go through again (within 20 s)")
    check(wait_until(lambda: all(r.health() == health_pb2.HealthCheckResponse.SERVING for r in (r1, r2)), 20),
          "the standby is back: both replicas SERVING again, without a restart")

    # ---- 2. the primary stops; the standby is promoted ----
    log("2. the primary stops and the standby is promoted")
    a.stop("fast")
    b.promote()
    t2 = time.time()
    for k, r in enumerate((r1, r2)):
        got = wait_until(lambda: load.first_ok_write_after(t2, k) is not None, 20)
        took = (load.first_ok_write_after(t2, k) or time.time()) - t2
        check(got and took <= 10, f"stop: writes through replica {k + 1} again {took:.2f} s after the promotion")
    codes = load.write_codes_between(t2 - 2, t2 + 10) - {CODES.OK}
    check(codes <= {CODES.UNKNOWN, CODES.UNAVAILABLE, CODES.DEADLINE_EXCEEDED},
          f"stop: failed writes meanwhile are UNAVAILABLE, UNKNOWN or DEADLINE_EXCEEDED ({codes})")

    # A new standby from the new primary, synchronous.
    log("   a new standby A' from B")
    shutil.rmtree(a.dir)
    a.base_backup(b)
    a.set("synchronous_standby_names = ''")
    a.start()
    b.set("synchronous_standby_names = '*'")
    b.reload()
    check(wait_until(lambda: b.sql("SELECT sync_state FROM pg_stat_replication") == "sync", 30),
          "A' streams from B as its synchronous standby")
    time.sleep(2)

    # ---- 3. the primary hangs; the standby is promoted ----
    log("3. the primary hangs (SIGSTOP)")
    t3 = time.time()
    b.signal_all(signal.SIGSTOP)
    time.sleep(1)
    # A replica told to stop while its database hangs stops within its grace.
    r2.proc.send_signal(signal.SIGTERM)
    try:
        r2.proc.wait(timeout=GRACE + 8)
        stopped = time.time() - t3 - 1
    except subprocess.TimeoutExpired:
        stopped = None
        r2.proc.kill()
        r2.proc.wait()
    check(stopped is not None, f"SIGTERM with the database hung: cofferd stopped ({stopped} s; grace {GRACE} s)")
    time.sleep(1)
    a.promote()
    t3p = time.time()
    with load.lock:
        off = any(t3 <= t <= t3p + 5 and k == 0 and c == 0 for t, k, c in load.cache)
    check(off, "hang: the cache was off while the listener was in doubt")
    got = wait_until(lambda: load.first_ok_write_after(t3p, 0) is not None, 20)
    took = (load.first_ok_write_after(t3p, 0) or time.time()) - t3p
    check(got and took <= 10, f"hang: writes through replica 1 again {took:.2f} s after the promotion, without a restart")
    t_restart = time.time()
    r2.start()
    got = wait_until(lambda: load.first_ok_write_after(t_restart, 1) is not None, 20)
    check(got, "hang: the stopped replica starts again (its first host hung) and serves writes")
    check(wait_until(lambda: any(t > t3p and resync for t, _, resync, _ in load.watch), 15),
          "hang: the watch is told to resync (the database is on a new timeline)")
    with open(r1.logfile) as f:
        check("on another history" in f.read(), "hang: the replica says the database is on another history")
    codes = load.write_codes_between(t3, t3p + 10) - {CODES.OK}
    check(codes <= {CODES.UNKNOWN, CODES.UNAVAILABLE, CODES.DEADLINE_EXCEEDED},
          f"hang: failed writes meanwhile are UNAVAILABLE, UNKNOWN or DEADLINE_EXCEEDED ({codes})")
    time.sleep(2)
    load.finish()
    b.signal_all(signal.SIGKILL)

    # ---- 4. nothing acknowledged is lost ----
    log("4. every acknowledged write is there")
    with load.lock:
        writes = list(load.writes)
        resolves = list(load.resolves)
    current = int(a.sql("SELECT revision FROM projects WHERE name = 'fleet'"))
    acked = [w for w in writes if w[5] == CODES.OK]
    check(all(w[6] <= current for w in acked),
          f"no acknowledged revision is beyond the project's ({current})")
    lost = []
    for i in range(4):
        mine = [w for w in writes if w[3] == f"W{i}"]
        last_ok = max((k for k, w in enumerate(mine) if w[5] == CODES.OK), default=-1)
        allowed = {w[4] for w in mine[last_ok:] if w[5] != CODES.OK or w is mine[last_ok]}
        with r1.channel(admin) as ch:
            v = secrets_grpc.SecretsStub(ch).RevealSecret(secrets.RevealSecretRequest(
                project="fleet", name=f"W{i}"), timeout=10).value
        if v not in allowed:
            lost.append((f"W{i}", v, mine[last_ok][4] if last_ok >= 0 else None))
    check(not lost, f"the value of each secret is its last acknowledged write, or a later one whose outcome was unknown ({lost})")
    internal = [w for w in writes if w[5] == CODES.INTERNAL] + [x for x in resolves if x[2] == CODES.INTERNAL]
    check(not internal, f"no call answered INTERNAL ({len(internal)})")
    log(f"   {len(writes)} writes ({len(acked)} acknowledged), {len(resolves)} resolves "
        f"({sum(1 for x in resolves if x[2] == CODES.OK)} OK)")
    # A token revoked after the failover is refused on the other replica within a second.
    with r1.channel(admin) as ch:
        doomed = access_grpc.AccessStub(ch).CreateToken(access.CreateTokenRequest(
            name="doomed", role=access.ROLE_RUNTIME, project="fleet"), timeout=10)
    with r2.channel(doomed.secret) as ch:
        stub = secrets_grpc.SecretsStub(ch)
        req = secrets.ResolveSecretsRequest(project="fleet", environment="main", version=common.VERSION_LIVE)
        stub.ResolveSecrets(req, timeout=5)
        stub.ResolveSecrets(req, timeout=5)  # cached on r2 now
        with r1.channel(admin) as ach:
            access_grpc.AccessStub(ach).RevokeToken(access.RevokeTokenRequest(id=doomed.token.id), timeout=10)
        t = time.time()
        refused = None
        while time.time() - t < 3 and refused is None:
            try:
                stub.ResolveSecrets(req, timeout=2)
            except grpc.RpcError as e:
                if e.code() == CODES.UNAUTHENTICATED:
                    refused = time.time() - t
            time.sleep(0.01)
    check(refused is not None and refused <= 1.0,
          f"a token revoked after the failover is refused on the other replica within 1 s ({refused})")

    # ---- 5. asynchronous replication loses a write: Coffer does not serve it from memory ----
    log("5. an asynchronous standby that lags is promoted")
    c = Cluster("c", pb)  # B's port: the URL lists it
    shutil.rmtree(b.dir, ignore_errors=True)
    c.dir = b.dir
    c.base_backup(a)
    c.start()
    check(wait_until(lambda: a.sql("SELECT state FROM pg_stat_replication") == "streaming", 30),
          "C streams from A' (asynchronously)")
    with r1.channel(admin) as ch:
        before_loss = secrets_grpc.SecretsStub(ch).RevealSecret(secrets.RevealSecretRequest(
            project="fleet", name="A"), timeout=10).value
    # The standby lags: it is down while the primary acknowledges a write.
    c.stop("fast")
    with r1.channel(admin) as ch:
        lost_rev = secrets_grpc.SecretsStub(ch).UpdateSecret(secrets.UpdateSecretRequest(
            project="fleet", name="A", value="lost-canary"), timeout=10).revision
    with r2.channel(runtime.secret) as ch:  # r2 caches what A' acknowledged
        stub = secrets_grpc.SecretsStub(ch)
        req = secrets.ResolveSecretsRequest(project="fleet", environment="main",
                                            version=common.VERSION_LIVE, min_revision=lost_rev)
        seen = {x.name: x.value for x in stub.ResolveSecrets(req, timeout=5).secrets}
        stub.ResolveSecrets(req, timeout=5)
    check(seen.get("A") == "lost-canary", "the write is acknowledged and served before the failover")
    watch_seen = []

    def watch_across():
        with r2.channel(runtime.secret) as ch:
            try:
                for m in secrets_grpc.SecretsStub(ch).WatchSecrets(secrets.WatchSecretsRequest(
                        project="fleet", environment="main", version=common.VERSION_LIVE,
                        from_revision=lost_rev), timeout=20):
                    watch_seen.append(m)
                    if m.resync:
                        return
            except grpc.RpcError:
                pass

    watcher = threading.Thread(target=watch_across, daemon=True)
    watcher.start()
    time.sleep(1)
    a.stop("immediate")
    c.start()
    c.promote()
    t5 = time.time()
    values = {}
    for k, r in enumerate((r1, r2)):
        def served():
            try:
                with r.channel(runtime.secret) as ch:
                    got = secrets_grpc.SecretsStub(ch).ResolveSecrets(secrets.ResolveSecretsRequest(
                        project="fleet", environment="main", version=common.VERSION_LIVE), timeout=2)
                values[k] = {x.name: x.value for x in got.secrets}
                return True
            except grpc.RpcError:
                return False
        check(wait_until(served, 20), f"async: replica {k + 1} resolves again after the promotion")
        check(values.get(k, {}).get("A") == before_loss,
              f"async: replica {k + 1} serves what the new primary holds, not the lost write from "
              f"memory ({values.get(k, {}).get('A')}; {before_loss} before it)")
    watcher.join(timeout=20)
    check(any(m.resync for m in watch_seen), "async: a watch that knew the lost revision is told to resync")
    log(f"   resynced {time.time() - t5:.2f} s after the promotion")
    a = c  # the primary now

    # ---- 6. backup and restore ----
    log("5. backup and restore")
    before = {}
    time.sleep(1)
    with r1.channel(runtime.secret) as ch:
        for s in secrets_grpc.SecretsStub(ch).ResolveSecrets(secrets.ResolveSecretsRequest(
                project="fleet", environment="main", version=common.VERSION_LIVE), timeout=10).secrets:
            before[s.name] = s.value
    for r in (r1, r2):
        r.proc.send_signal(signal.SIGTERM)
        r.proc.wait(timeout=GRACE + 10)
    dump = os.path.join(STATE, "coffer.dump")
    subprocess.run([os.path.join(PG_BIN, "pg_dump"), "-h", "127.0.0.1", "-p", str(a.port), "-U", "coffer",
                    "-Fc", "-f", dump, "coffer"], check=True)
    audit_sum = "SELECT count(*) || ' ' || md5(string_agg(a::text, ',' ORDER BY id)) FROM audit_events a"
    original = a.sql(audit_sum)
    a.sql("CREATE DATABASE coffer_restored", db="postgres")
    subprocess.run([os.path.join(PG_BIN, "pg_restore"), "-h", "127.0.0.1", "-p", str(a.port), "-U",
                    "coffer", "-d", "coffer_restored", dump], check=True)
    check(a.sql(audit_sum, db="coffer_restored") == original, "restore: the audit rows are identical")
    restored = Replica("restored", f"host=127.0.0.1 port={a.port} dbname=coffer_restored user=coffer",
                       free_port(25690), free_port(25700))
    restored.start()
    after = {}
    with restored.channel(runtime.secret) as ch:
        for s in secrets_grpc.SecretsStub(ch).ResolveSecrets(secrets.ResolveSecretsRequest(
                project="fleet", environment="main", version=common.VERSION_LIVE), timeout=10).secrets:
            after[s.name] = s.value
    check(after == before and len(after) == 6, "restore: every secret resolves to the value it had")
    restored.proc.send_signal(signal.SIGTERM)
    restored.proc.wait(timeout=GRACE + 10)
    wrong = os.path.join(STATE, "wrong.key")
    with open(wrong, "w") as f:
        f.write(os.urandom(32).hex())
    os.chmod(wrong, 0o600)
    bad = Replica("wrong-key", restored.url, free_port(25710), free_port(25720))
    bad.start(root_key=wrong, wait=False)
    try:
        rc = bad.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        bad.proc.kill()
        rc = None
    with open(bad.logfile) as f:
        text = f.read()
    check(rc not in (0, None) and "wrong root key" in text,
          f"restore with a wrong root key: refused by name before serving (exit {rc})")
    a.stop("fast")
    print(f"failover: {len(failures)} failed", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        for p in started:
            if p.poll() is None:
                p.kill()
        for name in ("a", "b"):
            d = os.path.join(STATE, name)
            if os.path.exists(os.path.join(d, "postmaster.pid")):
                try:
                    Cluster(name, 0).signal_all(signal.SIGKILL)
                except (OSError, ValueError):
                    pass
