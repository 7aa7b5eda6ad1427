package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/provision-dev/provision/provision"
	"github.com/provision-dev/provision/provision/config"
	"github.com/provision-dev/provision/provision/report"
)

// statusPaths are where `provision status` looks without --report: this
// boot's report, then the copy the run left in the target. Tests point
// them into a temporary tree.
var statusPaths = struct{ run, target string }{provision.DefaultReportPath, report.TargetJSON}

// flagSet reports whether the flag name was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// runDocument is what `run --json` prints (doc/json.md): the plan of a dry
// run, else the run's report, the same document as report.json.
func runDocument(res *provision.Result, dry bool) *report.Report {
	if dry {
		return planDocument(res, "")
	}
	return res.Report.AsKind(report.KindResult, "")
}

// planDocument is the report of a dry run turned into a plan: the planned
// steps grouped by module, what was found of the target, every warning and
// every error. path names the input when validate made it.
func planDocument(res *provision.Result, path string) *report.Report {
	doc := res.Report.AsKind(report.KindPlan, path)
	doc.Result = res.Status
	if res.Status == provision.StatusPlanned {
		doc.Result = report.ResultPlanned
	}
	doc.Target = res.Target
	doc.InstanceIDFrom, doc.Boot, doc.Diff = res.InstanceIDFrom, res.Boot, res.Diff
	doc.Modules = plannedModules(res.Steps)
	doc.Warnings = res.Warnings
	doc.Errors = errorList(res.Err)
	for i := range doc.Sources {
		if i < len(res.Sources) {
			doc.Sources[i].Reason = res.Sources[i].Reason
		}
	}
	// The plan's own strings went in after the copy was redacted.
	return doc.Redacted()
}

// plannedModules groups the planned steps by module, in plan order, in
// the report's module/step shape.
func plannedModules(steps []provision.StepResult) []*report.Module {
	mods := []*report.Module{}
	for _, s := range steps {
		if n := len(mods); n == 0 || mods[n-1].Name != s.Module {
			mods = append(mods, &report.Module{Name: s.Module, Result: report.ResultPlanned, Steps: []*report.Step{}})
		}
		m := mods[len(mods)-1]
		st := &report.Step{Action: s.Action, Target: s.Target, Detail: s.Detail, Origin: s.Origin, Result: s.Status}
		if s.Error != "" {
			st.Error = &report.Error{Origin: s.Origin, Module: s.Module, Message: s.Error}
		}
		m.Steps = append(m.Steps, st)
	}
	return mods
}

// errorList is err one entry per line, the way validate prints it; a
// configuration error keeps its origin as a field of its own.
func errorList(err error) []*report.Error {
	if err == nil {
		return nil
	}
	origins := map[string]string{}
	collectOrigins(err, origins)
	var out []*report.Error
	for _, line := range strings.Split(err.Error(), "\n") {
		line = strings.TrimPrefix(line, provision.ErrInvalid.Error()+": ")
		if strings.TrimSpace(line) == "" {
			continue
		}
		origin := origins[line]
		if origin == "" {
			origin = provision.LineOrigin(line)
		}
		out = append(out, &report.Error{Origin: origin, Message: line})
	}
	return out
}

// collectOrigins maps the text of every *config.Error in err's tree to its
// origin.
func collectOrigins(err error, into map[string]string) {
	var ce *config.Error
	if errors.As(err, &ce) && ce != nil {
		into[ce.Error()] = ce.Origin.String()
	}
	switch u := err.(type) {
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			collectOrigins(e, into)
		}
	case interface{ Unwrap() error }:
		if e := u.Unwrap(); e != nil {
			collectOrigins(e, into)
		}
	}
}

// validationJSON collects `validate --json`'s inputs into one document.
type validationJSON struct {
	doc    *report.Validation
	stderr io.Writer
	last   bytes.Buffer // what checkSource printed about the current input
}

func newValidationJSON(stderr io.Writer) *validationJSON {
	return &validationJSON{doc: report.NewValidation(), stderr: stderr}
}

// messages is the stderr for checking the next input: printed as always,
// and kept for an input that cannot be read, whose only record it is.
func (v *validationJSON) messages() io.Writer {
	v.last.Reset()
	return io.MultiWriter(v.stderr, &v.last)
}

// add records one input: its plan, with the verdict of the exit status
// validate gives it.
func (v *validationJSON) add(path string, res *provision.Result, code int) {
	if res == nil {
		doc := report.NotRun("")
		doc.Kind, doc.Path, doc.Status, doc.Result = report.KindPlan, path, report.StatusError, report.ResultFailed
		doc.Errors = errorList(errors.New(strings.TrimSpace(v.last.String())))
		v.doc.Add(doc)
		return
	}
	doc := planDocument(res, path)
	switch code {
	case exitOK:
		doc.Result = report.ResultValid
	case exitInvalid:
		doc.Result = report.ResultInvalid
	default:
		doc.Result = report.ResultFailed
	}
	v.doc.Add(doc)
}

// writeJSON prints a document made by one of the functions above.
func writeJSON(w io.Writer, doc interface{ JSON() ([]byte, error) }, stderr io.Writer) {
	data, err := doc.JSON()
	if err != nil {
		fmt.Fprintf(stderr, "provision: encoding JSON: %v\n", err)
		return
	}
	w.Write(data)
}
