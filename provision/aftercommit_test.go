package provision

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provision-dev/provision/modules/power"
	"github.com/provision-dev/provision/provision/report"
	"github.com/provision-dev/provision/sources"
	"github.com/provision-dev/provision/sources/dir"
)

// failingCommit is a transaction whose commit fails.
type failingCommit struct{ direct }

func (failingCommit) Commit(context.Context) error { return errors.New("commit refused") }

// The power_state unit is written to the running system's /run only
// after the commit, and only for the boot's own run.
func TestPowerStateAfterCommit(t *testing.T) {
	const ud = "#cloud-config\npower_state: {mode: reboot, message: bye}\n"
	t.Run("initrd", func(t *testing.T) {
		root, run := newTarget(t), t.TempDir()
		os.MkdirAll(filepath.Join(root, "usr/lib/systemd"), 0o755)
		os.WriteFile(filepath.Join(root, "usr/lib/systemd/systemd"), nil, 0o755)
		var console bytes.Buffer
		res := Run(context.Background(), Options{Root: root, Sources: []sources.Source{dir.New(seedDir(t, ud))}, RunDir: run, Console: &console})
		if res.Err != nil || res.Status != StatusDone {
			t.Fatalf("%s %v\n%s", res.Status, res.Err, console.String())
		}
		b, err := os.ReadFile(filepath.Join(run, "systemd/system", power.UnitName))
		if err != nil || !strings.Contains(string(b), `ExecStart="systemctl" "--no-block" "--message=bye" "reboot"`) {
			t.Fatalf("unit: %v\n%s", err, b)
		}
		if !strings.Contains(console.String(), "[ OK ] power: schedule reboot") {
			t.Errorf("console:\n%s", console.String())
		}
		if _, err := os.Stat(filepath.Join(root, "run/systemd/system", power.UnitName)); err == nil {
			t.Error("the unit went into the target's /run")
		}
	})
	t.Run("not the boot", func(t *testing.T) {
		root := newTarget(t)
		var console bytes.Buffer
		res := Run(context.Background(), Options{Root: root, Sources: []sources.Source{dir.New(seedDir(t, ud))}, Console: &console})
		if res.Err != nil || res.Status != StatusDone {
			t.Fatalf("%s %v", res.Status, res.Err)
		}
		if !strings.Contains(console.String(), power.SkippedHere) {
			t.Errorf("console does not say it is skipped:\n%s", console.String())
		}
	})
	t.Run("commit fails", func(t *testing.T) {
		root, run := newTarget(t), t.TempDir()
		res := Run(context.Background(), Options{Root: root, Sources: []sources.Source{dir.New(seedDir(t, ud))}, RunDir: run,
			Begin: func(_ context.Context, root string) (Txn, error) { return failingCommit{direct(root)}, nil }})
		if res.Err == nil {
			t.Fatal("the run succeeded")
		}
		if ents, _ := os.ReadDir(run); len(ents) != 0 {
			t.Errorf("a failed run left %v in /run", ents)
		}
	})
}

// A post-commit step that fails is a warning: the run is done, its
// report says the step failed (status: degraded done).
func TestAfterCommitFailureIsWarning(t *testing.T) {
	root := newTarget(t)
	// growpart on a tree that is no mount point cannot work.
	ud := "#cloud-config\ngrowpart: {devices: [/]}\nresize_rootfs: false\nfinal_message: hi\n"
	var console bytes.Buffer
	res := Run(context.Background(), Options{Root: root, Sources: []sources.Source{dir.New(seedDir(t, ud))}, Console: &console})
	if res.Err != nil || res.Status != StatusDone {
		t.Fatalf("%s %v\n%s", res.Status, res.Err, console.String())
	}
	if len(res.Warnings) == 0 || !strings.Contains(strings.Join(res.Warnings, "\n"), "not a mount point") {
		t.Errorf("warnings %q", res.Warnings)
	}
	if !strings.Contains(console.String(), "[WARN] disk: grow the partition of /") {
		t.Errorf("console:\n%s", console.String())
	}
	if got := report.StatusOf(res.Report).ExtendedStatus; got != "degraded done" {
		t.Errorf("extended status %q", got)
	}
	if _, err := os.Stat(filepath.Join(root, instanceIDPath)); err != nil {
		t.Errorf("the committed run lost its instance-id: %v", err)
	}
}

func TestDryRunPlansAfterCommit(t *testing.T) {
	ud := "#cloud-config\nresize_rootfs: true\npower_state: {mode: poweroff, delay: 3}\n"
	res := Run(context.Background(), Options{Sources: []sources.Source{dir.New(seedDir(t, ud))}, DryRun: true})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	var lines []string
	for _, s := range res.Plan {
		lines = append(lines, s.String())
	}
	text := strings.Join(lines, "\n")
	for _, want := range []string{
		"disk: grow the partition of / (to the end of the free space behind it, after the commit: decided at boot)",
		"disk: grow filesystem / (the root filesystem to the end of its partition(s), after the commit: decided at boot)",
		"power: skip poweroff (" + power.SkippedHere + " (poweroff in 3 min))",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("plan lacks %q:\n%s", want, text)
		}
	}
}
