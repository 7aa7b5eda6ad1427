package report

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/provision-dev/provision/modules"
)

// esc and escLines are the one escaping of what a config or a target
// controls (paths, names, origins, messages naming them): a newline in a
// path must not forge a line of the log or of status.
var (
	esc      = modules.Printable
	escLines = modules.PrintableLines
)

// Status is `provision status --json`: cloud-init status's keys that apply,
// plus the result and the per-module timings.
type Status struct {
	Status string `json:"status"`
	// ExtendedStatus is cloud-init's (23.4 and later): "degraded done" when
	// the run committed but a step marked non-fatal failed.
	ExtendedStatus string         `json:"extended_status,omitempty"`
	Result         string         `json:"result,omitempty"`
	Detail         string         `json:"detail,omitempty"`
	Path           string         `json:"path,omitempty"` // the report read
	InstanceID     string         `json:"instance_id,omitempty"`
	Started        string         `json:"started,omitempty"`
	Finished       string         `json:"finished,omitempty"`
	LastUpdate     string         `json:"last_update,omitempty"`
	Errors         []string       `json:"errors"`
	Warnings       []string       `json:"warnings"`
	Modules        []ModuleStatus `json:"modules"`
}

// ModuleStatus is one module's line in Status.
type ModuleStatus struct {
	Name     string   `json:"name"`
	Result   string   `json:"result"`
	Duration Duration `json:"duration_seconds"`
	Steps    int      `json:"steps"`
}

// timeFormat is how status prints times: cloud-init's last_update format.
const timeFormat = time.RFC1123Z

// StatusOf summarises r. A nil r (no report yet) is "not started".
func StatusOf(r *Report) Status {
	if r == nil {
		return Status{Status: "not started", Errors: []string{}, Warnings: []string{}, Modules: []ModuleStatus{}}
	}
	r = r.safe()
	s := Status{
		Status:     r.Status,
		Result:     r.Result,
		Detail:     r.Reason,
		Path:       r.Path,
		InstanceID: r.InstanceID,
		Errors:     []string{},
		Warnings:   append([]string{}, r.Warnings...),
		Modules:    []ModuleStatus{},
	}
	if !r.Started.IsZero() {
		s.Started = r.Started.UTC().Format(timeFormat)
		s.LastUpdate = s.Started
	}
	if r.Finished != nil {
		s.Finished = r.Finished.UTC().Format(timeFormat)
		s.LastUpdate = s.Finished
	}
	if r.Error != nil {
		msg := r.Error.Message
		if r.Error.Module != "" && !strings.HasPrefix(msg, r.Error.Origin) {
			msg = r.Error.Module + ": " + msg
		}
		s.Errors = append(s.Errors, msg)
	}
	for _, m := range r.Modules {
		s.Modules = append(s.Modules, ModuleStatus{Name: m.Name, Result: m.Result, Duration: m.Duration, Steps: len(m.Steps)})
	}
	if degraded(r) {
		s.ExtendedStatus = "degraded " + r.Status
	}
	return s
}

// degraded: the run is done, yet one of its steps failed — a program the
// configuration marked non-fatal. cloud-init calls this a recoverable error.
func degraded(r *Report) bool {
	if r == nil || r.Status != StatusDone {
		return false
	}
	for _, m := range r.Modules {
		if m.Result == ResultFailed {
			return true
		}
	}
	return false
}

// ExitCode is `provision status`'s exit code, like cloud-init status: 0 when
// the run is done (or disabled, or still running), 1 when it failed, 2 when
// it is done with a recoverable error (a failed step marked non-fatal).
func ExitCode(r *Report) int {
	switch {
	case r != nil && r.Status == StatusError:
		return 1
	case degraded(r):
		return 2
	}
	return 0
}

// FormatStatus writes `status: done` like `cloud-init status`, followed,
// for a report read from elsewhere than this boot's RunPath, by when that
// run was and where its report is: after the first boot, the run that
// matters is in the target's /var/log. long adds the result, the times,
// errors, warnings, per-module timings and the output of failed steps.
func FormatStatus(w io.Writer, r *Report, long bool) {
	s := StatusOf(r)
	if long || r == nil {
		fmt.Fprintf(w, "status: %s\n", s.Status)
	} else {
		fmt.Fprintln(w, shortStatus(s))
	}
	if !long || r == nil {
		return
	}
	if s.ExtendedStatus != "" {
		fmt.Fprintf(w, "extended_status: %s\n", s.ExtendedStatus)
	}
	if s.Result != "" {
		fmt.Fprintf(w, "result: %s\n", s.Result)
	}
	if s.Path != "" {
		fmt.Fprintf(w, "report: %s\n", esc(s.Path))
	}
	if s.InstanceID != "" {
		fmt.Fprintf(w, "instance_id: %s\n", esc(s.InstanceID))
	}
	if s.Started != "" {
		fmt.Fprintf(w, "started: %s\n", s.Started)
	}
	if s.Finished != "" {
		fmt.Fprintf(w, "finished: %s (after %.3fs)\n", s.Finished, time.Duration(r.Duration).Seconds())
	}
	if s.LastUpdate != "" {
		fmt.Fprintf(w, "last_update: %s\n", s.LastUpdate)
	}
	if s.Detail != "" {
		fmt.Fprintf(w, "detail: %s\n", escLines(s.Detail))
	}
	writeList(w, "errors", s.Errors)
	writeList(w, "warnings", s.Warnings)
	if len(s.Modules) > 0 {
		fmt.Fprintln(w, "modules:")
		for _, m := range s.Modules {
			unit := "steps"
			if m.Steps == 1 {
				unit = "step"
			}
			fmt.Fprintf(w, "  %-16s %-13s %9.3fs (%d %s)\n", esc(m.Name), m.Result, time.Duration(m.Duration).Seconds(), m.Steps, unit)
		}
	}
	writeFailedOutput(w, r)
}

// shortStatus is the one line of `provision status`: cloud-init's
// "status: done", and when the report is not this boot's, when the run
// finished and which file says so.
func shortStatus(s Status) string {
	line := "status: " + s.Status
	s.Path = esc(s.Path)
	if s.Path == "" || s.Path == RunPath {
		return line
	}
	when := s.Finished
	if when == "" {
		when = s.Started
	}
	if when == "" {
		return line + " (report " + s.Path + ")"
	}
	return line + " (run of " + when + ", report " + s.Path + ")"
}

// writeFailedOutput prints the kept output of every failed step: the lines
// a failing script or package manager printed before it gave up.
func writeFailedOutput(w io.Writer, r *Report) {
	for _, m := range r.safe().Modules {
		for _, st := range m.Steps {
			if st.Result != ResultFailed || len(st.Output) == 0 {
				continue
			}
			// Output holds the first and last lines (see Tail), and says
			// how many were left out between them.
			fmt.Fprintf(w, "output of %s %s:\n", esc(m.Name), esc(st.Target))
			for _, l := range st.Output {
				fmt.Fprintf(w, "  | %s\n", esc(l))
			}
		}
	}
}

func writeList(w io.Writer, name string, items []string) {
	if len(items) == 0 {
		fmt.Fprintf(w, "%s: []\n", name)
		return
	}
	fmt.Fprintf(w, "%s:\n", name)
	for _, it := range items {
		fmt.Fprintf(w, "  - %s\n", escLines(it))
	}
}

// FormatBlame lists every step, slowest first, like `cloud-init analyze
// blame`: "     00.80300s (scripts/run combustion script)".
func FormatBlame(w io.Writer, r *Report) {
	type entry struct {
		d    time.Duration
		name string
	}
	var es []entry
	r = r.safe()
	for _, m := range r.Modules {
		for _, s := range m.Steps {
			es = append(es, entry{time.Duration(s.Duration), esc(m.Name + "/" + strings.TrimSpace(s.Action+" "+s.Target))})
		}
	}
	sort.SliceStable(es, func(i, j int) bool { return es[i].d > es[j].d })
	fmt.Fprintln(w, "-- Boot Record 01 --")
	for _, e := range es {
		fmt.Fprintf(w, "     %08.5fs (%s)\n", e.d.Seconds(), e.name)
	}
	fmt.Fprintf(w, "\n%d steps, %.5fs in total\n", len(es), time.Duration(r.Duration).Seconds())
}

// marks are the console tags of SPEC §2 ("[ OK ] users: ...").
var marks = map[string]string{
	ResultDone:       "[ OK ]",
	ResultNothing:    "[ -- ]",
	ResultFailed:     "[FAILED]",
	ResultRolledBack: "[UNDONE]",
	ResultSkipped:    "[SKIP]",
	StatusRunning:    "[ .. ]",
}

// FormatLog writes the human-readable log kept in /var/log/provision.
func FormatLog(w io.Writer, r *Report) {
	r = r.safe()
	fmt.Fprintf(w, "provision run started %s\n", r.Started.UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "status: %s", r.Status)
	if r.Result != "" {
		fmt.Fprintf(w, " (%s)", r.Result)
	}
	fmt.Fprintln(w)
	if r.Reason != "" {
		fmt.Fprintf(w, "reason: %s\n", escLines(r.Reason))
	}
	if r.InstanceID != "" {
		fmt.Fprintf(w, "instance-id: %s\n", esc(r.InstanceID))
	}
	if r.Snapshot != "" {
		fmt.Fprintf(w, "snapshot: %s\n", esc(r.Snapshot))
	}
	if len(r.Sources) > 0 {
		fmt.Fprintln(w, "sources:")
		for _, s := range r.Sources {
			fmt.Fprintf(w, "  %s: %s", esc(s.Name), s.Presence)
			if s.Location != "" {
				fmt.Fprintf(w, " at %s", esc(s.Location))
			}
			if s.Documents > 0 {
				fmt.Fprintf(w, ", %d documents", s.Documents)
			}
			if s.Error != "" {
				fmt.Fprintf(w, ", error: %s", escLines(s.Error))
			}
			fmt.Fprintln(w)
		}
	}
	if len(r.Documents) > 0 {
		fmt.Fprintln(w, "documents:")
		for _, d := range r.Documents {
			fmt.Fprintf(w, "  %s (%s, %d bytes, sha256 %s)\n", esc(d.Origin), d.Kind, d.Size, d.SHA256)
		}
	}
	for _, wn := range r.Warnings {
		fmt.Fprintf(w, "warning: %s\n", escLines(wn))
	}
	for _, m := range r.Modules {
		for _, s := range m.Steps {
			mark := marks[s.Result]
			if mark == "" {
				mark = "[" + s.Result + "]"
			}
			line := fmt.Sprintf("%s %s: %s %s", mark, esc(m.Name), esc(s.Action), esc(s.Target))
			if s.Detail != "" {
				line += " (" + esc(s.Detail) + ")"
			}
			line += fmt.Sprintf(" %.3fs", time.Duration(s.Duration).Seconds())
			if s.Origin != "" {
				line += " [" + esc(s.Origin) + "]"
			}
			fmt.Fprintln(w, line)
			if s.Error != nil {
				fmt.Fprintf(w, "       error: %s\n", escLines(s.Error.Message))
			}
		}
	}
	if r.Error != nil {
		fmt.Fprintf(w, "error: %s\n", escLines(r.Error.Message))
	}
	if r.Finished != nil {
		fmt.Fprintf(w, "finished %s after %.3fs\n", r.Finished.UTC().Format(time.RFC3339), time.Duration(r.Duration).Seconds())
	}
}

// safe is a redacted copy of r: every formatter prints through it, so a
// live report with registered secrets cannot leak them.
func (r *Report) safe() *Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.redacted()
}
