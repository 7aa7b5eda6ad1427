#!/usr/bin/env bash
# Whole-command timings: `provision run --root` on a tmpfs copy of a Debian
# tree (this machine's /etc account files, skel and zoneinfo) for a config with
# 3 users, 4 SSH keys, 10 files, hostname and timezone. Prints hyperfine's
# median and the peak RSS from GNU time. Targets: < 30 ms, < 30 MB, binary < 10 MB.
set -euo pipefail
BIN=$(realpath "${1:-bin/provision}")
SEED=$(realpath "$(dirname "$0")/seed")
WORK=$(mktemp -d /dev/shm/provision-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

base=$WORK/base
mkdir -p "$base/etc/default" "$base/usr/share" "$base/home" "$base/root" "$base/var/lib"
for f in passwd group shadow gshadow login.defs subuid subgid; do
  [ -e /etc/$f ] && cp -a /etc/$f "$base/etc/"
done
[ -e /etc/default/useradd ] && cp -a /etc/default/useradd "$base/etc/default/"
cp -a /etc/skel "$base/etc/"
cp -a /usr/share/zoneinfo "$base/usr/share/"
echo 0123456789abcdef0123456789abcdef > "$base/etc/machine-id"

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

if [ -x /usr/bin/time ]; then
  rm -rf "$WORK/t" && cp -a "$base" "$WORK/t"
  /usr/bin/time -f "peak RSS: %M KiB" "$BIN" run --root "$WORK/t" --source "$SEED" --report "$WORK/report.json" 2>&1 >/dev/null | grep 'peak RSS'
else
  echo "GNU time not installed: skipping peak RSS"
fi
