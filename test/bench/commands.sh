#!/usr/bin/env bash
# Whole-command timings: `provision run --root` on a tmpfs copy of a Debian
# tree (this machine's /etc account files, skel and zoneinfo) for a config with
# 3 users, 4 SSH keys, 10 files, hostname and timezone. Prints hyperfine's
# median and the peak RSS from GNU time (targets: < 30 ms, < 30 MB, binary < 10 MB),
# and the start-up against a Go hello-world.
set -euo pipefail
. "$(dirname "$0")/tree.sh"
BIN=$(realpath "${1:-bin/provision}")
SEED=$(realpath "$(dirname "$0")/seed")
WORK=$(mktemp -d /dev/shm/provision-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

base=$WORK/base
bench_tree "$base"

size=$(stat -c %s "$BIN")
echo "binary: $BIN $size bytes ($((size / 1024 / 1024)) MiB)"

if command -v hyperfine >/dev/null; then
  hyperfine --warmup 3 --runs 30 -N \
    --prepare "sh -c 'rm -rf $WORK/t && cp -a $base $WORK/t'" \
    "$BIN run --root $WORK/t --source $SEED --report $WORK/report.json" \
    --export-json "$WORK/h.json" >/dev/null
  python3 - "$WORK/h.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
print(f"provision run --root (tmpfs Debian tree): median {r['median']*1000:.1f} ms, "
      f"min {r['min']*1000:.1f} ms, max {r['max']*1000:.1f} ms over {len(r['times'])} runs")
PY
else
  echo "hyperfine not installed: skipping timing"
fi

# Start-up: `provision --version` against a Go hello-world built with the
# same link flags (test/bench/hello), interleaved run by run
# (test/bench/startup; target: <= 2x). Both run from fresh copies on the
# same tmpfs: how an executable's pages came into the page cache (written
# by the build or a copy, or read back from a disk) moves its start-up by
# as much as 15 % on a virtual machine, more than what is measured here.
(cd "$(dirname "$0")/../.." &&
  CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$WORK/hello" ./test/bench/hello &&
  CGO_ENABLED=0 go build -o "$WORK/startup" ./test/bench/startup)
cp "$BIN" "$WORK/provision"
echo "start-up, against a Go hello-world:"
"$WORK/startup" -runs 300 "$WORK/hello" "$WORK/provision --version" | sed "s|$WORK/||g; s|^|  |"

# The labelling cost: the same run on the same tree with Debian's reference
# policy installed as the target's enforcing "targeted" policy, side by side
# with the run on the tree without SELinux (one hyperfine run, a ratio).
if command -v hyperfine >/dev/null && [ -d /etc/selinux/default/contexts/files ]; then
  se=$WORK/base-selinux
  cp -a "$base" "$se"
  mkdir -p "$se/etc/selinux"
  cp -a /etc/selinux/default "$se/etc/selinux/targeted"
  printf 'SELINUX=enforcing\nSELINUXTYPE=targeted\n' > "$se/etc/selinux/config"
  hyperfine --warmup 3 --runs 30 -N \
    --prepare "sh -c 'rm -rf $WORK/t && cp -a $base $WORK/t && rm -rf $WORK/s && cp -a $se $WORK/s'" \
    -n "no SELinux" "$BIN run --root $WORK/t --source $SEED --report $WORK/report.json" \
    -n "SELinux labels" "$BIN run --root $WORK/s --source $SEED --report $WORK/report.json" \
    --export-json "$WORK/se.json" >/dev/null
  python3 - "$WORK/se.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
a, b = r[0]["median"], r[1]["median"]
print(f"labelling: median {b*1000:.1f} ms with the policy vs {a*1000:.1f} ms without: {b/a:.2f}x")
PY
else
  echo "hyperfine or Debian's selinux-policy-default missing: skipping the labelling cost"
fi

if [ -x /usr/bin/time ]; then
  rm -rf "$WORK/t" && cp -a "$base" "$WORK/t"
  /usr/bin/time -f "peak RSS: %M KiB" "$BIN" run --root "$WORK/t" --source "$SEED" --report "$WORK/report.json" 2>&1 >/dev/null | grep 'peak RSS'
else
  echo "GNU time not installed: skipping peak RSS"
fi
