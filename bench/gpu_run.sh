#!/usr/bin/env bash
# On a GPU machine without Rust: unpacks the binaries that bench/gpu_payload.sh packed into
# PAYLOAD (default target/gpu) to /tmp/refinery-gpu, puts the CUDA 13 libraries of PyTorch's pip
# packages on LD_LIBRARY_PATH, and runs the command with GPU set to that folder and DATA to the
# payload's bench data. Examples, from the repository root:
#   bench/gpu_run.sh bash -c '$GPU/trainer-tests cuda_ops'
#   bench/gpu_run.sh bash -c 'REFINERY_BIN=$GPU/refinery CPU=0 GPU_BATCH=16 bench/train.sh'
#   bench/gpu_run.sh bash -c 'ncu --metrics gpu__time_duration.sum --csv -s 5000 -c 2900 $GPU/gpu_step 8'
set -euo pipefail
payload="${PAYLOAD:-$(dirname "$0")/../target/gpu}"
[ -f "$payload/COMMIT" ] || {
  echo "no payload in $payload: run bench/gpu_payload.sh on the build machine and carry its folder" >&2
  exit 2
}
payload="$(cd "$payload" && pwd)"
export GPU=/tmp/refinery-gpu DATA="$payload/bench-data"
# A folder unpacked from another payload is replaced.
stamp=$(cd "$payload" && cat COMMIT && ls -l --time-style=+%s ./*.xz)
[ "$stamp" = "$(cat "$GPU/STAMP" 2>/dev/null)" ] || rm -rf "$GPU"
mkdir -p "$GPU"
for packed in "$payload"/*.xz; do
  bin="$GPU/$(basename "$packed" .xz)"
  [ -x "$bin" ] || { xz -dc "$packed" > "$bin.tmp" && chmod +x "$bin.tmp" && mv "$bin.tmp" "$bin"; }
done
echo "$stamp" > "$GPU/STAMP"
if lib=$(python3 -c 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu13", "lib"))' 2>/dev/null); then
  export LD_LIBRARY_PATH="$lib:${LD_LIBRARY_PATH:-}"
else
  echo "warning: no PyTorch CUDA packages (python3 -c 'import nvidia'); using the system's libraries" >&2
fi
echo "payload of commit $(tr '\n' ' ' < "$payload/COMMIT")" >&2
"$@"
