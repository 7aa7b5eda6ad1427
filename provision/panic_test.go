package provision

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/provision-dev/provision/sources"
	"github.com/provision-dev/provision/sources/dir"
)

// TestApplyPanicRollsBack: a step that panics inside the transaction is a
// failed run: rolled back, the tree as it was, the panic and where it
// happened in the error and the report; the process goes on (issue 12).
func TestApplyPanicRollsBack(t *testing.T) {
	root := newTarget(t)
	before := treeState(t, root)
	seed := seedDir(t, "#cloud-config\nusers:\n  - name: alice\nwrite_files:\n  - path: /etc/motd\n    content: hi\n")
	t.Setenv(PanicPointEnv, "step:files")
	var console bytes.Buffer
	res := Run(context.Background(), Options{
		Root: root, Sources: []sources.Source{dir.New(seed)}, Console: &console,
		Begin: beginSnapshot(&console, new(currentTxn)),
	})
	if res.Err == nil || !strings.Contains(res.Err.Error(), "panic: test panic point") || !strings.Contains(res.Err.Error(), "(panics.go:") {
		t.Fatalf("want the panic with a stack, got %v\n%s", res.Err, console.String())
	}
	if res.Status != StatusFailed || !strings.Contains(console.String(), "rolled back") {
		t.Errorf("status %q, want failed and rolled back:\n%s", res.Status, console.String())
	}
	if !equalState(before, treeState(t, root)) {
		t.Error("the tree changed")
	}
	rep := res.Report
	if rep.Running() || rep.Error == nil || !strings.Contains(rep.Error.Message, "panic: test panic point") {
		t.Errorf("report: status %q, error %+v", rep.Status, rep.Error)
	}
	for _, m := range rep.Modules {
		for _, s := range m.Steps {
			if s.Result == "running" {
				t.Errorf("step %s %s still running in the report", m.Name, s.Target)
			}
		}
	}
}
