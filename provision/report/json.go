package report

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Kinds of JSON document (doc/json.md). Every document provision prints or
// writes carries Version and one of these, so a consumer can tell what it
// holds before it reads the rest.
const (
	KindPlan       = "plan"       // run --dry-run --json
	KindResult     = "result"     // run --json, report.json
	KindStatus     = "status"     // status --json
	KindValidation = "validation" // validate --json
)

// More results: what a plan or a validation concluded.
const (
	ResultPlanned = "planned"
	ResultValid   = "valid"
	ResultInvalid = "invalid"
)

// StatusNotRun is the status when no report exists at all: provision has
// not run on this system (cloud-init's "not run").
const StatusNotRun = "not run"

// Validation is `validate --json`: one plan per input, each with its path,
// result and every error found.
type Validation struct {
	Version int    `json:"version"`
	Kind    string `json:"kind"`
	// Result is ResultValid when every input is, else ResultInvalid or, when
	// an input could not be read or planned, ResultFailed.
	Result string    `json:"result"`
	Inputs []*Report `json:"inputs"`
}

// NewValidation returns an empty validation document.
func NewValidation() *Validation {
	return &Validation{Version: Version, Kind: KindValidation, Result: ResultValid, Inputs: []*Report{}}
}

// Add appends one input; the overall result is the worst of the inputs'.
func (v *Validation) Add(in *Report) {
	v.Inputs = append(v.Inputs, in)
	switch {
	case in.Result == ResultFailed:
		v.Result = ResultFailed
	case in.Result != ResultValid && v.Result == ResultValid:
		v.Result = ResultInvalid
	}
}

// JSON returns v as indented JSON; its inputs are redacted copies already.
func (v *Validation) JSON() ([]byte, error) {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// NotRun is the status document when there is no report: detail says where
// provision looked.
func NotRun(detail string) *Report {
	return &Report{
		Version:   Version,
		Kind:      KindStatus,
		Status:    StatusNotRun,
		Reason:    detail,
		Sources:   []Source{},
		Documents: []Document{},
		Modules:   []*Module{},
	}
}

// Redacted returns a redacted deep copy of r, detached from the live run:
// what a JSON document is made from, whatever is changed in it afterwards.
func (r *Report) Redacted() *Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.redacted()
}

// AsKind returns a redacted copy of r that says it is a document of kind,
// about path ("" for none).
func (r *Report) AsKind(kind, path string) *Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.redacted()
	c.Kind, c.Path = kind, newRedactor(r.secrets).str(path) // a URL may hold a password
	return c
}

// SplitErrors lists e one line per entry: an error that joins several (a
// configuration with many mistakes) becomes one Error each, the first
// keeping e's origin and module. Lines of the form "ORIGIN: message" are
// not split further: the origin grammar (source:file:line:col) is not
// unambiguous enough to cut on a colon.
func SplitErrors(e *Error) []*Error {
	if e == nil {
		return nil
	}
	var out []*Error
	for _, line := range strings.Split(e.Message, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		out = append(out, &Error{Module: e.Module, Message: line})
	}
	if len(out) > 0 {
		out[0].Origin = e.Origin
	}
	return out
}

// checkKind accepts the kinds a report file may hold: a result, or one
// written before kinds existed. A status or plan is printed, never read back.
func checkKind(name, kind string) error {
	switch kind {
	case "", KindResult, KindStatus:
		return nil
	}
	return fmt.Errorf("%s: a %q document, not a run report", name, kind)
}
