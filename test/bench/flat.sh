#!/usr/bin/env bash
# Does the run's cost grow with the root? The same configuration applied by
# `provision run --root` in a btrfs snapshot transaction (snapper layout,
# /var and /home subvolumes in its fstab) on a small root and on a large
# one, interleaved; prints the medians and their ratio (target: <= 1.2).
# Root, loop devices and mkfs.btrfs needed.
#
#   test/bench/flat.sh [BIN] [RUNS] [SMALL_MIB] [LARGE_MIB]
set -euo pipefail
. "$(dirname "$0")/tree.sh"
BIN=$(realpath "${1:-bin/provision}")
RUNS=${2:-7}
SMALL=${3:-100}
LARGE=${4:-4096}
HERE=$(cd "$(dirname "$0")" && pwd)
SEED=$HERE/seed
if [ "$(id -u)" != 0 ] || [ ! -e /dev/loop-control ] || ! command -v mkfs.btrfs >/dev/null; then
  echo "flat: needs root, loop devices and mkfs.btrfs; skipped"
  exit 0
fi
WORK=$(mktemp -d /var/tmp/provision-flat.XXXXXX)
MNTS=()
cleanup() {
  for m in "${MNTS[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
bench_tree "$WORK/base"

# layout NAME MIB: a snapper root holding the tree plus MIB of data in 1 MiB
# files and 20 small files per MiB (a real root has both), mounted at
# $WORK/NAME-root.
layout() {
  local name=$1 mib=$2 img=$WORK/$1.img top=$WORK/$1-top root=$WORK/$1-root
  truncate -s $((mib + 1024))M "$img"
  mkfs.btrfs -q "$img" >/dev/null 2>&1
  mkdir -p "$top" "$root"
  mount -o loop "$img" "$top"; MNTS=("$top" "${MNTS[@]}")
  btrfs -q subvolume create "$top/@"
  btrfs -q subvolume create "$top/@/.snapshots"
  btrfs -q subvolume create "$top/@/var"
  btrfs -q subvolume create "$top/@/home"
  mkdir -p "$top/@/.snapshots/1"
  local snap=$top/@/.snapshots/1/snapshot
  btrfs -q subvolume create "$snap"
  cp -a "$WORK/base/." "$snap/"
  mkdir -p "$snap/.snapshots" "$snap/var" "$snap/home" "$snap/usr/lib/data"
  local uuid
  uuid=$(blkid -s UUID -o value "$img")
  printf 'UUID=%s / btrfs ro 0 0\nUUID=%s /var btrfs subvol=/@/var 0 0\nUUID=%s /home btrfs subvol=/@/home 0 0\n' "$uuid" "$uuid" "$uuid" > "$snap/etc/fstab"
  local i
  for ((i = 0; i < mib; i++)); do
    head -c 1048576 /dev/urandom > "$snap/usr/lib/data/blob$i"
  done
  python3 - "$snap/usr/lib/data" "$((mib * 20))" <<'PY'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    sub = os.path.join(d, "small%03d" % (i // 1000))
    os.makedirs(sub, exist_ok=True)
    with open(os.path.join(sub, "f%d" % i), "w") as f:
        f.write("x" * (i % 512))
PY
  printf '<?xml version="1.0"?>\n<snapshot>\n  <type>single</type>\n  <num>1</num>\n  <date>2026-01-01 00:00:00</date>\n  <description>first root filesystem</description>\n</snapshot>\n' > "$top/@/.snapshots/1/info.xml"
  btrfs subvolume set-default "$(btrfs inspect-internal rootid "$snap")" "$top"
  sync
  mount -o loop "$img" "$root"; MNTS=("$root" "${MNTS[@]}")
  mount -o loop,subvol=@/.snapshots "$img" "$root/.snapshots"; MNTS=("$root/.snapshots" "${MNTS[@]}")
  rm -f "$img" # unlinked: freed at unmount
}
layout small "$SMALL"
layout large "$LARGE"
echo "roots: small $(du -sm "$WORK/small-top/@/.snapshots/1/snapshot" | cut -f1) MiB, large $(du -sm "$WORK/large-top/@/.snapshots/1/snapshot" | cut -f1) MiB"

python3 - "$RUNS" "$BIN" "$SEED" "$WORK" <<'PY'
import os, statistics, subprocess, sys, time
runs, bin_, seed, work = int(sys.argv[1]), *sys.argv[2:]
wall = {"small": [], "large": []}
for i in range(runs + 1):
    for name in ("small", "large"):
        # Each run provisions anew (--force) from the current default, as a
        # first boot of a new instance does; the first round warms caches.
        root = os.path.join(work, name + "-root")
        t0 = time.perf_counter()
        subprocess.run([bin_, "run", "--force", "--root", root, "--source", seed,
                        "--report", os.path.join(work, name + ".json")],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if i:
            wall[name].append((time.perf_counter() - t0) * 1000)
s, l = statistics.median(wall["small"]), statistics.median(wall["large"])
print(f"snapshot transaction, whole run: small root {s:.1f} ms, large root {l:.1f} ms, ratio {l / s:.2f} (median of {runs})")
PY
