package provision

import (
	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/modules/scripts"
)

// PlanNotes are what a plan says of itself beyond its steps: consequences
// of the plan as a whole that a user coming from another tool would not
// expect (a failing program undoes the whole run).
func PlanNotes(steps []modules.Step) []string {
	var notes []string
	if n := scripts.AtomicNote(steps); n != "" {
		notes = append(notes, n)
	}
	return notes
}
