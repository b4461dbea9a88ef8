#!/usr/bin/env bash
# tests/interop/stubs.sh BUILD - Python stubs of our proto files (grpc_python_plugin) into BUILD/py,
# for the suites that call cofferd from Python. The standard protos are copied under other folder
# names so their modules do not shadow the grpc package; their wire names stay.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$1
GEN="$BUILD/py"
rm -rf "$GEN" "$BUILD/pyproto"
mkdir -p "$GEN" "$BUILD/pyproto/grpc_health/v1" "$BUILD/pyproto/grpc_reflection/v1alpha"
cp "$ROOT/proto/grpc/health/v1/health.proto" "$BUILD/pyproto/grpc_health/v1/"
cp "$ROOT/proto/grpc/reflection/v1alpha/reflection.proto" "$BUILD/pyproto/grpc_reflection/v1alpha/"
(cd "$ROOT/proto" && protoc -I. -I"$BUILD/pyproto" -I/usr/include \
  --python_out="$GEN" --grpc_out="$GEN" --plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin \
  coffer/v1/*.proto grpc_health/v1/health.proto grpc_reflection/v1alpha/reflection.proto)
