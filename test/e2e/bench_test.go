package e2e

import (
	"os"
	"regexp"
	"sort"
	"strconv"
	"testing"
	"time"
)

// switchRe finds provision init's last line before switch_root, which says
// how long after its start it got there.
var switchRe = regexp.MustCompile(`provision init: switching root to \S+, exec \S+ \(([0-9.]+[a-zµ]+) after start\)`)

// TimeToSwitchRoot reads the agent-start-to-switch_root time from a console.
func timeToSwitchRoot(console string) (time.Duration, bool) {
	m := switchRe.FindStringSubmatch(console)
	if m == nil {
		return 0, false
	}
	d, err := time.ParseDuration(m[1])
	return d, err == nil
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// TestBenchSwitchRoot is `make bench`'s VM figure: the time from the agent's
// start to switch_root for scenario (b) (NoCloud ISO, snapper layout) against
// the same machine with no source. Each boot uses a fresh disk. It runs with
// PROVISION_E2E_BENCH=1; PROVISION_E2E_BENCH_RUNS sets the boots per case
// (default 5).
func TestBenchSwitchRoot(t *testing.T) {
	if os.Getenv("PROVISION_E2E_BENCH") != "1" {
		t.Skip("VM benchmark is off: set PROVISION_E2E_BENCH=1 (and PROVISION_E2E=1); about 7 s a boot, 10 boots")
	}
	runs := 5
	if n, err := strconv.Atoi(os.Getenv("PROVISION_E2E_BENCH_RUNS")); err == nil && n > 0 {
		runs = n
	}
	// The two cases alternate, boot by boot, so a machine that slows down
	// or speeds up meanwhile weighs on both alike.
	boot := func(name string, mk func(t *testing.T) *machine, into *[]time.Duration) {
		t.Run(name, func(t *testing.T) {
			m := mk(t)
			res := m.boot()
			d, ok := timeToSwitchRoot(res.Console)
			if !ok {
				t.Fatal("no \"switching root\" line on the console")
			}
			*into = append(*into, d)
		})
	}
	var nocloud, nosource []time.Duration
	for i := 0; i < runs; i++ {
		boot("nocloud", func(t *testing.T) *machine { m, _ := nocloudMachine(t); return m }, &nocloud)
		boot("nosource", func(t *testing.T) *machine { return newMachine(t, Snapper, nil) }, &nosource)
	}
	withSource, without := median(nocloud), median(nosource)
	t.Logf("agent start -> switch_root, median of %d boots each, alternating: NoCloud ISO %s, no source %s, difference %s",
		runs, withSource, without, withSource-without)
}
