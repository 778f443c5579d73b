#!/usr/bin/env bash
# Regenerates the Python stubs beside the .proto files. Run after editing a
# contract; the generated *_pb2*.py(i) files are committed so services need no
# protoc at install time. Imports come out as `from saga_proto import x_pb2`
# because the include root is proto/src.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

python_bin="${PYTHON:-}"
if [[ -z "$python_bin" ]]; then
  if [[ -x .venv/bin/python ]]; then python_bin=.venv/bin/python; else python_bin=python3; fi
fi

"$python_bin" -m grpc_tools.protoc \
  -I proto/src \
  --python_out=proto/src \
  --pyi_out=proto/src \
  --grpc_python_out=proto/src \
  proto/src/saga_proto/*.proto
