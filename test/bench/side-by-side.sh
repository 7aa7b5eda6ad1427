#!/usr/bin/env bash
# Side by side, interleaved: `provision run --root` against the floor — a
# program that writes exactly the files the run leaves and one syncfs
# (test/bench/floor), and the same with a crash-safe undo journal — on
# tmpfs, ext4 and btrfs (loop images; root only for those two). Ignition
# and cloud-init join when installed. Prints medians of wall and CPU time
# and the ratios.
#
#   test/bench/side-by-side.sh [BIN] [RUNS]
set -euo pipefail
. "$(dirname "$0")/tree.sh"
BIN=$(realpath "${1:-bin/provision}")
RUNS=${2:-11}
HERE=$(cd "$(dirname "$0")" && pwd)
SEED=$HERE/seed
WORK=$(mktemp -d /dev/shm/provision-sbs.XXXXXX)
MNTS=()
cleanup() {
  for m in "${MNTS[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

FLOOR=$WORK/floor
(cd "$HERE/../.." && CGO_ENABLED=0 go build -o "$FLOOR" ./test/bench/floor)

# The tree (tree.sh).
base=$WORK/base
bench_tree "$base"

# The end state, recorded once from a real run.
cp -a "$base" "$WORK/after"
"$BIN" run --root "$WORK/after" --source "$SEED" --report "$WORK/after.json" >/dev/null 2>&1
"$FLOOR" record "$base" "$WORK/after" "$WORK/manifest"

filesystems=("tmpfs:$WORK/fs-tmpfs")
mkdir -p "$WORK/fs-tmpfs"
if [ "$(id -u)" = 0 ] && [ -e /dev/loop-control ]; then
  for fs in ext4 btrfs; do
    if command -v "mkfs.$fs" >/dev/null; then
      img=/var/tmp/provision-sbs-$fs.img
      rm -f "$img" && truncate -s 1G "$img"
      "mkfs.$fs" -q "$img" >/dev/null 2>&1 || mkfs."$fs" "$img" >/dev/null
      mkdir -p "$WORK/fs-$fs"
      mount -o loop "$img" "$WORK/fs-$fs"
      MNTS+=("$WORK/fs-$fs")
      rm -f "$img" # unlinked: freed at unmount
      filesystems+=("$fs:$WORK/fs-$fs")
    fi
  done
else
  echo "not root or no loop devices: tmpfs only"
fi
command -v ignition >/dev/null || echo "ignition: not installed, not compared"
command -v cloud-init >/dev/null || echo "cloud-init: not installed, not compared"

for spec in "${filesystems[@]}"; do
  name=${spec%%:*} dir=${spec#*:}
  cp -a "$base" "$dir/base"
  python3 - "$name" "$dir" "$RUNS" "$BIN" "$FLOOR" "$SEED" "$WORK/manifest" <<'PY'
import os, resource, statistics, subprocess, sys, time
name, d, runs, bin_, floor, seed, manifest = sys.argv[1], sys.argv[2], int(sys.argv[3]), *sys.argv[4:]
t = os.path.join(d, "t")
cmds = [
    ("provision", [bin_, "run", "--root", t, "--source", seed, "--report", os.path.join(d, "r.json")]),
    ("floor", [floor, "apply", t, manifest]),
    ("floor+undo", [floor, "apply", "-undo", t, manifest]),
]
wall = {n: [] for n, _ in cmds}
cpu = {n: [] for n, _ in cmds}
for i in range(runs + 1):  # the first round warms the caches
    for n, c in cmds:
        subprocess.run(["rm", "-rf", t], check=True)
        subprocess.run(["cp", "-a", os.path.join(d, "base"), t], check=True)
        subprocess.run(["sync", "-f", d], check=True)
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(c, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t1 = time.perf_counter()
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        if i:
            wall[n].append((t1 - t0) * 1000)
            cpu[n].append((r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime) * 1000)
m = {n: statistics.median(v) for n, v in wall.items()}
c = {n: statistics.median(v) for n, v in cpu.items()}
print(f"{name:6} provision {m['provision']:7.1f} ms (CPU {c['provision']:5.1f})  "
      f"floor {m['floor']:6.1f} ms  floor+undo {m['floor+undo']:6.1f} ms  "
      f"provision/floor+undo {m['provision']/m['floor+undo']:5.1f}x  ({runs} interleaved runs, medians)")
PY
done

# The btrfs snapshot transaction on a snapper layout (@, @/.snapshots,
# snapshot 1 the default, mounted as the root): every run makes snapshot
# N+1 of it, fills it and switches the default, as a first boot does.
if [ "$(id -u)" = 0 ] && [ -e /dev/loop-control ] && command -v mkfs.btrfs >/dev/null; then
  img=/var/tmp/provision-sbs-snapper.img
  rm -f "$img" && truncate -s 2G "$img" && mkfs.btrfs -q "$img" >/dev/null 2>&1
  top=$WORK/snapper-top root=$WORK/snapper-root
  mkdir -p "$top" "$root"
  mount -o loop "$img" "$top"; MNTS+=("$top")
  btrfs -q subvolume create "$top/@"
  btrfs -q subvolume create "$top/@/.snapshots"
  mkdir -p "$top/@/.snapshots/1"
  btrfs -q subvolume create "$top/@/.snapshots/1/snapshot"
  cp -a "$base/." "$top/@/.snapshots/1/snapshot/"
  printf '<?xml version="1.0"?>\n<snapshot>\n  <type>single</type>\n  <num>1</num>\n  <date>2026-01-01 00:00:00</date>\n  <description>first root filesystem</description>\n</snapshot>\n' > "$top/@/.snapshots/1/info.xml"
  id=$(btrfs subvolume list "$top" | awk '/\.snapshots\/1\/snapshot$/ {print $2}')
  btrfs subvolume set-default "$id" "$top"
  mount -o loop "$img" "$root"; MNTS=("$root" "${MNTS[@]}")
  rm -f "$img"
  python3 - "$RUNS" "$BIN" "$SEED" "$root" "$WORK" <<'PY'
import os, resource, statistics, subprocess, sys, time
runs, bin_, seed, root, work = int(sys.argv[1]), *sys.argv[2:]
wall, cpu = [], []
for i in range(runs + 1):
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([bin_, "run", "--force", "--root", root, "--source", seed, "--report", os.path.join(work, "s.json")],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t1 = time.perf_counter()
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if i:
        wall.append((t1 - t0) * 1000)
        cpu.append((r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime) * 1000)
print(f"btrfs snapshot transaction (snapper layout): provision {statistics.median(wall):.1f} ms "
      f"(CPU {statistics.median(cpu):.1f}), median of {runs}")
PY
fi
