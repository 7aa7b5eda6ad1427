package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/provision"
	"github.com/provision-dev/provision/provision/report"
	"github.com/provision-dev/provision/sources"
	"github.com/provision-dev/provision/sources/dir"
)

// useStatusPaths points status's default paths into a temporary tree and
// returns them: this boot's report and the target's copy.
func useStatusPaths(t *testing.T) (run, target string) {
	t.Helper()
	saved := statusPaths
	t.Cleanup(func() { statusPaths = saved })
	d := t.TempDir()
	statusPaths.run = filepath.Join(d, "run/provision/report.json")
	statusPaths.target = filepath.Join(d, "var/log/provision/report.json")
	return statusPaths.run, statusPaths.target
}

// decodeStatus decodes status --json output strictly into the report type.
func decodeStatus(t *testing.T, out string) *report.Report {
	t.Helper()
	var r report.Report
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("status --json is not one report document: %v\n%s", err, out)
	}
	if r.Version != report.Version || r.Kind != report.KindStatus {
		t.Fatalf("version %d, kind %q; want %d, %q", r.Version, r.Kind, report.Version, report.KindStatus)
	}
	return &r
}

// With no report anywhere, provision has not run: said in text and JSON,
// exit 0, as cloud-init status does.
func TestStatusNotRun(t *testing.T) {
	run, target := useStatusPaths(t)
	for _, args := range [][]string{{"status"}, {"status", "--long"}, {"report"}} {
		code, out, errs := runArgs(args...)
		if code != exitOK || !strings.HasPrefix(out, "status: not run\n") || errs != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 0 and \"status: not run\"", args, code, out, errs)
		}
	}
	code, out, _ := runArgs("status", "--json")
	if code != exitOK {
		t.Errorf("status --json: exit %d", code)
	}
	r := decodeStatus(t, out)
	if r.Status != report.StatusNotRun || !strings.Contains(r.Reason, run) || !strings.Contains(r.Reason, target) {
		t.Errorf("status %q, reason %q; want %q naming both paths", r.Status, r.Reason, report.StatusNotRun)
	}
	// --wait does not wait for a run that happens in the initrd only.
	if code, out, _ := runArgs("status", "--wait", "--timeout", "1m"); code != exitOK || out != "status: not run\n" {
		t.Errorf("status --wait: exit %d, %q", code, out)
	}
}

// A missing report named with --report is an error, not "not run".
func TestStatusExplicitReportMissing(t *testing.T) {
	useStatusPaths(t)
	missing := filepath.Join(t.TempDir(), "none.json")
	for _, args := range [][]string{{"status", "--report", missing}, {"status", "--json", "--report", missing}} {
		code, out, errs := runArgs(args...)
		if code != exitFailed || out != "" || !strings.Contains(errs, "no report at "+missing) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 1 naming the file", args, code, out, errs)
		}
	}
}

// failingScript runs every program as a script that prints 50 numbered
// lines and exits 3: the chroot of a run, without root.
type failingScript struct{}

func (failingScript) Run(_ context.Context, c modules.Command) (int, error) {
	for i := 1; i <= 50; i++ {
		fmt.Fprintf(c.Output, "out %02d\n", i)
	}
	return 3, nil
}

func (failingScript) Close() error { return nil }

// failedRun makes a real run (modules, report, secrets) whose runcmd fails
// after printing 50 lines, and writes its report to path.
func failedRun(t *testing.T, path string) {
	t.Helper()
	seed := t.TempDir()
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(seed, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("user-data", "#cloud-config\nruncmd:\n  - echo hello; exit 3\n")
	write("meta-data", "instance-id: iid-status-1\n")
	res := provision.Run(context.Background(), provision.Options{
		Root:    t.TempDir(),
		Sources: []sources.Source{dir.New(seed)},
		Force:   true,
		Chroot:  func(context.Context, string, bool) (provision.Chroot, error) { return failingScript{}, nil },
	})
	if res.Err == nil {
		t.Fatal("the run with a failing runcmd succeeded")
	}
	if err := res.Report.Write(path); err != nil {
		t.Fatal(err)
	}
}

// wantKept are the lines a step keeps of 50: the first 10 and the last 30.
func wantKept() (kept, dropped []string) {
	for i := 1; i <= 50; i++ {
		l := fmt.Sprintf("out %02d", i)
		if i <= 10 || i > 20 {
			kept = append(kept, l)
		} else {
			dropped = append(dropped, l)
		}
	}
	return kept, dropped
}

// After the first boot, /run has no report: status reads the target's
// copy, says which and when; --long and --json show what the failing
// runcmd printed.
func TestStatusFirstBootReport(t *testing.T) {
	_, target := useStatusPaths(t)
	failedRun(t, target)
	kept, dropped := wantKept()

	code, out, _ := runArgs("status")
	if code != exitFailed || strings.Count(out, "\n") != 1 ||
		!strings.HasPrefix(out, "status: error (run of ") || !strings.Contains(out, "report "+target) {
		t.Errorf("status: exit %d, %q; want 1 and one line naming when and %s", code, out, target)
	}

	code, out, _ = runArgs("status", "--long")
	for _, want := range []string{"status: error\n", "result: rolled back\n", "report: " + target + "\n",
		"instance_id: iid-status-1\n", "started: ", "finished: ", "runcmd exited with status 3"} {
		if !strings.Contains(out, want) {
			t.Errorf("status --long lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(out, "  | (10 lines not kept)\n") {
		t.Errorf("status --long does not say lines were left out:\n%s", out)
	}
	for _, l := range kept {
		if !strings.Contains(out, "  | [runcmd] "+l+"\n") {
			t.Errorf("status --long lacks the output line %q:\n%s", l, out)
		}
	}
	for _, l := range dropped {
		if strings.Contains(out, l+"\n") {
			t.Errorf("status --long shows %q, from the middle that is not kept", l)
		}
	}
	if code != exitFailed {
		t.Errorf("status --long: exit %d, want 1", code)
	}

	code, out, _ = runArgs("status", "--json")
	r := decodeStatus(t, out)
	if code != exitFailed || r.Path != target || r.Status != report.StatusError || r.Finished == nil {
		t.Errorf("status --json: exit %d, path %q, status %q, finished %v", code, r.Path, r.Status, r.Finished)
	}
	var output []string
	for _, m := range r.Modules {
		for _, s := range m.Steps {
			if s.Result == report.ResultFailed {
				output = s.Output
			}
		}
	}
	want := "[runcmd] " + strings.Join(kept[:10], "\n[runcmd] ") + "\n(10 lines not kept)\n[runcmd] " + strings.Join(kept[10:], "\n[runcmd] ")
	if strings.Join(output, "\n") != want {
		t.Errorf("the failed step's output in the JSON: %q", output)
	}
}

// This boot's report wins over the first boot's, and is named as such.
func TestStatusPrefersThisBoot(t *testing.T) {
	run, target := useStatusPaths(t)
	failedRun(t, target)
	done := report.New(nil)
	done.Finish(report.ResultNothing, nil, "")
	if err := done.Write(run); err != nil {
		t.Fatal(err)
	}
	code, out, _ := runArgs("status", "--json")
	if r := decodeStatus(t, out); code != exitOK || r.Path != run || r.Status != report.StatusDone {
		t.Errorf("exit %d, path %q, status %q; want this boot's done report", code, r.Path, r.Status)
	}
	// Read from the explicit file, the one line says where.
	code, out, _ = runArgs("status", "--report", target)
	if code != exitFailed || !strings.Contains(out, "report "+target) {
		t.Errorf("--report %s: exit %d, %q", target, code, out)
	}
}
