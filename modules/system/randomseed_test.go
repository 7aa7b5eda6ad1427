package system

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/modules/rootfs/rootfstest"
	"github.com/provision-dev/provision/provision/config"
)

type seedExec struct {
	cmds []modules.Command
	code int
}

func (e *seedExec) Run(_ context.Context, c modules.Command) (int, error) {
	e.cmds = append(e.cmds, c)
	return e.code, nil
}

// The default file is the kernel's /dev/urandom: the plan says the data
// is left, and applying writes nothing.
func TestRandomSeedDefaultFileLeftToKernel(t *testing.T) {
	cfg := &config.Config{RandomSeed: &config.RandomSeed{File: "/dev/urandom", Data: []byte("abc")}}
	steps, err := PlanRandomSeed(cfg, nil)
	if err != nil || len(steps) != 1 || steps[0].Action != "leave random seed" ||
		!strings.Contains(steps[0].Detail, "kernel seeds its own pool") {
		t.Fatalf("steps %v, %v", steps, err)
	}
	root := rootfstest.NewRoot(t, map[string]string{"dev/": ""})
	rootfstest.Apply(t, root, steps)
	if root.Exists("/dev/urandom") {
		t.Error("/dev/urandom written in the target")
	}
	// No data and no command: nothing to do.
	cfg.RandomSeed.Data = nil
	if steps, _ := PlanRandomSeed(cfg, nil); len(steps) != 0 {
		t.Errorf("no data: %v", steps)
	}
}

// Another file gets the data appended, as cloud-init's append_file.
func TestRandomSeedFileAppended(t *testing.T) {
	cfg := &config.Config{RandomSeed: &config.RandomSeed{File: "/var/lib/seed", Data: []byte("new")}}
	root := rootfstest.NewRoot(t, map[string]string{"var/lib/seed": "old-"})
	steps, err := PlanRandomSeed(cfg, root)
	if err != nil || len(steps) != 1 || steps[0].Action != "append random seed" || steps[0].Detail != "3 bytes" {
		t.Fatalf("steps %v, %v", steps, err)
	}
	rootfstest.Apply(t, root, steps)
	if b, _ := root.ReadFile("/var/lib/seed"); string(b) != "old-new" {
		t.Errorf("seed file %q", b)
	}
	root = rootfstest.NewRoot(t, map[string]string{"var/": ""})
	rootfstest.Apply(t, root, steps)
	if b, _ := root.ReadFile("/var/lib/seed"); string(b) != "new" {
		t.Errorf("new seed file %q", b)
	}
	if st, err := root.Stat("/var/lib/seed"); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("new seed file: %v %v, want mode 0644", st, err)
	}
}

// An existing seed file keeps its mode, as cloud-init's append_file leaves
// it (test/cloudinitdiff found a 0600 file made 0644).
func TestRandomSeedAppendKeepsMode(t *testing.T) {
	cfg := &config.Config{RandomSeed: &config.RandomSeed{File: "/var/lib/seed", Data: []byte("new")}}
	root := rootfstest.NewRoot(t, map[string]string{"var/lib/seed": "old-"})
	host, err := root.Resolve("/var/lib/seed")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(host, 0o600); err != nil {
		t.Fatal(err)
	}
	steps, err := PlanRandomSeed(cfg, root)
	if err != nil {
		t.Fatal(err)
	}
	rootfstest.Apply(t, root, steps)
	st, err := root.Stat("/var/lib/seed")
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("appended seed file: %v %v, want mode 0600 kept", st, err)
	}
	if b, _ := root.ReadFile("/var/lib/seed"); string(b) != "old-new" {
		t.Errorf("seed file %q", b)
	}
}

func TestRandomSeedCommand(t *testing.T) {
	rs := &config.RandomSeed{File: "/var/lib/seed", Command: []string{"pollinate", "-q"}}
	cfg := &config.Config{RandomSeed: rs}
	steps, err := PlanRandomSeed(cfg, nil)
	if err != nil || len(steps) != 1 || steps[0].Target != "pollinate -q" {
		t.Fatalf("steps %v, %v", steps, err)
	}
	apply := func(files map[string]string, exec modules.Executor) (string, error) {
		root := rootfstest.NewRoot(t, files)
		if c, ok := files["usr/bin/pollinate"]; ok && c != "not executable" {
			if err := root.Chmod("/usr/bin/pollinate", 0o755); err != nil {
				t.Fatal(err)
			}
		}
		var out bytes.Buffer
		steps, err := PlanRandomSeed(cfg, root)
		if err != nil {
			t.Fatal(err)
		}
		err = modules.ApplyAll(context.Background(), &modules.Env{Root: root, Console: &out, Exec: exec}, steps)
		return out.String(), err
	}
	// Present: run with RANDOM_SEED_FILE.
	ex := &seedExec{}
	if _, err := apply(map[string]string{"usr/bin/pollinate": "#!/bin/sh\n"}, ex); err != nil {
		t.Fatal(err)
	}
	if len(ex.cmds) != 1 || strings.Join(ex.cmds[0].Argv, " ") != "pollinate -q" ||
		len(ex.cmds[0].Env) != 1 || ex.cmds[0].Env[0] != "RANDOM_SEED_FILE=/var/lib/seed" {
		t.Errorf("commands run: %+v", ex.cmds)
	}
	// A failing command fails the step.
	if _, err := apply(map[string]string{"usr/bin/pollinate": "#!/bin/sh\n"}, &seedExec{code: 3}); err == nil || !strings.Contains(err.Error(), "status 3") {
		t.Errorf("exit 3: %v", err)
	}
	// Missing and not required: skipped, said on the console.
	ex = &seedExec{}
	out, err := apply(map[string]string{"usr/bin/": ""}, ex)
	if err != nil || len(ex.cmds) != 0 || !strings.Contains(out, "skipped: not found") {
		t.Errorf("missing command: %q, %v, %v", out, err, ex.cmds)
	}
	// A file that is not executable is no command.
	if out, err := apply(map[string]string{"usr/bin/pollinate": "not executable"}, ex); err != nil || len(ex.cmds) != 0 || !strings.Contains(out, "skipped: not found") {
		t.Errorf("non-executable command: %q, %v, %v", out, err, ex.cmds)
	}
	// No executor and not required: skipped.
	if out, err := apply(map[string]string{"usr/bin/pollinate": "#!/bin/sh\n"}, nil); err != nil || !strings.Contains(out, "skipped") {
		t.Errorf("no executor: %q, %v", out, err)
	}
	rs.CommandRequired = true
	if _, err := apply(map[string]string{"usr/bin/": ""}, &seedExec{}); err == nil || !strings.Contains(err.Error(), "command_required") {
		t.Errorf("missing required command: %v", err)
	}
	if _, err := apply(map[string]string{"usr/bin/pollinate": "#!/bin/sh\n"}, nil); !errors.Is(err, modules.ErrNoExecutor) {
		t.Errorf("required, no executor: %v", err)
	}
	// command_required without a command is an error when planning.
	rs.Command = nil
	if _, err := PlanRandomSeed(cfg, nil); err == nil {
		t.Error("command_required without a command planned")
	}
}
