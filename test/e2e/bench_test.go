package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
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

// tookRe finds the line provision init prints after the run: its
// duration, then its phases ("detect 12ms, read 3.1ms, ...").
var tookRe = regexp.MustCompile(`provision: took (\S+): (.*?)\r?\n`)

// benchPhase is one phase of a run as the console gave it.
type benchPhase struct {
	name string
	d    time.Duration
}

// runPhases reads the run's duration and phases from a console.
func runPhases(console string) (time.Duration, []benchPhase, bool) {
	m := tookRe.FindStringSubmatch(console)
	if m == nil {
		return 0, nil, false
	}
	took, err := time.ParseDuration(m[1])
	if err != nil {
		return 0, nil, false
	}
	var phases []benchPhase
	for _, part := range strings.Split(m[2], ", ") {
		name, d, ok := strings.Cut(part, " ")
		dur, err := time.ParseDuration(d)
		if !ok || err != nil {
			return 0, nil, false
		}
		phases = append(phases, benchPhase{name, dur})
	}
	return took, phases, true
}

// phaseMedians is each phase's median over runs, in the order of the
// first run, and the median of what the agent did outside the run (the
// root's mount before it, the switch's preparation after it).
func phaseMedians(runs [][]benchPhase, outside []time.Duration) string {
	if len(runs) == 0 {
		return ""
	}
	var parts []string
	for _, p := range runs[0] {
		var ds []time.Duration
		for _, r := range runs {
			for _, q := range r {
				if q.name == p.name {
					ds = append(ds, q.d)
				}
			}
		}
		parts = append(parts, fmt.Sprintf("%s %v", p.name, median(ds).Round(100*time.Microsecond)))
	}
	return fmt.Sprintf("%s; outside the run %v", strings.Join(parts, ", "), median(outside).Round(100*time.Microsecond))
}

// median is the middle of xs (of the two middle ones, their mean), 0 for
// none; xs is left as it is.
func median[T time.Duration | float64](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// benchBuild is one build of provision in TestBenchSwitchRoot: its
// initramfs, and its boots' times with a NoCloud seed and with none.
type benchBuild struct {
	name, initrd      string
	nocloud, nosource []time.Duration
	// phases are the NoCloud boots' runs, phase by phase, and outside
	// what the agent spent around each of those runs.
	phases  [][]benchPhase
	outside []time.Duration
}

// booted reports whether round i's two boots of b both gave a time.
func (b *benchBuild) booted(i int) bool { return len(b.nocloud) > i && len(b.nosource) > i }

// difference is what the seed cost in round i.
func (b *benchBuild) difference(i int) time.Duration { return b.nocloud[i] - b.nosource[i] }

// TestBenchSwitchRoot is `make bench`'s VM figure: the time from the agent's
// start to switch_root for scenario (b) (NoCloud ISO, snapper layout) against
// the same machine with no source. Each boot uses a fresh disk. It runs with
// PROVISION_E2E_BENCH=1; PROVISION_E2E_BENCH_RUNS sets the boots per case
// (default 5).
//
// PROVISION_E2E_BENCH_BASELINE names another build of provision (an older
// commit's) to compare with: each round then boots both, in turn, in both
// cases, and the test prints both differences and the median of the
// rounds' own ratios. An emulated machine's speed follows the host's load
// by more than a change moves it, so two binaries measured one after the
// other say little; measured in turn, a slow stretch weighs on both alike.
func TestBenchSwitchRoot(t *testing.T) {
	if os.Getenv("PROVISION_E2E_BENCH") != "1" {
		t.Skip("VM benchmark is off: set PROVISION_E2E_BENCH=1 (and PROVISION_E2E=1); about 7 s a boot, 10 boots")
	}
	runs := 5
	if n, err := strconv.Atoi(os.Getenv("PROVISION_E2E_BENCH_RUNS")); err == nil && n > 0 {
		runs = n
	}
	w := setup(t)
	builds := []*benchBuild{{name: "this build", initrd: w.initrd}}
	if base := os.Getenv("PROVISION_E2E_BENCH_BASELINE"); base != "" {
		initrd := filepath.Join(t.TempDir(), "baseline-initrd.cpio")
		if err := BuildInitramfs(initrd, w.kernel, w.busybox, base, InitrdModules); err != nil {
			t.Fatal(err)
		}
		builds = append(builds, &benchBuild{name: "baseline " + base, initrd: initrd})
	}
	// The cases (and the builds) alternate, boot by boot, so a machine
	// that slows down or speeds up meanwhile weighs on all alike.
	boot := func(name string, b *benchBuild, mk func(t *testing.T) *machine, into *[]time.Duration) {
		t.Run(name, func(t *testing.T) {
			m := mk(t)
			m.vm.Initrd = b.initrd
			res := m.boot()
			d, ok := timeToSwitchRoot(res.Console)
			if !ok {
				t.Fatal("no \"switching root\" line on the console")
			}
			*into = append(*into, d)
			// A baseline from before the phases were printed has none.
			if took, phases, ok := runPhases(res.Console); ok && name == "nocloud" {
				b.phases = append(b.phases, phases)
				b.outside = append(b.outside, d-took)
			}
		})
	}
	var ratios []float64
	for i := 0; i < runs; i++ {
		order := slices.Clone(builds)
		if i%2 == 1 {
			slices.Reverse(order)
		}
		for _, b := range order {
			boot("nocloud", b, func(t *testing.T) *machine { m, _ := nocloudMachine(t); return m }, &b.nocloud)
			boot("nosource", b, func(t *testing.T) *machine { return newMachine(t, Snapper, nil) }, &b.nosource)
		}
		if len(builds) > 1 && builds[0].booted(i) && builds[1].booted(i) {
			if base := builds[1].difference(i); base > 0 {
				ratios = append(ratios, float64(builds[0].difference(i))/float64(base))
			}
		}
	}
	for _, b := range builds {
		withSource, without := median(b.nocloud), median(b.nosource)
		t.Logf("%s: agent start -> switch_root, median of %d boots each, alternating: NoCloud ISO %s, no source %s, difference %s",
			b.name, runs, withSource, without, withSource-without)
		if len(b.phases) > 0 {
			t.Logf("%s: the NoCloud boots' run, median of each phase: %s", b.name, phaseMedians(b.phases, b.outside))
		}
	}
	if len(ratios) > 0 {
		t.Logf("this build's difference against the baseline's, median of the rounds' own ratios: %.2f (%d rounds)", median(ratios), len(ratios))
	}
}
