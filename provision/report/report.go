// Package report records what a provisioning run found and did — sources,
// documents (name, kind, size, digest; never content), every step with its
// timing and result, the error with its origin — and writes it as
// /run/provision/report.json plus a copy and a readable log in the target's
// /var/log/provision/. `provision status` and `provision report` read it
// back. Secrets never reach the file: every string is redacted on the way out.
package report

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"sync"
	"time"
)

// Version is the report format version.
const Version = 1

// Run status, as `cloud-init status` names it.
const (
	StatusRunning  = "running"
	StatusDone     = "done"
	StatusError    = "error"
	StatusDisabled = "disabled"
)

// Results of a run, a module or a step.
const (
	ResultDone       = "done"
	ResultNothing    = "nothing to do"
	ResultFailed     = "failed"
	ResultRolledBack = "rolled back"
	ResultSkipped    = "skipped" // planned, not applied (a step after a failure)
)

// Default paths.
const (
	RunPath    = "/run/provision/report.json"
	TargetDir  = "/var/log/provision"
	TargetJSON = TargetDir + "/report.json"
	TargetLog  = TargetDir + "/provision.log"
)

// Report is one run. The zero value is not ready; use New.
//
// It is also the shape of every JSON document provision prints (doc/json.md):
// Kind tells a run's result (report.json, run --json) from a plan, a status
// or one input of a validation; the members that do not apply are left out.
type Report struct {
	Version int    `json:"version"`
	Kind    string `json:"kind,omitempty"` // KindResult...; "" in reports older than the field
	// Path is the file the document is about: the report status read, the
	// input validate checked. Never written into report.json itself.
	Path       string `json:"path,omitempty"`
	Status     string `json:"status"`
	Result     string `json:"result,omitempty"`
	Reason     string `json:"reason,omitempty"` // why nothing was done, or disabled
	InstanceID string `json:"instance_id,omitempty"`
	// InstanceIDFrom is where a plan's instance-id came from: the origin
	// of a meta-data key, or a digest of the documents.
	InstanceIDFrom string `json:"instance_id_from,omitempty"`
	// Boot is a plan's verdict of the first-boot rules on --root.
	Boot      string     `json:"boot,omitempty"`
	Snapshot  string     `json:"snapshot,omitempty"`
	Started   time.Time  `json:"started,omitzero"`
	Finished  *time.Time `json:"finished,omitempty"`
	Duration  Duration   `json:"duration_seconds"`
	Sources   []Source   `json:"sources"`
	Documents []Document `json:"documents"`
	// Target is what a plan found of the target (/etc, boot, hooks).
	Target []string `json:"target,omitempty"`
	// Diff is a plan's --diff: a unified diff of every file the run would
	// change and the text of every script it would run, secrets masked.
	Diff     string    `json:"diff,omitempty"`
	Modules  []*Module `json:"modules"`
	Warnings []string  `json:"warnings,omitempty"`
	// Error is the run's error, all of it; Errors the same, one entry per
	// line, so that every error found in one pass can be listed.
	Error  *Error   `json:"error,omitempty"`
	Errors []*Error `json:"errors,omitempty"`

	mu      sync.Mutex
	now     func() time.Time
	secrets []string
}

// Source is one configuration source that was looked at.
type Source struct {
	Name      string `json:"name"`
	Presence  string `json:"presence"` // "present", "absent", "needs network", ...
	Location  string `json:"location,omitempty"`
	Documents int    `json:"documents"`
	Error     string `json:"error,omitempty"`
	Reason    string `json:"reason,omitempty"` // why nothing was found
}

// Document describes one document without its content.
type Document struct {
	Origin string `json:"origin"` // "nocloud:/dev/vdb:user-data"
	Kind   string `json:"kind"`
	Size   int    `json:"size"`
	SHA256 string `json:"sha256,omitempty"` // not in a plan
}

// Module groups the steps of one applier.
type Module struct {
	Name     string    `json:"name"`
	Started  time.Time `json:"started,omitzero"` // zero in a plan
	Duration Duration  `json:"duration_seconds"`
	Result   string    `json:"result"`
	Steps    []*Step   `json:"steps"`
}

// Step is one applied step.
type Step struct {
	Action   string    `json:"action"`
	Target   string    `json:"target"`
	Detail   string    `json:"detail,omitempty"`
	Origin   string    `json:"origin,omitempty"`
	Started  time.Time `json:"started,omitzero"` // zero in a plan
	Duration Duration  `json:"duration_seconds"`
	Result   string    `json:"result"`
	Error    *Error    `json:"error,omitempty"`
	// Output is what the step's programs (scripts, package managers)
	// printed, its first and last lines (see Tail): what is needed to see
	// why a step failed once the console has scrolled away.
	Output []string `json:"output,omitempty"`
}

// Error is a failure and where it came from.
type Error struct {
	Origin  string `json:"origin,omitempty"` // "source:file:line:col" of the item at fault
	Module  string `json:"module,omitempty"`
	Message string `json:"message"`
}

func (e *Error) String() string {
	if e == nil {
		return ""
	}
	return e.Message
}

// Duration is a time.Duration written as seconds (cloud-init's unit).
type Duration time.Duration

// MarshalJSON writes seconds with microsecond precision.
func (d Duration) MarshalJSON() ([]byte, error) {
	s := time.Duration(d).Seconds()
	return []byte(fmt.Sprintf("%.6f", math.Round(s*1e6)/1e6)), nil
}

// UnmarshalJSON reads seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s float64
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	if math.IsNaN(s) || math.IsInf(s, 0) || math.Abs(s) > float64(math.MaxInt64)/1e9 {
		return fmt.Errorf("duration %v out of range", s)
	}
	*d = Duration(time.Duration(s * 1e9))
	return nil
}

// New starts a report; now is the clock (nil: time.Now).
func New(now func() time.Time) *Report {
	if now == nil {
		now = time.Now
	}
	return &Report{
		Version:   Version,
		Kind:      KindResult,
		Status:    StatusRunning,
		Started:   now().UTC(),
		Sources:   []Source{},
		Documents: []Document{},
		Modules:   []*Module{},
		now:       now,
	}
}

// AddSecret registers values (plain passwords, tokens) that must never
// appear in the written report, whatever message they end up in.
func (r *Report) AddSecret(values ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.secrets = append(r.secrets, values...)
}

// AddSource records a source.
func (r *Report) AddSource(s Source) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Sources = append(r.Sources, s)
}

// AddDocument records a document's origin, kind, size and SHA-256.
func (r *Report) AddDocument(origin, kind string, data []byte) {
	sum := sha256.Sum256(data)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Documents = append(r.Documents, Document{Origin: origin, Kind: kind, Size: len(data), SHA256: hex.EncodeToString(sum[:])})
}

// AddWarning records a non-fatal finding.
func (r *Report) AddWarning(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Warnings = append(r.Warnings, msg)
}

// BeginStep records the start of a step of module.
func (r *Report) BeginStep(module, action, target, detail, origin string) *Step {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now().UTC()
	var m *Module
	if n := len(r.Modules); n > 0 && r.Modules[n-1].Name == module {
		m = r.Modules[n-1]
	} else {
		m = &Module{Name: module, Started: now, Result: StatusRunning, Steps: []*Step{}}
		r.Modules = append(r.Modules, m)
	}
	s := &Step{Action: action, Target: target, Detail: detail, Origin: origin, Started: now, Result: StatusRunning}
	m.Steps = append(m.Steps, s)
	return s
}

// SetOutput keeps the tail of what s printed (see Tail).
func (r *Report) SetOutput(s *Step, lines []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s.Output = lines
}

// EndStep records the end of s: failed when err is set, else done or
// (nothingToDo) "nothing to do". The module's result and duration follow.
func (r *Report) EndStep(s *Step, err error, nothingToDo bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now().UTC()
	s.Duration = Duration(now.Sub(s.Started))
	switch {
	case err != nil:
		s.Result = ResultFailed
		s.Error = &Error{Origin: s.Origin, Message: err.Error()}
	case nothingToDo:
		s.Result = ResultNothing
	default:
		s.Result = ResultDone
	}
	for _, m := range r.Modules {
		for _, ms := range m.Steps {
			if ms == s {
				m.Duration = Duration(now.Sub(m.Started))
				m.Result = moduleResult(m)
				s.Error.setModule(m.Name)
			}
		}
	}
}

func (e *Error) setModule(name string) {
	if e != nil && e.Module == "" {
		e.Module = name
	}
}

func moduleResult(m *Module) string {
	res := ResultNothing
	for _, s := range m.Steps {
		switch s.Result {
		case ResultFailed:
			return ResultFailed
		case StatusRunning:
			return StatusRunning
		case ResultDone, ResultRolledBack:
			res = s.Result
		}
	}
	return res
}

// Finish closes the report. result is one of the Result constants; err is
// the run's error (origin: where in the configuration, "" if none).
// A rolled-back run marks every step that had been done "rolled back".
func (r *Report) Finish(result string, err error, origin string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now().UTC()
	r.Finished = &now
	r.Duration = Duration(now.Sub(r.Started))
	r.Result = result
	r.Status = StatusDone
	if err != nil || result == ResultFailed || result == ResultRolledBack {
		r.Status = StatusError
	}
	if err != nil {
		r.Error = &Error{Origin: origin, Message: err.Error()}
		for _, m := range r.Modules {
			if m.Result == ResultFailed {
				r.Error.Module = m.Name
			}
		}
		r.Errors = SplitErrors(r.Error)
	}
	if result == ResultRolledBack {
		for _, m := range r.Modules {
			for _, s := range m.Steps {
				if s.Result == ResultDone {
					s.Result = ResultRolledBack
				}
			}
			if m.Result == ResultDone {
				m.Result = ResultRolledBack
			}
		}
	}
}

// Disabled closes the report of a run that was switched off.
func (r *Report) Disabled(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now().UTC()
	r.Finished = &now
	r.Duration = Duration(now.Sub(r.Started))
	r.Status, r.Reason = StatusDisabled, reason
}

// Running reports whether the run has not finished.
func (r *Report) Running() bool { return r.Status == StatusRunning }
