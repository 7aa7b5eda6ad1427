#!/usr/bin/env bash
# Side by side, interleaved: `provision run --root` against the floor — a
# program that writes exactly the files the run leaves and one syncfs
# (test/bench/floor), and the same with a crash-safe undo journal — on
# tmpfs, ext4 and btrfs (loop images; root only for those two). Prints
# medians of wall and CPU time and the ratios: of the medians, and the
# median of each round's own ratio (which a drifting machine load moves less).
#
# Ignition joins when there is one (ignition.sh: $IGNITION, on PATH, or
# built once from its Go module): its fetch-offline and files stages, as
# a boot runs them, apply test/bench/ignition/config.ign — the seed's
# config in Ignition's terms — to a fresh copy of the same tree, and
# provision applies that same file, interleaved with the runs above.
#
# cloud-init joins when its Debian tree is on the machine: the newest
# cloudinit-*.tar in ${PROVISION_E2E_CACHE:-/var/cache/provision-e2e}, a
# bookworm tree with the real cloud-init, built and cached by the
# differential test test/cloudinitdiff (`make test`, as root). On each
# filesystem the tree is unpacked once; every run then gets a fresh copy of
# it (cp -a on tmpfs and ext4, a snapshot of a base subvolume on btrfs; not
# timed), and provision and cloud-init apply the same seed (test/bench/seed)
# to the same tree, interleaved. cloud-init runs its four boot stages as a
# boot runs them (init --local, init, modules config, modules final) with
# the tree's own cloud.cfg, in a chroot in a mount and UTS namespace of its
# own; the namespace's mounts (/proc, /sys, /dev) are not timed, the four
# stage commands are. A stage's failure or a module's error prints its
# output and fails the script. Without the tree, a line says cloud-init is
# not compared; a cloud-init on this host's PATH is never run (it would act
# on this machine, not on a tree).
#
#   test/bench/side-by-side.sh [BIN] [RUNS]    (CLOUDINIT_RUNS, default 5)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=tree.sh
. "$(dirname "$0")/tree.sh"
# shellcheck source-path=SCRIPTDIR source=ignition.sh
. "$(dirname "$0")/ignition.sh"
BIN=$(realpath "${1:-bin/provision}")
RUNS=${2:-11}
CLOUDINIT_RUNS=${CLOUDINIT_RUNS:-5}
HERE=$(cd "$(dirname "$0")" && pwd)
SEED=$HERE/seed
WORK=$(mktemp -d /dev/shm/provision-sbs.XXXXXX)
# Ignition writes a user's authorized keys as that user: the path to the
# tree must be searchable by others, as a real root's is.
chmod 0755 "$WORK"
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
      # Room for the bench tree, cloud-init's tree (about 400 MB) and a
      # copy of each.
      rm -f "$img" && truncate -s 3G "$img"
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
CACHE=${PROVISION_E2E_CACHE:-/var/cache/provision-e2e}
IGN=$(ignition_binary "$CACHE")
IGN_VERSION=
[ -n "$IGN" ] && IGN_VERSION=$("$IGN" -version 2>&1 | head -1)

# cloud-init's tree: the newest the differential test cached.
CI_TAR=
for f in "$CACHE"/cloudinit-*.tar; do
  if [ -f "$f" ] && { [ -z "$CI_TAR" ] || [ "$f" -nt "$CI_TAR" ]; }; then CI_TAR=$f; fi
done
if [ -n "$CI_TAR" ] && { [ "$(id -u)" != 0 ] || ! command -v unshare >/dev/null || ! command -v chroot >/dev/null; }; then
  echo "cloud-init: $CI_TAR needs root, unshare and chroot to run: not compared"
  CI_TAR=
elif [ -z "$CI_TAR" ]; then
  if command -v cloud-init >/dev/null; then
    echo "cloud-init: no cached tree in $CACHE (make test builds it via test/cloudinitdiff); the host's own cloud-init is not run (it would act on this machine): not compared"
  else
    echo "cloud-init: no cached tree in $CACHE (make test builds it via test/cloudinitdiff) and not installed: not compared"
  fi
fi
CI_VERSION=unknown
[ -n "$CI_TAR" ] && [ -f "$CI_TAR.version" ] && CI_VERSION=$(cat "$CI_TAR.version")

# ci_tree DIR unpacks cloud-init's tree into DIR and makes it the image
# both tools face: the seed where cloud-init's NoCloud looks for it
# (provision gets the same directory as --source), /run/systemd/system as
# on a systemd boot, and the image's datasource choice that ds-identify
# makes on a boot (it is a systemd generator: nothing runs it here), no
# network rendering (the seed has no network config, and the fallback
# would describe this host's NICs), a locale the tree has (Debian's
# default en_US.UTF-8 is not generated in this minimal tree, and
# update-locale fails on it), and the disk left alone: it is this script's
# loop image, full size already (cc_resizefs would run resize2fs on it, and
# fails on btrfs, whose tools the tree lacks), and provision, given neither
# growpart nor resize_rootfs, leaves it to the image's tools too.
ci_tree() {
  tar --numeric-owner --xattrs -C "$1" -xf "$CI_TAR"
  mkdir -p "$1/var/lib/cloud/seed/nocloud" "$1/run/systemd/system"
  install -m 0600 "$SEED/user-data" "$SEED/meta-data" "$1/var/lib/cloud/seed/nocloud/"
  printf '%s\n' 'datasource_list: [NoCloud, None]' 'network: {config: disabled}' 'locale: C.UTF-8' \
    'resize_rootfs: false' 'growpart: {mode: "off"}' \
    > "$1/etc/cloud/cloud.cfg.d/99-bench.cfg"
}

# without_openssh DIR purges OpenSSH from the tree with its own dpkg, in a
# chroot with /proc: neither tool then makes host keys (both do only when
# the tree has ssh-keygen), and what is left is the config's own work.
without_openssh() {
  local out
  # shellcheck disable=SC2016 # $1 is the inner shell's
  if ! out=$(unshare --mount --propagation private sh -c 'mount -t proc proc "$1/proc" &&
    chroot "$1" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
      dpkg --purge openssh-server openssh-sftp-server openssh-client' sh "$1" 2>&1); then
    echo "$out" >&2
    return 1
  fi
}

# cloudinit_cell NAME DIR VARIANT times cloud-init against provision on
# cloud-init's tree on the filesystem NAME mounted at DIR.
cloudinit_cell() {
  local name=$1 dir=$2 variant=$3 tree
  # On btrfs the tree is a directory in a subvolume, snapshotted per run:
  # a tree that is a subvolume's root would get provision's snapshot
  # transaction (timed below on its own layout), not a plain tree's run.
  tree=$dir/ci-base
  if [ "$name" = btrfs ]; then
    btrfs -q subvolume create "$dir/ci-base"
    tree=$dir/ci-base/tree
  fi
  mkdir "$tree"
  ci_tree "$tree"
  case $variant in without*) without_openssh "$tree" ;; esac
  python3 - "$name" "$dir" "$CLOUDINIT_RUNS" "$BIN" "$SEED" "$CI_VERSION" "$variant" <<'PY'
import json, os, resource, statistics, subprocess, sys, time
name, d, runs, bin_, seed, version, variant = sys.argv[1], sys.argv[2], int(sys.argv[3]), *sys.argv[4:]
btrfs = name == "btrfs"
base, copy = os.path.join(d, "ci-base"), os.path.join(d, "ci-t")
t = os.path.join(copy, "tree") if btrfs else copy  # the root both tools get

# In the namespace: the mounts a boot has (not timed), then this timer,
# which runs and times the four stages in the chroot and prints
# "wall_ms cpu_ms"; a stage's failure prints everything and exits 1.
in_ns = """set -e
mount --bind "$1" "$1"
mount -t proc proc "$1/proc"
mount --rbind /sys "$1/sys"
mount --rbind /dev "$1/dev"
exec python3 -c "$2" "$1"
"""
timer = r"""
import resource, subprocess, sys, time
t = sys.argv[1]
env = ["/usr/bin/env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
       "LANG=C.UTF-8", "HOME=/root", "SYSTEMD_OFFLINE=1"]
out = b""
r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
t0 = time.perf_counter()
for stage in (["init", "--local"], ["init"], ["modules", "--mode", "config"], ["modules", "--mode", "final"]):
    p = subprocess.run(["chroot", t, *env, "cloud-init", *stage], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out += p.stdout
    if p.returncode:
        sys.stderr.buffer.write(out)
        sys.exit("cloud-init " + " ".join(stage) + ": exit status %d" % p.returncode)
t1 = time.perf_counter()
r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
print((t1 - t0) * 1000, (r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime) * 1000)
"""

def fail(what, out):
    sys.stderr.write(f"{name}: {what}\n{out}\n")
    sys.exit(1)

def fresh():
    if btrfs:
        subprocess.run(["btrfs", "-q", "subvolume", "snapshot", base, copy], check=True)
    else:
        subprocess.run(["cp", "-a", base, copy], check=True)
    subprocess.run(["sync", "-f", d], check=True)

def drop():
    if not btrfs:
        subprocess.run(["rm", "-rf", copy], check=True)
        return
    # The namespace cloud-init ran in may take a moment to let go of its
    # mounts below the snapshot.
    for _ in range(50):
        if subprocess.run(["btrfs", "-q", "subvolume", "delete", copy], stderr=subprocess.DEVNULL).returncode == 0:
            return
        time.sleep(0.1)
    subprocess.run(["btrfs", "subvolume", "delete", copy], check=True)

def applied(tool):
    # The seed's work is in the tree: not a run that found no seed.
    with open(os.path.join(t, "etc/passwd")) as f:
        users = [l.split(":")[0] for l in f]
    missing = [u for u in ("alice", "bob", "carol") if u not in users]
    if missing or not os.path.exists(os.path.join(t, "etc/bench/file10.conf")):
        fail(f"{tool} left no users {missing} or no /etc/bench/file10.conf: the seed was not applied", "")

def provision():
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run([bin_, "run", "--root", t, "--source", seed, "--report", os.path.join(d, "ci-r.json")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    t1 = time.perf_counter()
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode:
        fail(f"provision run --root {t}: exit status {p.returncode}", p.stdout.decode(errors="replace"))
    applied("provision")
    return (t1 - t0) * 1000, (r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime) * 1000

def cloudinit():
    p = subprocess.run(["unshare", "--mount", "--uts", "--propagation", "private", "/bin/sh", "-c", in_ns, "sh", t, timer],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode:
        fail("cloud-init failed", p.stderr)
    # A module's failure is not always the stage's: result.json has them all.
    with open(os.path.join(t, "var/lib/cloud/data/result.json")) as f:
        result = json.load(f)["v1"]
    if result["errors"] or "NoCloud" not in result["datasource"]:
        with open(os.path.join(t, "var/log/cloud-init-output.log"), errors="replace") as f:
            fail(f"cloud-init: datasource {result['datasource']!r}, errors {result['errors']}", f.read())
    applied("cloud-init")
    wall, cpu = p.stdout.split()
    return float(wall), float(cpu)

res = {"provision": ([], []), "cloud-init": ([], [])}
for i in range(runs + 1):  # the first round warms the caches
    for n, run in (("provision", provision), ("cloud-init", cloudinit)):
        fresh()
        w, c = run()
        drop()
        if i:
            res[n][0].append(w)
            res[n][1].append(c)
m = {n: statistics.median(v[0]) for n, v in res.items()}
c = {n: statistics.median(v[1]) for n, v in res.items()}
how = "a snapshot of a base subvolume holding it" if btrfs else "a cp -a copy"
print(f"{name:6} cloud-init {m['cloud-init']:7.1f} ms (CPU {c['cloud-init']:6.1f})  provision {m['provision']:6.1f} ms "
      f"(CPU {c['provision']:5.1f})  cloud-init/provision {m['cloud-init']/m['provision']:5.1f}x, "
      f"per round {statistics.median(a / b for a, b in zip(res['cloud-init'][0], res['provision'][0])):5.1f}x  "
      f"({variant}; {runs} interleaved runs, medians; both on the same Debian tree with cloud-init {version}, "
      f"{how} per run, not timed; cloud-init's 4 boot stages in a chroot, the namespace's mounts not timed)")
PY
  if [ "$name" = btrfs ]; then btrfs -q subvolume delete "$dir/ci-base"; else rm -rf "$dir/ci-base"; fi
}

for spec in "${filesystems[@]}"; do
  name=${spec%%:*} dir=${spec#*:}
  cp -a "$base" "$dir/base"
  python3 - "$name" "$dir" "$RUNS" "$BIN" "$FLOOR" "$SEED" "$WORK/manifest" "$IGN" "$HERE/ignition/config.ign" "$IGN_VERSION" <<'PY'
import os, resource, statistics, subprocess, sys, time
name, d, runs, bin_, floor, seed, manifest, ign, ign_cfg, ign_version = sys.argv[1], sys.argv[2], int(sys.argv[3]), *sys.argv[4:]
t = os.path.join(d, "t")
# Each entry runs its commands in order, timed together.
cmds = [
    ("provision", [[bin_, "run", "--root", t, "--source", seed, "--report", os.path.join(d, "r.json")]]),
    ("floor", [[floor, "apply", t, manifest]]),
    ("floor+undo", [[floor, "apply", "-undo", t, manifest]]),
]
if ign:
    # Ignition keeps its fetched config and state between the stages, in
    # files of its own: a fresh directory per run, outside the tree.
    run_dir = os.path.join(d, "ign-run")
    stage = lambda s: [ign, "-platform", "file", "-stage", s, "-root", t, "-log-to-stdout",
                       "-config-cache", os.path.join(run_dir, "config.json"),
                       "-state-file", os.path.join(run_dir, "state"), "-neednet", os.path.join(run_dir, "neednet")]
    cmds += [
        ("provision, Ignition config", [[bin_, "run", "--root", t, "--source", ign_cfg, "--report", os.path.join(d, "r.json")]]),
        ("ignition", [stage("fetch-offline"), stage("files")]),
    ]
env = dict(os.environ, IGNITION_CONFIG_FILE=ign_cfg)

def applied(n):
    # The config's work is in the tree: users and the last file.
    with open(os.path.join(t, "etc/passwd")) as f:
        users = [l.split(":")[0] for l in f]
    if not {"alice", "bob", "carol"} <= set(users) or not os.path.exists(os.path.join(t, "etc/bench/file10.conf")):
        sys.exit(f"{name}: {n} left no users or no /etc/bench/file10.conf: the config was not applied")

wall = {n: [] for n, _ in cmds}
cpu = {n: [] for n, _ in cmds}
for i in range(runs + 1):  # the first round warms the caches
    for n, cs in cmds:
        subprocess.run(["rm", "-rf", t], check=True)
        subprocess.run(["cp", "-a", os.path.join(d, "base"), t], check=True)
        if ign:
            subprocess.run(["rm", "-rf", run_dir], check=True)
            os.makedirs(run_dir)
        subprocess.run(["sync", "-f", d], check=True)
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        for c in cs:
            p = subprocess.run(c, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            if p.returncode:
                sys.exit(f"{name}: {n}: {' '.join(c)}: exit status {p.returncode}\n{p.stdout.decode(errors='replace')}")
        t1 = time.perf_counter()
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        if n != "floor" and n != "floor+undo":
            applied(n)
        if i:
            wall[n].append((t1 - t0) * 1000)
            cpu[n].append((r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime) * 1000)
m = {n: statistics.median(v) for n, v in wall.items()}
c = {n: statistics.median(v) for n, v in cpu.items()}

def paired(a, b):
    # The median of each round's own ratio: a machine whose load drifts
    # moves both runs of a round alike, so this one drifts less.
    return statistics.median(x / y for x, y in zip(wall[a], wall[b]))

print(f"{name:6} provision {m['provision']:7.1f} ms (CPU {c['provision']:5.1f})  "
      f"floor {m['floor']:6.1f} ms  floor+undo {m['floor+undo']:6.1f} ms  "
      f"provision/floor+undo {m['provision']/m['floor+undo']:5.1f}x, per round {paired('provision', 'floor+undo'):4.1f}x  "
      f"({runs} interleaved runs, medians)")
if ign:
    pi = "provision, Ignition config"
    print(f"{name:6} ignition {m['ignition']:7.1f} ms (CPU {c['ignition']:5.1f})  "
          f"provision {m[pi]:6.1f} ms (CPU {c[pi]:5.1f})  ignition/provision {m['ignition']/m[pi]:5.1f}x, "
          f"per round {paired('ignition', pi):4.1f}x  "
          f"(both apply test/bench/ignition/config.ign; {ign_version}: fetch-offline + files stages; "
          f"provision on the cloud-config: ignition/provision {m['ignition']/m['provision']:5.1f}x)")
PY
  [ -n "$CI_TAR" ] || continue
  # Twice: the tree as it is, with OpenSSH, where both tools make the three
  # host keys (the RSA one most of provision's time), and without it.
  cloudinit_cell "$name" "$dir" "with OpenSSH: both make host keys"
  cloudinit_cell "$name" "$dir" "without OpenSSH: no host keys"
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
