#!/usr/bin/env bash
# scripts/gpu-check.sh OUT — the GPU check in one go, on a Linux machine with an NVIDIA GPU, python3 with a CUDA
# PyTorch, and g++, but no Node.js and no network. Everything it needs that such a machine lacks was packed here
# beforehand by scripts/gpu-check-prepare.sh into .cache/gpu-check/ (carried with the working tree):
#   1. env:     the GPU (nvidia-smi), python3's torch, the packed Node;
#   2. build:   the addon with g++ (scripts/build-native.mjs) against python3's torch/ folder, NCCL included
#               when pip's nvidia/ headers are there;
#   3. tests:   the tests that need CUDA (and skip without it): devices, autocast, data parallelism, NCCL;
#   4. e2e:     synth → finetune → predict → evaluate on the tiny and demo synthetic data, on the GPU;
#   5. bench:   unet-step (bf16), predict and pretrain against PyTorch on the same GPU, at the anchors' scale
#               (64³, 16→128 channels) and at nnU-Net's (128³, batch 2, 32→320 channels).
# Every step's result is one JSON line in OUT/results.jsonl and its output is OUT/<step>.log; a failed step is
# recorded and the check goes on (except when the build fails). Aims for under 8 minutes on an H200.
#   --cpu      the same build-and-test path on this CPU (no GPU needed): in a copy of the working tree (so this
#              worktree's node_modules/ and build/ are left alone), against python3's torch when it has its C++
#              headers and else Debian's libtorch-dev; e2e on the tiny data only; no benchmarks. Uses the packed
#              Node when .cache/gpu-check/ has it, else the node on PATH.
#   --dry-run  print the steps and their commands; run nothing.
# Usage: scripts/gpu-check.sh [--cpu] [--dry-run] OUT
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
mode=gpu dry=0 out=""
for a in "$@"; do
  case "$a" in
    --cpu) mode=cpu ;;
    --dry-run) dry=1 ;;
    -h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "gpu-check: unknown option $a (expected --cpu, --dry-run)" >&2; exit 2 ;;
    *) [ -z "$out" ] || { echo "gpu-check: one OUT folder, got '$out' and '$a'" >&2; exit 2; }; out=$a ;;
  esac
done
[ -n "$out" ] || { echo "usage: scripts/gpu-check.sh [--cpu] [--dry-run] OUT" >&2; exit 2; }
mkdir -p "$out"
out=$(cd "$out" && pwd)
pack=${LSMSEG_GPU_PACK:-$repo/.cache/gpu-check}
results=$out/results.jsonl
: > "$results"
started=$(date +%s)
say() { echo "[gpu-check] $*"; }
json_str() { printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g' | tr '\n\t' '  ')"; }

# step NAME COMMAND...: runs COMMAND in the work tree, output to OUT/NAME.log, one JSON line in results.jsonl
failures=0
step() {
  local name=$1; shift
  if [ "$dry" = 1 ]; then
    say "step $name: $*"
    echo "{\"step\": \"$name\", \"dry_run\": true, \"command\": $(json_str "$*")}" >> "$results"
    return 0
  fi
  say "step $name ..."
  local t0 rc=0
  t0=$(date +%s.%N)
  (cd "$work" && "$@") > "$out/$name.log" 2>&1 || rc=$?
  local seconds
  seconds=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  local last
  last=$(grep '^{' "$out/$name.log" | tail -1 || true)
  [ -n "$last" ] || last=null
  echo "{\"step\": \"$name\", \"status\": $rc, \"seconds\": $seconds, \"result\": $last, \"tail\": $(json_str "$(tail -3 "$out/$name.log")")}" >> "$results"
  say "step $name: exit $rc in $seconds s"
  [ "$rc" = 0 ] || failures=$((failures + 1))
  return 0
}

# The work tree: this one on the GPU machine (a copy carried there); a fresh copy with --cpu.
if [ "$mode" = cpu ] && [ "$dry" = 0 ]; then
  work=$(mktemp -d "${TMPDIR:-/tmp}/lsmseg-gpu-check-XXXXXX")
  trap 'rm -rf "$work"' EXIT
  (cd "$repo" && git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf -) | tar -xf - -C "$work"
else
  work=$repo
fi

# Node: the packed one (unpacked once into the work tree's .cache/node), else (only with --cpu) the one on PATH
nodedir=""
if [ -f "$pack/node.tar.xz" ]; then
  nodedir=$work/.cache/node
  if [ "$dry" = 0 ] && [ ! -x "$nodedir/bin/node" ]; then mkdir -p "$nodedir" && tar -xJf "$pack/node.tar.xz" -C "$nodedir"; fi
elif [ "$mode" = cpu ] && command -v node >/dev/null; then
  nodedir=$(dirname "$(dirname "$(command -v node)")")
  [ -f "$nodedir/include/node/node_api.h" ] || nodedir=/usr
  say "no $pack/node.tar.xz: using $(command -v node) (run scripts/gpu-check-prepare.sh to test the packed Node)"
else
  say "no $pack/node.tar.xz: run scripts/gpu-check-prepare.sh on a machine with npm first"; exit 1
fi
export PATH=$nodedir/bin:$PATH
if [ "$dry" = 0 ] && [ ! -d "$work/node_modules/tsx" ]; then
  if [ -f "$pack/node_modules.tar.xz" ]; then tar -xJf "$pack/node_modules.tar.xz" -C "$work"
  elif [ "$mode" = cpu ] && [ -d "$repo/node_modules/tsx" ]; then ln -s "$repo/node_modules" "$work/node_modules"
  else say "no node_modules and no $pack/node_modules.tar.xz"; exit 1; fi
fi
[ -d "$pack/anchors" ] && export LSMSEG_ANCHORS=$pack/anchors

# libtorch: python3's torch/ folder when it has the C++ headers; with --cpu, else Debian's libtorch-dev
torchdir=$(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))' 2>/dev/null || true)
if [ -n "$torchdir" ] && [ -f "$torchdir/include/torch/csrc/api/include/torch/torch.h" ]; then
  export LIBTORCH=$torchdir
elif [ "$mode" = gpu ]; then
  say "python3's torch ($torchdir) has no include/torch/csrc/api/include/torch/torch.h: a CUDA PyTorch with its C++ headers is needed"; exit 1
else
  unset LIBTORCH
  say "python3 has no torch with C++ headers: building against Debian's libtorch-dev"
fi
device=cuda
[ "$mode" = cpu ] && device=cpu
say "mode $mode, work tree $work, LIBTORCH=${LIBTORCH:-unset, Debian libtorch-dev}, results in $results"

# 1. env
env_info() {
  node -e 'const os = require("os"); console.log(JSON.stringify({ node: process.version, cpus: os.cpus().length, cpu: os.cpus()[0]?.model }))'
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "no nvidia-smi"
  python3 -c 'import torch, json; print(json.dumps({"torch": torch.__version__, "cuda": torch.version.cuda, "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}))' || true
}
step env env_info

# 2. build (nothing else can run when it fails)
step build node scripts/build-native.mjs --nodedir "$nodedir"
if [ "$dry" = 0 ] && ! grep -q '"step": "build", "status": 0' "$results"; then
  say "the build failed: see $out/build.log"; exit 1
fi
step info node -e 'const b = require("./build/Release/lsmseg_native.node").buildInfo(); delete b.config; console.log(JSON.stringify(b))'

# 3. the tests that need CUDA, and skip without it
step tests node scripts/test.mjs test/seg/device.test.ts test/torch/autocast.test.ts test/dist/ddp.test.ts test/setup/nccl-compile.test.ts test/setup/libtorch-config.test.ts

# 4. end to end on synthetic data: e2e_run PRESET EPOCHS STEPS FEATURES
e2e_run() {
  local d rc=0
  d=$(mktemp -d)
  {
    node bin/lsmseg.js synth --out "$d/data" --preset "$1" --quiet &&
    node bin/lsmseg.js finetune --data "$d/data" --out "$d/run" --device "$device" --epochs "$2" --steps-per-epoch "$3" --features "$4" --fold all --quiet &&
    node bin/lsmseg.js predict --model "$d/run" --in "$d/data/test/images" --out "$d/pred" --device "$device" --no-tta --quiet &&
    node bin/lsmseg.js evaluate --pred "$d/pred" --gt "$d/data/test/labels" --json | tr -d '\n' && echo
  } || rc=$?
  rm -rf "$d"
  return $rc
}
step e2e-tiny e2e_run tiny 1 4 8
[ "$mode" = gpu ] && step e2e-demo e2e_run demo 2 50 32

# 5. benchmarks against PyTorch on the same GPU (GPU only)
if [ "$mode" = gpu ]; then
  export LSMSEG_PYTHON=python3
  nnunet="--features 32,64,128,256,320,320"
  step bench-unet-step-64 node scripts/bench.mjs unet-step --device cuda --reps 5 --patch 64 --threads 4
  step bench-predict-64 node scripts/bench.mjs predict --device cuda --size 192 --patch 64 --batch 2 --threads 4
  step bench-pretrain-64 node scripts/bench.mjs pretrain --device cuda --reps 5 --patch 64 --threads 4
  step bench-unet-step-128 node scripts/bench.mjs unet-step --device cuda --reps 5 --patch 128 --batch 2 --threads 4 $nnunet
  step bench-predict-128 node scripts/bench.mjs predict --device cuda --size 256 --patch 128 --batch 2 --threads 4 $nnunet
  step bench-pretrain-128 node scripts/bench.mjs pretrain --device cuda --reps 5 --patch 128 --batch 2 --threads 4 $nnunet
fi

total=$(( $(date +%s) - started ))
echo "{\"step\": \"total\", \"mode\": \"$mode\", \"device\": \"$device\", \"failures\": $failures, \"seconds\": $total}" >> "$results"
say "done in $total s with $failures failed steps; results: $results"
[ "$failures" = 0 ]
