package provision

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/provision-dev/provision/sources"
	"github.com/provision-dev/provision/sources/dir"
)

// A run records its phases in order, each the time from the end of the one
// before: a clock that moves one second per reading makes every phase
// last as many seconds as the run read the clock during it.
func TestRunRecordsPhases(t *testing.T) {
	seed, _ := filepath.Abs("../test/bench/seed")
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	run := func(root string) *Result {
		ticks := 0
		clock := func() time.Time { ticks++; return base.Add(time.Duration(ticks) * time.Second) }
		return Run(context.Background(), Options{
			Root: root, Sources: []sources.Source{dir.New(seed)}, Console: &bytes.Buffer{}, Now: clock,
			Begin: beginSnapshot(io.Discard, new(currentTxn)),
		})
	}
	names := func(ps []Phase) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.Name)
		}
		return out
	}
	root := newTarget(t)
	res := run(root)
	if res.Err != nil || res.Status != StatusDone {
		t.Fatalf("run: %s %v", res.Status, res.Err)
	}
	want := []string{"recover", "detect", "read", "parse", "begin", "mounts", "plan", "preserve", "steps", "labels", "report", "unmount", "sync", "commit"}
	if got := names(res.Phases); !slices.Equal(got, want) {
		t.Errorf("phases %v, want %v", got, want)
	}
	var sum time.Duration
	for _, p := range res.Phases {
		if p.Duration <= 0 {
			t.Errorf("phase %s lasted %v", p.Name, p.Duration)
		}
		sum += p.Duration
	}
	if sum > res.Duration {
		t.Errorf("phases add up to %v, more than the run's %v", sum, res.Duration)
	}
	// The second boot finds its instance recorded: it stops after parse.
	again := run(root)
	if got := names(again.Phases); again.Status != StatusNothing || !slices.Equal(got, want[:4]) {
		t.Errorf("second run: %s, phases %v, want %v", again.Status, got, want[:4])
	}
}

func TestFormatPhases(t *testing.T) {
	got := FormatPhases([]Phase{{"detect", 1234567 * time.Nanosecond}, {"begin", 128456789 * time.Nanosecond}, {"commit", 0}})
	if want := "detect 1.2ms, begin 128ms, commit 0s"; got != want {
		t.Errorf("FormatPhases = %q, want %q", got, want)
	}
}
