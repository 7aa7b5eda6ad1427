package provision

import (
	"fmt"
	"strings"
	"time"
)

// Phase is a stretch of a run and how long it took: where a first boot's
// time goes, which `provision init` prints before it switches root (a
// slow boot is told apart from a slow config at a glance, and a benchmark
// reads it).
type Phase struct {
	Name     string
	Duration time.Duration
}

// phase ends the phase name: it lasted from the end of the one before
// (from the start of the run for the first) until now.
func (r *Result) phase(name string) {
	if r.clock == nil {
		return // a Result Run did not make
	}
	t := r.clock()
	since := r.Started
	if !r.phaseEnd.IsZero() {
		since = r.phaseEnd
	}
	r.Phases = append(r.Phases, Phase{Name: name, Duration: t.Sub(since)})
	r.phaseEnd = t
}

// FormatPhases is the phases on one line: "detect 12ms, read 3ms, ...",
// in milliseconds to a tenth below ten, whole above.
func FormatPhases(phases []Phase) string {
	parts := make([]string, 0, len(phases))
	for _, p := range phases {
		round := time.Millisecond
		if p.Duration < 10*time.Millisecond {
			round = 100 * time.Microsecond
		}
		parts = append(parts, fmt.Sprintf("%s %v", p.Name, p.Duration.Round(round)))
	}
	return strings.Join(parts, ", ")
}
