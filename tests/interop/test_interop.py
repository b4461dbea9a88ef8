"""Interop: the Python grpcio client, with stubs generated from our proto files by
grpc_python_plugin, against the real cofferd started by run.sh (COFFER_ADDR)."""
import json
import os
import subprocess
import threading
import time
import unittest
import uuid

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from coffer.v1 import access_pb2 as access, access_pb2_grpc as access_grpc
from coffer.v1 import common_pb2 as common
from coffer.v1 import environments_pb2 as envs, environments_pb2_grpc as envs_grpc
from coffer.v1 import projects_pb2 as projects, projects_pb2_grpc as projects_grpc
from coffer.v1 import secrets_pb2 as secrets, secrets_pb2_grpc as secrets_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

ADDR = os.environ["COFFER_ADDR"]
ADMIN_TOKEN = os.environ["COFFER_ADMIN_TOKEN"]
CANARY = os.environ["COFFER_CANARY"]
SC = grpc.StatusCode


class Bearer(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
             grpc.StreamStreamClientInterceptor):
    """Adds `authorization: Bearer <token>` to every call of a channel."""

    def __init__(self, token):
        self.token = token

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(_Details(details, self._md(details)), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(_Details(details, self._md(details)), request)

    def intercept_stream_stream(self, continuation, details, requests):
        return continuation(_Details(details, self._md(details)), requests)

    def _md(self, details):
        return list(details.metadata or []) + [("authorization", f"Bearer {self.token}")]


class _Details(grpc.ClientCallDetails):
    def __init__(self, d, metadata):
        self.method, self.timeout, self.metadata = d.method, d.timeout, metadata
        self.credentials, self.wait_for_ready = d.credentials, getattr(d, "wait_for_ready", None)
        self.compression = getattr(d, "compression", None)


def authed_channel(token=None, addr=None):
    return grpc.intercept_channel(grpc.insecure_channel(addr or ADDR), Bearer(token or ADMIN_TOKEN))


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class Base(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.channel = authed_channel()
        cls.projects = projects_grpc.ProjectsStub(cls.channel)
        cls.secrets = secrets_grpc.SecretsStub(cls.channel)
        cls.envs = envs_grpc.EnvironmentsStub(cls.channel)
        cls.health = health_pb2_grpc.HealthStub(cls.channel)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()

    def assertCode(self, code, fn, *args, **kwargs):
        with self.assertRaises(grpc.RpcError) as cm:
            fn(*args, **kwargs)
        self.assertEqual(cm.exception.code(), code, cm.exception.details())
        return cm.exception.details()

    def raw(self, method, payload):
        """Sends raw bytes to a method and returns the RpcError."""
        call = self.channel.unary_unary(method)
        with self.assertRaises(grpc.RpcError) as cm:
            call(payload, timeout=10)
        return cm.exception

    def new_project(self):
        name = unique("it")
        self.projects.CreateProject(projects.CreateProjectRequest(name=name))
        return name


class ProjectsAndSecrets(Base):
    def test_round_trip_and_codes(self):
        p = unique("interop")
        proj = self.projects.CreateProject(projects.CreateProjectRequest(name=p, description="d"))
        self.assertEqual((proj.name, proj.revision), (p, 1))
        self.assertGreater(proj.create_time.seconds, 0)
        self.assertCode(SC.ALREADY_EXISTS, self.projects.CreateProject, projects.CreateProjectRequest(name=p))
        self.assertCode(SC.INVALID_ARGUMENT, self.projects.CreateProject, projects.CreateProjectRequest(name="No"))
        s = self.secrets.CreateSecret(secrets.CreateSecretRequest(project=p, name="DB_PASSWORD", value="pw-1"))
        self.assertEqual((s.name, s.visibility, s.revision), ("DB_PASSWORD", common.VISIBILITY_MASKED, 2))
        self.assertFalse(hasattr(s, "value"))
        r = self.secrets.RevealSecret(secrets.RevealSecretRequest(project=p, name="DB_PASSWORD"))
        self.assertEqual((r.value, r.source, r.revision), ("pw-1", common.VALUE_SOURCE_DEFAULT, 2))
        u = self.secrets.UpdateSecret(secrets.UpdateSecretRequest(project=p, name="DB_PASSWORD", value="pw-2", expected_revision=2))
        self.assertEqual(u.revision, 3)
        self.assertCode(SC.ABORTED, self.secrets.UpdateSecret,
                        secrets.UpdateSecretRequest(project=p, name="DB_PASSWORD", value="pw-3", expected_revision=2))
        self.assertEqual(self.secrets.RevealSecret(secrets.RevealSecretRequest(project=p, name="DB_PASSWORD")).value, "pw-2")
        self.assertCode(SC.NOT_FOUND, self.secrets.GetSecret, secrets.GetSecretRequest(project=p, name="NOPE"))
        self.assertCode(SC.NOT_FOUND, self.secrets.GetSecret, secrets.GetSecretRequest(project=unique("gone"), name="X"))
        self.secrets.CreateSecret(secrets.CreateSecretRequest(project=p, name="R", value="r", visibility=common.VISIBILITY_RESTRICTED))
        self.assertCode(SC.FAILED_PRECONDITION, self.secrets.RevealSecret, secrets.RevealSecretRequest(project=p, name="R"))
        self.assertCode(SC.FAILED_PRECONDITION, self.secrets.UpdateSecret,
                        secrets.UpdateSecretRequest(project=p, name="R", visibility=common.VISIBILITY_MASKED))
        listed = self.secrets.ListSecrets(secrets.ListSecretsRequest(project=p))
        self.assertEqual([x.name for x in listed.secrets], ["DB_PASSWORD", "R"])
        self.secrets.DeleteSecret(secrets.DeleteSecretRequest(project=p, name="R"))
        self.assertCode(SC.NOT_FOUND, self.secrets.RevealSecret, secrets.RevealSecretRequest(project=p, name="R"))
        self.assertEqual(self.projects.GetProject(projects.GetProjectRequest(name=p)).revision, 5)
        self.projects.DeleteProject(projects.DeleteProjectRequest(name=p, expected_revision=5))
        self.assertCode(SC.NOT_FOUND, self.projects.GetProject, projects.GetProjectRequest(name=p))

    def test_pagination_over_the_wire(self):
        p = self.new_project()
        names = [f"K{i:03d}" for i in range(25)]
        for n in names:
            self.secrets.CreateSecret(secrets.CreateSecretRequest(project=p, name=n, value="v"))
        seen, token = [], ""
        while True:
            page = self.secrets.ListSecrets(secrets.ListSecretsRequest(project=p, page_size=6, page_token=token))
            self.assertLessEqual(len(page.secrets), 6)
            seen += [s.name for s in page.secrets]
            token = page.next_page_token
            if not token:
                break
        self.assertEqual(seen, names)
        self.assertCode(SC.INVALID_ARGUMENT, self.secrets.ListSecrets,
                        secrets.ListSecretsRequest(project=p, page_token="bogus"))


class WireLevel(Base):
    def test_invalid_utf8_is_invalid_argument_and_changes_nothing(self):
        p = self.new_project()
        # CreateSecretRequest{project=p, name="BAD", value=<invalid UTF-8>} encoded by hand.
        pb = p.encode()
        payload = b"\x0a" + bytes([len(pb)]) + pb + b"\x12\x03BAD" + b"\x1a\x02\xc3\x28"
        err = self.raw("/coffer.v1.Secrets/CreateSecret", payload)
        self.assertEqual(err.code(), SC.INVALID_ARGUMENT, err.details())
        self.assertIn("UTF-8", err.details())
        self.assertCode(SC.NOT_FOUND, self.secrets.GetSecret, secrets.GetSecretRequest(project=p, name="BAD"))
        err = self.raw("/coffer.v1.Projects/CreateProject", b"\x0a\x04ab\xff\xfe")
        self.assertEqual(err.code(), SC.INVALID_ARGUMENT)
        self.assertEqual(self.projects.GetProject(projects.GetProjectRequest(name=p)).revision, 1)

    def test_embedded_nul_is_invalid_argument_and_changes_nothing(self):
        # protobuf-c would hand the server a C string cut at the NUL: refused on the wire instead.
        p = self.new_project()
        pb = p.encode()
        payload = b"\x0a" + bytes([len(pb)]) + pb + b"\x12\x03NUL" + b"\x1a\x05ab\x00cd"
        err = self.raw("/coffer.v1.Secrets/CreateSecret", payload)
        self.assertEqual(err.code(), SC.INVALID_ARGUMENT, err.details())
        self.assertIn("NUL", err.details())
        self.assertCode(SC.NOT_FOUND, self.secrets.GetSecret, secrets.GetSecretRequest(project=p, name="NUL"))
        self.assertEqual(self.projects.GetProject(projects.GetProjectRequest(name=p)).revision, 1)

    def test_garbage_payloads(self):
        garbage = [b"\xff\xff\xff\xff\xff", b"\x0a\x10abc", b"\x0b", b"\x0a\xff\xff\xff\xff\x0f", os.urandom(0) + b"\x08"]
        for method in ["/coffer.v1.Projects/CreateProject", "/coffer.v1.Projects/GetProject",
                       "/coffer.v1.Secrets/CreateSecret", "/coffer.v1.Secrets/RevealSecret",
                       "/coffer.v1.Secrets/UpdateSecret", "/grpc.health.v1.Health/Check"]:
            for g in garbage:
                err = self.raw(method, g)
                self.assertEqual(err.code(), SC.INVALID_ARGUMENT, f"{method} {g!r}: {err.details()}")
        # still healthy afterwards
        self.assertEqual(self.health.Check(health_pb2.HealthCheckRequest()).status, health_pb2.HealthCheckResponse.SERVING)

    def test_unknown_method_and_service(self):
        for m in ["/coffer.v1.Projects/Nope", "/no.such.Service/Call", "/garbage"]:
            err = self.raw(m, b"")
            self.assertEqual(err.code(), SC.UNIMPLEMENTED, m)

    def test_five_mib_message_is_resource_exhausted(self):
        p = unique("big")
        self.assertCode(SC.RESOURCE_EXHAUSTED, self.projects.CreateProject,
                        projects.CreateProjectRequest(name=p, description="x" * (5 << 20)))
        self.assertCode(SC.NOT_FOUND, self.projects.GetProject, projects.GetProjectRequest(name=p))

    def test_health(self):
        for svc in ["", "coffer.v1.Projects", "coffer.v1.Secrets", "coffer.v1.Environments", "coffer.v1.Access"]:
            self.assertEqual(self.health.Check(health_pb2.HealthCheckRequest(service=svc)).status,
                             health_pb2.HealthCheckResponse.SERVING, svc)
        self.assertCode(SC.NOT_FOUND, self.health.Check, health_pb2.HealthCheckRequest(service="coffer.v1.Nope"))


class Reflection(Base):
    def ask(self, **kw):
        stub = reflection_pb2_grpc.ServerReflectionStub(self.channel)
        return list(stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(**kw)]), timeout=10))[0]

    def test_lists_services(self):
        names = {s.name for s in self.ask(list_services="").list_services_response.service}
        for want in ["coffer.v1.Projects", "coffer.v1.Secrets", "coffer.v1.Environments", "coffer.v1.Access",
                     "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"]:
            self.assertIn(want, names)

    def test_describes_and_calls_a_method_without_proto_files(self):
        resp = self.ask(file_containing_symbol="coffer.v1.Projects")
        files = [descriptor_pb2.FileDescriptorProto.FromString(b)
                 for b in resp.file_descriptor_response.file_descriptor_proto]
        self.assertIn("coffer/v1/projects.proto", [f.name for f in files])
        self.assertIn("google/protobuf/timestamp.proto", [f.name for f in files])
        pool = descriptor_pool.DescriptorPool()
        pending = list(files)
        while pending:  # add files once their imports are in the pool
            for f in list(pending):
                if all(any(d == g.name for g in files if g not in pending) for d in f.dependency):
                    pool.Add(f)
                    pending.remove(f)
        method = pool.FindServiceByName("coffer.v1.Projects").FindMethodByName("CreateProject")
        Req = message_factory.MessageFactory(pool).GetPrototype(method.input_type)
        Resp = message_factory.MessageFactory(pool).GetPrototype(method.output_type)
        name = unique("reflected")
        call = self.channel.unary_unary("/coffer.v1.Projects/CreateProject",
                                        request_serializer=lambda m: m.SerializeToString(),
                                        response_deserializer=Resp.FromString)
        out = call(Req(name=name, description="made through reflection"), timeout=10)
        self.assertEqual(out.name, name)
        self.assertEqual(out.revision, 1)
        self.assertEqual(self.ask(file_by_filename="coffer/v1/secrets.proto").file_descriptor_response
                         .file_descriptor_proto[0][:0], b"")
        self.assertTrue(self.ask(file_containing_symbol="coffer.v1.Secrets.RevealSecret").HasField("file_descriptor_response"))
        self.assertEqual(self.ask(file_containing_symbol="no.Such").error_response.error_code, SC.NOT_FOUND.value[0])


class Canaries(Base):
    def test_values_never_in_errors_and_round_trip(self):
        p = self.new_project()
        value = f"VAL-{CANARY}"
        for bad in [secrets.CreateSecretRequest(project=p, name="bad name", value=value),
                    secrets.CreateSecretRequest(project=p, name="OK", value=value, visibility=7),
                    secrets.CreateSecretRequest(project=unique("missing"), name="OK", value=value)]:
            details = self.assertCode(grpc.StatusCode.INVALID_ARGUMENT if bad.project == p else SC.NOT_FOUND,
                                      self.secrets.CreateSecret, bad)
            self.assertNotIn(CANARY, details)
        for i in range(5):
            self.secrets.CreateSecret(secrets.CreateSecretRequest(
                project=p, name=f"CANARY_{i}", value=f"{value}-{i}", description=f"DESC-{CANARY}",
                visibility=common.VISIBILITY_RESTRICTED if i % 2 else common.VISIBILITY_MASKED))
        self.secrets.UpdateSecret(secrets.UpdateSecretRequest(project=p, name="CANARY_0", value=f"{value}-updated"))
        self.assertEqual(self.secrets.RevealSecret(secrets.RevealSecretRequest(project=p, name="CANARY_0")).value,
                         f"{value}-updated")
        details = self.assertCode(SC.FAILED_PRECONDITION, self.secrets.RevealSecret,
                                  secrets.RevealSecretRequest(project=p, name="CANARY_1"))
        self.assertNotIn(CANARY, details)
        self.assertCode(SC.ALREADY_EXISTS, self.secrets.CreateSecret,
                        secrets.CreateSecretRequest(project=p, name="CANARY_2", value=value))


class Http(Base):
    """The read-only HTTP/JSON endpoint, called with curl as scripts and ESO do: the values gRPC's
    ResolveSecrets gives, and errors that never carry a value (the server's log, at debug level,
    is scanned for the canaries by run.sh)."""

    def curl(self, path, token=None):
        args = ["curl", "-s", "-w", "\n%{http_code}", f"http://{os.environ['COFFER_HTTP_ADDR']}{path}"]
        if token:
            args += ["-H", f"Authorization: Bearer {token}"]
        out = subprocess.run(args, capture_output=True, text=True, timeout=30).stdout
        body, _, status = out.rpartition("\n")
        return int(status), json.loads(body)

    def test_values_as_resolve_and_errors_without_them(self):
        p = self.new_project()
        for i in range(3):
            self.secrets.CreateSecret(secrets.CreateSecretRequest(
                project=p, name=f"H_{i}", value=f"VAL-{CANARY}-http-{i}",
                visibility=common.VISIBILITY_RESTRICTED if i == 2 else common.VISIBILITY_MASKED))
        tokens = access_grpc.AccessStub(self.channel)
        rt = tokens.CreateToken(access.CreateTokenRequest(name="http", role=access.ROLE_RUNTIME, project=p)).secret
        with authed_channel(rt) as ch:
            want = secrets_grpc.SecretsStub(ch).ResolveSecrets(secrets.ResolveSecretsRequest(
                project=p, environment="main", version=common.VERSION_LIVE))
        base = f"/v1/projects/{p}/environments/main/versions/live/secrets"
        status, body = self.curl(base, rt)
        self.assertEqual(status, 200)
        self.assertEqual(body, {"revision": want.revision, "secrets": {s.name: s.value for s in want.secrets}})
        status, body = self.curl(f"{base}/H_2", rt)
        self.assertEqual((status, body["value"], body["source"]), (200, f"VAL-{CANARY}-http-2", "default"))
        for path, token, code, http in [(base, None, "UNAUTHENTICATED", 401),
                                        (base, ADMIN_TOKEN, "PERMISSION_DENIED", 403),
                                        (f"{base}/NOPE", rt, "NOT_FOUND", 404),
                                        (base.replace("/live/", "/prod/"), rt, "INVALID_ARGUMENT", 400)]:
            status, body = self.curl(path, token)
            self.assertEqual((status, body["code"]), (http, code), body)
            self.assertNotIn(CANARY, body["message"])


class Watch(Base):
    """Secrets/WatchSecrets as a grpcio client sees it: events with names and never values, one
    for each kind of change, none for other environments or versions, exact resume, and the
    refusals; Access/WhoAmI."""

    def setUp(self):
        self.p = self.new_project()
        for name in ("A", "B"):
            self.secrets.CreateSecret(secrets.CreateSecretRequest(project=self.p, name=name, value=f"VAL-{CANARY}-w-{name}"))
        self.envs.CreateEnvironment(envs.CreateEnvironmentRequest(project=self.p, name="staging"))
        self.access = access_grpc.AccessStub(self.channel)
        self.rt = self.access.CreateToken(access.CreateTokenRequest(
            name="watch", role=access.ROLE_RUNTIME, project=self.p, environments=["main"],
            versions=[common.VERSION_LIVE])).secret

    def revision(self):
        return self.projects.GetProject(projects.GetProjectRequest(name=self.p)).revision

    def open(self, token=None, **kw):
        """A watch on main/live read by a thread; its events arrive on a list. Returns once the
        stream's first message is in (a heartbeat saying where it starts, or what changed since
        from_revision): the watch is open, so a write made after it is seen."""
        ch = authed_channel(token or self.rt)
        self.addCleanup(ch.close)
        req = secrets.WatchSecretsRequest(project=self.p, environment="main", version=common.VERSION_LIVE, **kw)
        stream = secrets_grpc.SecretsStub(ch).WatchSecrets(req)
        events, cv = [], threading.Condition()

        def read():
            try:
                for ev in stream:
                    with cv:
                        events.append(ev)
                        cv.notify_all()
            except grpc.RpcError:
                pass

        t = threading.Thread(target=read, daemon=True)
        t.start()
        self.addCleanup(t.join, 10)
        self.addCleanup(stream.cancel)
        with cv:
            self.assertTrue(cv.wait_for(lambda: events, timeout=10), "the stream did not start")
            self.assertGreater(events[0].revision, 0, events[0])
        return stream, events, cv

    def next_change(self, events, cv, seen):
        """The first event after the first `seen` that is not a heartbeat."""
        with cv:
            self.assertTrue(cv.wait_for(lambda: any(not e.heartbeat for e in events[seen:]), timeout=10),
                            "no event within 10 s")
            return next(e for e in events[seen:] if not e.heartbeat), len(events)

    def test_events_for_each_kind_of_change_and_resume(self):
        stream, events, cv = self.open()
        r0 = self.revision()
        seen = 0
        steps = [
            ("a default", lambda: self.secrets.UpdateSecret(secrets.UpdateSecretRequest(project=self.p, name="A", value="v2")), ["A"]),
            ("an override", lambda: self.envs.SetOverride(envs.SetOverrideRequest(
                project=self.p, environment="main", version=common.VERSION_LIVE, secret="B", value="o")), ["B"]),
            ("a default under an override, then another name", lambda: (
                self.secrets.UpdateSecret(secrets.UpdateSecretRequest(project=self.p, name="B", value="hidden")),
                self.secrets.CreateSecret(secrets.CreateSecretRequest(project=self.p, name="C", value="c"))), ["C"]),
            ("visibility", lambda: self.secrets.UpdateSecret(secrets.UpdateSecretRequest(
                project=self.p, name="A", visibility=common.VISIBILITY_RESTRICTED)), ["A"]),
            ("another environment, then a delete", lambda: (
                self.envs.SetOverride(envs.SetOverrideRequest(project=self.p, environment="staging",
                                                             version=common.VERSION_LIVE, secret="A", value="s")),
                self.envs.SetOverride(envs.SetOverrideRequest(project=self.p, environment="main",
                                                             version=common.VERSION_DRAFT, secret="A", value="d")),
                self.secrets.DeleteSecret(secrets.DeleteSecretRequest(project=self.p, name="C"))), ["C"]),
            ("a merge", lambda: self.envs.MergeEnvironment(envs.MergeEnvironmentRequest(
                project=self.p, source="staging")), ["A", "B"]),
        ]
        for what, write, names in steps:
            write()
            ev, seen = self.next_change(events, cv, seen)
            self.assertEqual(sorted(ev.changed), names, what)
            self.assertEqual((ev.revision, ev.resync), (self.revision(), False), what)
            for e in events:
                self.assertNotIn(CANARY, str(e))
        stream.cancel()
        # Resuming from the first revision gets everything since, folded (several events at most):
        # C came and went, so it is no change from there.
        resumed, ev2, cv2 = self.open(from_revision=r0)
        with cv2:
            self.assertTrue(cv2.wait_for(lambda: any(e.revision == self.revision() for e in ev2), timeout=10))
            names = sorted({n for e in ev2 for n in e.changed})
        self.assertEqual(names, ["A", "B"])
        self.assertFalse(any(e.resync for e in ev2))

    def test_names_filter_and_refusals(self):
        stream, events, cv = self.open(names=["B"])
        self.secrets.UpdateSecret(secrets.UpdateSecretRequest(project=self.p, name="A", value="unwatched"))
        self.secrets.UpdateSecret(secrets.UpdateSecretRequest(project=self.p, name="B", value="watched"))
        ev, _ = self.next_change(events, cv, 0)
        self.assertEqual((list(ev.changed), ev.revision), (["B"], self.revision()))
        stream.cancel()
        with authed_channel(self.rt) as ch:
            watch = secrets_grpc.SecretsStub(ch).WatchSecrets
            for env, version in [("staging", common.VERSION_LIVE), ("main", common.VERSION_DRAFT)]:
                with self.assertRaises(grpc.RpcError) as cm:
                    next(iter(watch(secrets.WatchSecretsRequest(project=self.p, environment=env, version=version), timeout=10)))
                self.assertEqual(cm.exception.code(), SC.PERMISSION_DENIED, (env, version))
        for req in [secrets.WatchSecretsRequest(project=self.p, environment="main"),
                    secrets.WatchSecretsRequest(project=self.p, environment="main", version=common.VERSION_LIVE,
                                                from_revision=-1)]:
            with self.assertRaises(grpc.RpcError) as cm:
                next(iter(self.secrets.WatchSecrets(req, timeout=10)))
            self.assertEqual(cm.exception.code(), SC.INVALID_ARGUMENT, req)
        with grpc.insecure_channel(ADDR) as ch:
            with self.assertRaises(grpc.RpcError) as cm:
                next(iter(secrets_grpc.SecretsStub(ch).WatchSecrets(secrets.WatchSecretsRequest(
                    project=self.p, environment="main", version=common.VERSION_LIVE), timeout=10)))
            self.assertEqual(cm.exception.code(), SC.UNAUTHENTICATED)

    def test_heartbeats_keep_an_idle_stream_alive(self):
        """run.sh starts this cofferd with --watch-heartbeat-seconds 1."""
        stream, events, cv = self.open()
        with cv:
            self.assertTrue(cv.wait_for(lambda: len(events) >= 2, timeout=10), events)
            self.assertTrue(all(e.heartbeat and not e.changed and not e.resync for e in events), events)
            self.assertTrue(all(e.revision == self.revision() for e in events), events)
        self.secrets.UpdateSecret(secrets.UpdateSecretRequest(project=self.p, name="A", value="after-heartbeats"))
        ev, _ = self.next_change(events, cv, 0)
        self.assertEqual(list(ev.changed), ["A"])

    def test_whoami(self):
        with authed_channel(self.rt) as ch:
            t = access_grpc.AccessStub(ch).WhoAmI(access.WhoAmIRequest())
        self.assertEqual((t.role, t.project, list(t.environments), list(t.versions)),
                         (access.ROLE_RUNTIME, self.p, ["main"], [common.VERSION_LIVE]))
        with grpc.insecure_channel(ADDR) as ch:
            with self.assertRaises(grpc.RpcError) as cm:
                access_grpc.AccessStub(ch).WhoAmI(access.WhoAmIRequest(), timeout=10)
            self.assertEqual(cm.exception.code(), SC.UNAUTHENTICATED)


class Changes(Base):
    """Secrets/ApplyChanges from grpcio: one revision for the set, dry run, compare-and-set, and a
    bad change that leaves nothing behind and names itself without its value."""

    def resolve(self, p, env="main", version=common.VERSION_LIVE):
        """The effective set as a runtime token of the project sees it (only runtimes resolve)."""
        rt = access_grpc.AccessStub(self.channel).CreateToken(access.CreateTokenRequest(
            name="changes", role=access.ROLE_RUNTIME, project=p)).secret
        with authed_channel(rt) as ch:
            r = secrets_grpc.SecretsStub(ch).ResolveSecrets(secrets.ResolveSecretsRequest(
                project=p, environment=env, version=version))
        return {s.name: s.value for s in r.secrets}, r.revision

    def test_all_or_nothing_in_one_revision(self):
        p = self.new_project()
        self.secrets.CreateSecret(secrets.CreateSecretRequest(project=p, name="DB_USER", value="u1"))
        self.secrets.CreateSecret(secrets.CreateSecretRequest(project=p, name="DB_PASSWORD", value="p1"))
        self.envs.CreateEnvironment(envs.CreateEnvironmentRequest(project=p, name="staging"))
        before = self.projects.GetProject(projects.GetProjectRequest(name=p)).revision
        C = secrets.Change
        changes = [
            C(update_secret=secrets.UpdateSecretChange(name="DB_USER", value="u2")),
            C(update_secret=secrets.UpdateSecretChange(name="DB_PASSWORD", value=f"VAL-{CANARY}-p2")),
            C(create_secret=secrets.CreateSecretChange(name="NEW", value="n", visibility=common.VISIBILITY_RESTRICTED)),
            C(set_override=secrets.SetOverrideChange(environment="staging", version=common.VERSION_DRAFT, secret="NEW", value="sn")),
        ]
        dry = self.secrets.ApplyChanges(secrets.ApplyChangesRequest(project=p, changes=changes, dry_run=True))
        self.assertEqual((dry.applied, dry.revision, len(dry.results)), (False, before + 1, 4))
        self.assertEqual(self.resolve(p)[0], {"DB_USER": "u1", "DB_PASSWORD": "p1"})
        self.assertCode(SC.ABORTED, self.secrets.ApplyChanges,
                        secrets.ApplyChangesRequest(project=p, changes=changes, expected_revision=before - 1))
        bad = changes[:2] + [C(set_override=secrets.SetOverrideChange(
            environment="nowhere", version=common.VERSION_LIVE, secret="DB_USER", value=f"VAL-{CANARY}-bad"))] + changes[2:]
        msg = self.assertCode(SC.NOT_FOUND, self.secrets.ApplyChanges, secrets.ApplyChangesRequest(project=p, changes=bad))
        self.assertIn("change 2 (secret DB_USER)", msg)
        self.assertNotIn(CANARY, msg)
        self.assertEqual(self.projects.GetProject(projects.GetProjectRequest(name=p)).revision, before)
        done = self.secrets.ApplyChanges(secrets.ApplyChangesRequest(project=p, changes=changes, expected_revision=before))
        self.assertEqual((done.applied, done.revision), (True, before + 1))
        self.assertEqual([(r.index, r.kind, r.secret) for r in done.results],
                         [(0, common.CHANGE_KIND_CHANGED, "DB_USER"), (1, common.CHANGE_KIND_CHANGED, "DB_PASSWORD"),
                          (2, common.CHANGE_KIND_ADDED, "NEW"), (3, common.CHANGE_KIND_ADDED, "NEW")])
        self.assertEqual(self.resolve(p), ({"DB_USER": "u2", "DB_PASSWORD": f"VAL-{CANARY}-p2", "NEW": "n"}, before + 1))
        self.assertEqual(self.resolve(p, "staging", common.VERSION_DRAFT)[0]["NEW"], "sn")
        self.assertEqual(self.secrets.GetSecret(secrets.GetSecretRequest(project=p, name="NEW")).visibility,
                         common.VISIBILITY_RESTRICTED)
        self.assertCode(SC.INVALID_ARGUMENT, self.secrets.ApplyChanges, secrets.ApplyChangesRequest(project=p, changes=[C()]))


class Cli(Base):
    """The coffer CLI (build/bin/coffer) against the same server."""

    def coffer(self, *args, stdin=None):
        exe = os.path.join(os.environ["COFFER_TEST_BUILD"], "bin", "coffer")
        env = dict(os.environ, COFFER_TOKEN=ADMIN_TOKEN)
        return subprocess.run([exe, "--addr", ADDR, *args], input=stdin, capture_output=True, text=True,
                              timeout=30, env=env)

    def test_first_session(self):
        p = unique("cli")
        r = self.coffer("projects", "create", p, "--description", "from the CLI")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(f"name:        {p}", r.stdout)
        r = self.coffer("secrets", "create", p, "API_KEY", "--value-stdin", stdin=f"VAL-{CANARY}-cli\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn(CANARY, r.stdout)
        r = self.coffer("secrets", "reveal", p, "API_KEY")
        self.assertEqual((r.returncode, r.stdout), (0, f"VAL-{CANARY}-cli\n"))
        r = self.coffer("--json", "secrets", "list", p)
        listed = json.loads(r.stdout)
        self.assertEqual([(x["name"], x["visibility"], x["revision"]) for x in listed], [("API_KEY", "masked", 2)])
        with open(os.path.join(os.environ["COFFER_TEST_STATE"], "cli-value"), "w") as f:
            f.write("from-a-file\n")
        r = self.coffer("secrets", "update", p, "API_KEY", "--value-file", f.name, "--expected-revision", "2")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.coffer("--json", "secrets", "reveal", p, "API_KEY")
        self.assertEqual(json.loads(r.stdout), {"value": "from-a-file", "source": "default", "revision": 3})
        r = self.coffer("secrets", "create", p, "R", "--value-stdin", "--restricted", stdin="r")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.coffer("secrets", "reveal", p, "R")
        self.assertEqual(r.returncode, 1)
        self.assertTrue(r.stderr.startswith("coffer: FAILED_PRECONDITION: "), r.stderr)
        r = self.coffer("projects", "get", unique("missing"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("NOT_FOUND", r.stderr)
        r = self.coffer("secrets", "create", p, "NOVALUE")
        self.assertEqual(r.returncode, 2)
        r = self.coffer("--json", "projects", "list")
        self.assertIn(p, [x["name"] for x in json.loads(r.stdout)])
        r = self.coffer("projects", "delete", p, "--expected-revision", "1")
        self.assertEqual(r.returncode, 1)
        self.assertIn("ABORTED", r.stderr)


class Tls(unittest.TestCase):
    """TLS and mTLS servers started by run.sh on the same database."""

    @staticmethod
    def read(name):
        with open(os.path.join(os.environ["COFFER_CERTS"], name), "rb") as f:
            return f.read()

    def health(self, channel):
        return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5).status

    def wait_up(self, addr, creds):
        deadline = time.time() + 20
        while True:
            try:
                with grpc.secure_channel(addr, creds) as ch:
                    return self.health(ch)
            except grpc.RpcError:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)

    def test_tls(self):
        creds = grpc.ssl_channel_credentials(root_certificates=self.read("ca.crt"))
        self.assertEqual(self.wait_up(os.environ["COFFER_TLS_ADDR"], creds), health_pb2.HealthCheckResponse.SERVING)
        call = grpc.composite_channel_credentials(creds, grpc.access_token_call_credentials(ADMIN_TOKEN))
        with grpc.secure_channel(os.environ["COFFER_TLS_ADDR"], call) as ch:
            name = unique("tls")
            p = projects_grpc.ProjectsStub(ch).CreateProject(projects.CreateProjectRequest(name=name), timeout=10)
            self.assertEqual(p.name, name)
        with grpc.insecure_channel(os.environ["COFFER_TLS_ADDR"]) as ch:  # plaintext against TLS
            with self.assertRaises(grpc.RpcError) as cm:
                self.health(ch)
            self.assertEqual(cm.exception.code(), SC.UNAVAILABLE)
        wrong = grpc.ssl_channel_credentials(root_certificates=self.read("other-ca.crt"))
        with grpc.secure_channel(os.environ["COFFER_TLS_ADDR"], wrong) as ch:  # untrusted server
            with self.assertRaises(grpc.RpcError):
                self.health(ch)

    def test_mtls(self):
        addr = os.environ["COFFER_MTLS_ADDR"]
        good = grpc.ssl_channel_credentials(self.read("ca.crt"), self.read("client.key"), self.read("client.crt"))
        self.assertEqual(self.wait_up(addr, good), health_pb2.HealthCheckResponse.SERVING)
        for creds in [grpc.ssl_channel_credentials(self.read("ca.crt")),  # no client certificate
                      grpc.ssl_channel_credentials(self.read("ca.crt"), self.read("stranger.key"),
                                                   self.read("stranger.crt"))]:  # signed by another CA
            with grpc.secure_channel(addr, creds) as ch:
                with self.assertRaises(grpc.RpcError) as cm:
                    self.health(ch)
                self.assertEqual(cm.exception.code(), SC.UNAVAILABLE)
        with grpc.insecure_channel(addr) as ch:
            with self.assertRaises(grpc.RpcError):
                self.health(ch)


class Metrics(Base):
    """Prometheus text at /metrics on the metrics listener, after traffic."""

    def scrape(self):
        import urllib.request
        with urllib.request.urlopen(f"http://{os.environ['COFFER_METRICS_ADDR']}/metrics", timeout=5) as r:
            self.assertEqual(r.status, 200)
            self.assertTrue(r.headers["Content-Type"].startswith("text/plain; version=0.0.4"))
            return r.read().decode()

    def value(self, text, prefix):
        for line in text.splitlines():
            if line.startswith(prefix):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def test_counters_move_with_traffic(self):
        key = 'coffer_calls_total{method="/coffer.v1.Projects/GetProject",code="NOT_FOUND"}'
        before = self.value(self.scrape(), key)
        for _ in range(3):
            self.assertCode(SC.NOT_FOUND, self.projects.GetProject, projects.GetProjectRequest(name=unique("gone")))
        # A call is counted just after its answer is sent: allow the last one a moment.
        for _ in range(50):
            text = self.scrape()
            if self.value(text, key) >= before + 3:
                break
            time.sleep(0.05)
        self.assertEqual(self.value(text, key), before + 3)
        self.assertGreaterEqual(self.value(text, 'coffer_call_duration_seconds_count{method="/coffer.v1.Projects/GetProject"}'), 3)
        self.assertGreaterEqual(self.value(text, "coffer_workers "), 1)  # 0 in the settings: one per CPU
        for name in ["coffer_db_connections{state=\"up\"}", "coffer_http_connections ", "coffer_audit_backlog", "coffer_keyring_active_term",
                     "coffer_build_info{version=", "coffer_errors_total{code=\"NOT_FOUND\"}", "coffer_workers"]:
            self.assertIn(name, text)
        self.assertNotIn(CANARY, text)


class CoreDumps(unittest.TestCase):
    def test_cofferd_cannot_dump_core(self):
        """Plaintext passes through cofferd's memory: it runs with a core size limit of 0.
        (That it is not dumpable is shown by the image test, where it runs unprivileged.)"""
        pid = os.environ["COFFERD_PID"]
        with open(f"/proc/{pid}/limits") as f:
            line = next(l for l in f if l.startswith("Max core file size"))
        self.assertEqual(line.split()[4:6], ["0", "0"], line)


class ZzDatabaseOutage(Base):
    """Runs last (unittest orders classes by name): stops and restarts PostgreSQL."""

    def test_not_serving_while_the_database_is_down(self):
        p = self.new_project()
        subprocess.run(os.environ["COFFER_TEST_PG_STOP"], shell=True, check=True, stdout=subprocess.DEVNULL)
        try:
            self.assertEqual(self.health.Check(health_pb2.HealthCheckRequest(), timeout=10).status,
                             health_pb2.HealthCheckResponse.NOT_SERVING)
            self.assertCode(SC.UNAVAILABLE, self.projects.GetProject, projects.GetProjectRequest(name=p), timeout=10)
        finally:
            subprocess.run(os.environ["COFFER_TEST_PG_START"], shell=True, check=True, stdout=subprocess.DEVNULL)
        deadline = time.time() + 20
        while self.health.Check(health_pb2.HealthCheckRequest(), timeout=10).status != health_pb2.HealthCheckResponse.SERVING:
            self.assertLess(time.time(), deadline, "cofferd did not recover after the database came back")
            time.sleep(0.2)
        # every worker reconnects: a burst of calls all succeed
        for _ in range(20):
            try:
                self.projects.GetProject(projects.GetProjectRequest(name=p), timeout=10)
            except grpc.RpcError as e:
                self.assertEqual(e.code(), SC.UNAVAILABLE)  # a worker's first call after the outage
        for _ in range(20):
            self.assertEqual(self.projects.GetProject(projects.GetProjectRequest(name=p), timeout=10).name, p)

    def test_restart_under_load(self):
        """PostgreSQL restarted while writers and readers run: every call ends within its deadline
        as OK or UNAVAILABLE (a write whose commit was cut may say UNKNOWN), never INTERNAL;
        calls succeed again soon after the database is back; every acknowledged write is there."""
        p = self.new_project()
        stop = threading.Event()
        lock = threading.Lock()
        outcomes, acked, oks_after = [], [], []
        back = {}

        def work(n):
            i = 0
            while not stop.is_set():
                i += 1
                name = f"W{n}_{i}"
                for kind, call in (("write", lambda: self.secrets.CreateSecret(
                                       secrets.CreateSecretRequest(project=p, name=name, value="v"), timeout=5)),
                                   ("read", lambda: self.projects.GetProject(
                                       projects.GetProjectRequest(name=p), timeout=5))):
                    started = time.time()
                    try:
                        call()
                        code = SC.OK
                    except grpc.RpcError as e:
                        code = e.code()
                    ended = time.time()
                    with lock:
                        outcomes.append((kind, code, ended - started))
                        if code == SC.OK and kind == "write":
                            acked.append(name)
                        if code == SC.OK and "t" in back:
                            oks_after.append(ended - back["t"])
                    if code != SC.OK:
                        time.sleep(0.05)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        try:
            time.sleep(1)
            subprocess.run(os.environ["COFFER_TEST_PG_STOP"], shell=True, check=True, stdout=subprocess.DEVNULL)
            time.sleep(1.5)
        finally:
            subprocess.run(os.environ["COFFER_TEST_PG_START"], shell=True, check=True, stdout=subprocess.DEVNULL)
        back["t"] = time.time()
        time.sleep(12)
        stop.set()
        for t in threads:
            t.join()
        allowed = {("read", SC.OK), ("read", SC.UNAVAILABLE), ("write", SC.OK), ("write", SC.UNAVAILABLE),
                   ("write", SC.UNKNOWN)}
        for kind, code, took in outcomes:
            self.assertIn((kind, code), allowed, f"a {kind} ended {code}")
            self.assertLess(took, 5.5, f"a {kind} hung for {took:.1f} s")
        self.assertTrue(any(c != SC.OK for _, c, _ in outcomes), "the outage was not seen")
        self.assertTrue(oks_after and min(oks_after) < 10, "no call succeeded within 10 s of the restart")
        names = set()
        token = ""
        while True:
            page = self.secrets.ListSecrets(secrets.ListSecretsRequest(project=p, page_size=1000, page_token=token))
            names |= {s.name for s in page.secrets}
            token = page.next_page_token
            if not token:
                break
        self.assertEqual(set(acked) - names, set(), "acknowledged writes are missing")


if __name__ == "__main__":
    unittest.main()
