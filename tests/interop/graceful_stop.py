"""Graceful stop: a call in flight when cofferd receives SIGTERM completes with OK; new
connections are refused afterwards. run.sh then checks that cofferd exits 0."""
import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import grpc
from coffer.v1 import projects_pb2, projects_pb2_grpc, secrets_pb2, secrets_pb2_grpc

addr, pid = os.environ["COFFER_ADDR"], int(os.environ["COFFERD_PID"])
psql = os.path.join(os.environ["COFFER_TEST_PG_BIN"], "psql")
url = os.environ["COFFER_TEST_DATABASE_URL"]
channel = grpc.intercept_channel(grpc.insecure_channel(addr), __import__("test_interop").Bearer(
    os.environ["COFFER_ADMIN_TOKEN"]))
P, S = projects_pb2_grpc.ProjectsStub(channel), secrets_pb2_grpc.SecretsStub(channel)
name = "graceful-" + uuid.uuid4().hex[:8]
P.CreateProject(projects_pb2.CreateProjectRequest(name=name))
S.CreateSecret(secrets_pb2.CreateSecretRequest(project=name, name="SLOW", value="before"))

# Hold the project row lock for 2 s so that the update below is in flight when SIGTERM arrives.
locker = subprocess.Popen([psql, url, "-qAtc",
                           f"BEGIN; SELECT id FROM projects WHERE name = '{name}' FOR UPDATE; "
                           "SELECT pg_sleep(2); COMMIT;"], stdout=subprocess.DEVNULL)
time.sleep(0.5)
result = {}


def update():
    try:
        result["ok"] = S.UpdateSecret(secrets_pb2.UpdateSecretRequest(project=name, name="SLOW", value="after"),
                                      timeout=20).revision
    except grpc.RpcError as e:
        result["err"] = (e.code(), e.details())


t = threading.Thread(target=update)
t.start()
time.sleep(0.5)
os.kill(pid, signal.SIGTERM)
t.join()
locker.wait()
if "ok" not in result:
    print(f"FAIL: the in-flight call failed: {result.get('err')}")
    sys.exit(1)
print(f"ok: the call in flight during SIGTERM completed (revision {result['ok']})")
time.sleep(0.5)
try:
    projects_pb2_grpc.ProjectsStub(grpc.insecure_channel(addr)).GetProject(
        projects_pb2.GetProjectRequest(name=name), timeout=3)
    print("FAIL: a new call was served after shutdown began")
    sys.exit(1)
except grpc.RpcError as e:
    print(f"ok: a new call after SIGTERM is refused ({e.code().name})")
