#!/usr/bin/env bash
# Runs every fuzz target of the module for FUZZTIME each. A target that finds
# a failing input fails the run (the input is kept under testdata/fuzz/). Go's
# fuzzing engine sometimes ends a run with a bare "context deadline exceeded"
# when the time is up while a worker is still busy; that, and only that, is
# retried once.
set -euo pipefail
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-10s}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
targets=0
for pkg in $($GO list ./...); do
  for f in $($GO test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    targets=$((targets + 1))
    echo "== $pkg $f"
    for try in 1 2; do
      if $GO test -run '^$' -fuzz "^$f\$" -fuzztime "$FUZZTIME" -fuzzminimizetime 5s "$pkg" >"$log" 2>&1; then
        tail -n 1 "$log"
        break
      fi
      if [ "$try" = 1 ] && grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written' "$log"; then
        echo "(the fuzzing engine hit its own deadline; running the target once more)"
        continue
      fi
      cat "$log"
      exit 1
    done
  done
done
echo "$targets fuzz targets passed"
