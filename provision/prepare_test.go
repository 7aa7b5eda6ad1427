package provision

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provision-dev/provision/provision/combustion"
)

// TestPrepareRefusedOutsideInitrd: a Combustion script asking for the
// prepare stage is refused by a run outside the initrd (run --root on a
// workstation), before anything runs or is written: the stage would run as
// root on the host, unconfined (issue 12).
func TestPrepareRefusedOutsideInitrd(t *testing.T) {
	root := newTarget(t)
	before := treeState(t, root)
	host := filepath.Join(t.TempDir(), "written-on-the-host")
	medium := t.TempDir()
	script := "#!/bin/sh\n# combustion: prepare\nif [ \"$1\" = --prepare ]; then echo host > " + host + "; fi\n"
	os.MkdirAll(filepath.Join(medium, "combustion"), 0o755)
	if err := os.WriteFile(filepath.Join(medium, "combustion", "script"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	var console bytes.Buffer
	opts, err := SystemOptions(context.Background(), SystemConfig{Root: root, SourceSpec: []string{medium}, Console: &console, InInitrd: false})
	if err != nil {
		t.Fatal(err)
	}
	res := Run(context.Background(), opts)
	if _, err := os.Stat(host); err == nil {
		t.Fatalf("the prepare stage ran on the host:\n%s", console.String())
	}
	if res.Err == nil || !errors.Is(res.Err, ErrInvalid) || !strings.Contains(res.Err.Error(), "prepare stage") || !strings.Contains(res.Err.Error(), "combustion/script") {
		t.Fatalf("want a refusal naming the prepare stage and the script, got %v\n%s", res.Err, console.String())
	}
	if res.Status != StatusInvalid || len(res.Steps) != 0 {
		t.Errorf("status %q, %d steps: want invalid and none", res.Status, len(res.Steps))
	}
	if !equalState(before, treeState(t, root)) {
		t.Error("the target changed")
	}
}

// TestPrepareWiredInInitrd: in the initrd the stage is run, not refused.
func TestPrepareWiredInInitrd(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the prepare stage is wired for root only")
	}
	opts, err := SystemOptions(context.Background(), SystemConfig{Root: t.TempDir(), InInitrd: true})
	if err != nil {
		t.Fatal(err)
	}
	if opts.Prepare == nil {
		t.Fatal("no prepare stage in the initrd")
	}
	c, err := combustion.Parse([]combustion.File{{Path: "script", Data: []byte("#!/bin/sh\n# combustion: prepare\ntrue\n")}})
	if err != nil {
		t.Fatal(err)
	}
	if err := opts.Prepare(context.Background(), c.Scripts[0]); errors.Is(err, ErrInvalid) {
		t.Fatalf("refused in the initrd: %v", err)
	}
}
