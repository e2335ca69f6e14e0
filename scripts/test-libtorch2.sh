#!/usr/bin/env bash
# npm run test:libtorch2 — builds the addon against Debian 13 ("trixie")'s libtorch-dev 2.x and runs the engine,
# nn, optim, dist, seg and ssl tests there, on this CPU. Everything happens in a Debian 13 root that this script
# makes itself with debootstrap (in .cache/trixie/, git-ignored, reused on the next run):
#   1. root:     debootstrap a minimal trixie (skipped when .cache/trixie is already complete);
#   2. packages: libtorch-dev, libgloo-dev, g++, make, python3, nodejs, npm, node-gyp inside it, plus this host's
#                locally added CA certificates (npm fails with SELF_SIGNED_CERT_IN_CHAIN behind a TLS proxy without them);
#   3. copy:     the worktree's tracked and unignored files into the root's /lsmseg (the host's node_modules/ and
#                build/ are built for the host and never touched); npm ci there when package-lock.json changed;
#   4. build:    node scripts/setup.mjs in the root (node-gyp against /usr/include/torch, libtorch 2.x);
#   5. test:     node scripts/test.mjs over the chosen test folders, in the root.
# Every mount lives in a private mount namespace (unshare -m), so it vanishes when the script ends, even when killed.
# Needs root (debootstrap, chroot). Arguments replace the default test folders: scripts/test-libtorch2.sh test/optim
# Environment: LSMSEG_TRIXIE_ROOT (where the root lives), DEBIAN_MIRROR (default http://deb.debian.org/debian).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
rootfs=${LSMSEG_TRIXIE_ROOT:-$repo/.cache/trixie}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
packages="libtorch-dev libgloo-dev libopenblas0-pthread g++ make python3 nodejs npm node-gyp ca-certificates"
tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=(test/torch test/nn test/optim test/dist test/seg test/ssl test/util/heap)

say() { echo "[libtorch2] $*"; }
phase_start=0
phase() { phase_start=$(date +%s); say "== $1"; }
phase_end() { say "-- $1 took $(( $(date +%s) - phase_start )) s"; }
fail() { echo "[libtorch2] $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "needs root (debootstrap and chroot); run it as root or with sudo"
total_start=$(date +%s)

# 1. root
phase "root ($rootfs)"
if [ ! -f "$rootfs/.lsmseg-root" ]; then
  command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends debootstrap; }
  # debootstrap into a fresh folder, then rename: an interrupted run never leaves a half root that looks whole
  rm -rf "$rootfs.partial"
  mkdir -p "$(dirname "$rootfs")"
  debootstrap --variant=minbase trixie "$rootfs.partial" "$mirror"
  rm -rf "$rootfs"
  mv "$rootfs.partial" "$rootfs"
  date -u +%FT%TZ > "$rootfs/.lsmseg-root"
else
  say "reusing the root made $(cat "$rootfs/.lsmseg-root")"
fi
phase_end root

# Run a command inside the root, with /proc, /sys, /dev and the network's resolv.conf, in a private mount namespace,
# in a clean environment (CI=true is left out: setup.mjs would install chromium there for a test this run skips).
in_root() {
  unshare --mount --propagation private -- /bin/bash -c '
    set -e
    r=$1; shift
    mount -t proc proc "$r/proc"
    mount --rbind /sys "$r/sys"
    mount --rbind /dev "$r/dev"
    cp -L /etc/resolv.conf "$r/etc/resolv.conf" 2>/dev/null || true
    exec chroot "$r" /usr/bin/env -i HOME=/root PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin LANG=C.UTF-8 \
      ${LSMSEG_THREADS:+LSMSEG_THREADS=$LSMSEG_THREADS} "$@"
  ' in_root "$rootfs" "$@"
}

# 2. packages (the stamp names the package list: a changed list installs again)
phase packages
if [ "$(cat "$rootfs/.lsmseg-packages" 2>/dev/null)" != "$packages" ]; then
  in_root apt-get update -qq
  in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $packages
  in_root apt-get clean
  echo "$packages" > "$rootfs/.lsmseg-packages"
fi
if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
  mkdir -p "$rootfs/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
  in_root update-ca-certificates >/dev/null
fi
libtorch_version=$(in_root dpkg-query -W -f '${Version}' libtorch-dev)
node_version=$(in_root node --version)
say "Debian 13 libtorch-dev $libtorch_version, node $node_version"
phase_end packages

# 3. copy the worktree (keep the root's own node_modules/ and build/ between runs)
phase copy
dest="$rootfs/lsmseg"
mkdir -p "$dest"
find "$dest" -mindepth 1 -maxdepth 1 ! -name node_modules ! -name build -exec rm -rf {} +
git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf - | tar -xf - -C "$dest"
if ! cmp -s "$dest/package-lock.json" "$dest/node_modules/.lsmseg-lock.json"; then
  in_root /bin/sh -c 'cd /lsmseg && npm ci --no-audit --no-fund --ignore-scripts && cp package-lock.json node_modules/.lsmseg-lock.json'
fi
phase_end copy

# 4. build the addon against libtorch 2.x
phase build
in_root /bin/sh -c 'cd /lsmseg && node scripts/setup.mjs'
torch_version=$(in_root /bin/sh -c "cd /lsmseg && node -p \"require('./build/Release/lsmseg_native.node').buildInfo().torchVersion\"")
say "built against libtorch $torch_version (Debian libtorch-dev $libtorch_version)"
phase_end build

# 5. tests
phase "test (${tests[*]})"
status=0
in_root /bin/sh -c 'cd /lsmseg && exec node scripts/test.mjs "$@"' sh "${tests[@]}" || status=$?
phase_end test
say "libtorch $torch_version: total $(( $(date +%s) - total_start )) s"
exit $status
