"""Waits until cofferd at COFFER_ADDR answers SERVING (up to 30 s)."""
import os
import sys
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

stub = health_pb2_grpc.HealthStub(grpc.insecure_channel(os.environ["COFFER_ADDR"]))
deadline = time.time() + 30
while time.time() < deadline:
    try:
        if stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status == health_pb2.HealthCheckResponse.SERVING:
            sys.exit(0)
    except grpc.RpcError:
        pass
    time.sleep(0.2)
print("cofferd did not become SERVING", file=sys.stderr)
sys.exit(1)
