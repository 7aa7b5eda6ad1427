package provision_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/provision-dev/provision/modules/fault"
	"github.com/provision-dev/provision/provision/snapshot"
)

// TestRootTierCrashedOutsideJournal: /var cannot be snapshotted (the
// snapshot ioctl fails), so the run writes it through the undo journal,
// below mounts of its own; killed after writing both files (just before
// the commit point), its writes there are undone by the next run's
// recovery, which mounts the top level anew.
func TestRootTierCrashedOutsideJournal(t *testing.T) {
	b := newBtrfsTarget(t, true)
	seed := t.TempDir()
	os.WriteFile(filepath.Join(seed, "meta-data"), []byte("instance-id: iid-crash\n"), 0o644)
	os.WriteFile(filepath.Join(seed, "user-data"), []byte("#cloud-config\nwrite_files:\n  - path: /var/lib/crashed\n    content: x\n  - path: /var/lib/crashed2\n    content: y\n"), 0o644)
	rep := filepath.Join(t.TempDir(), "report.json")
	cmd := exec.Command(provisionBinary(t), "run", "--root", b.root, "--source", seed, "--report", rep)
	cmd.Env = append(os.Environ(), fault.Env+"=btrfs.snapshot#2:EROFS", snapshot.KillPointEnv+"=btrfs.commit.synced")
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	out, _ := cmd.CombinedOutput()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
		t.Fatalf("the run was not killed at the kill point:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(b.top, b.varPath, "lib/crashed")); err != nil {
		t.Fatalf("the crashed run did not write /var/lib/crashed first (%v): the test proves nothing\n%s", err, out)
	}
	// Another configuration: only the recovery can remove the file.
	os.WriteFile(filepath.Join(seed, "user-data"), []byte("#cloud-config\nhostname: after\n"), 0o644)
	r := runCLI(t, b.root, seed, "")
	if r.code != 0 {
		t.Fatalf("the run after the crash: exit %d\n%s", r.code, r.out)
	}
	for _, f := range []string{"lib/crashed", "lib/crashed2"} {
		if _, err := os.Lstat(filepath.Join(b.top, b.varPath, f)); err == nil {
			t.Errorf("/var/%s: the crashed run's write outside its snapshot was not undone\n%s", f, r.out)
		}
	}
	if strings.Contains(r.out, "not replayed") {
		t.Errorf("the crashed run's own journal was quarantined:\n%s", r.out)
	}
	if _, err := os.Stat(filepath.Join(b.top, b.varPath, "lib/apt/state")); err != nil {
		t.Errorf("/var's own file: %v", err)
	}
}

// TestRootTierPlantedBtrfsJournal: an image whose top level carries a
// transaction state with a journal naming the host's files (absent: delete
// them; a setuid file: create it) gets nothing replayed; the journal is
// moved aside, the run says so and provisions.
func TestRootTierPlantedBtrfsJournal(t *testing.T) {
	b := newBtrfsTarget(t, true)
	host := t.TempDir()
	victim := filepath.Join(host, "victim")
	os.WriteFile(victim, []byte("keep"), 0o644)
	state := filepath.Join(b.top, snapshot.StateDirName, "20260101T000000Z-1")
	jdir := filepath.Join(state, "journal")
	os.MkdirAll(filepath.Join(jdir, "data"), 0o700)
	st, _ := json.Marshal(map[string]any{"snapshot": "/@/.snapshots/9/snapshot", "root": "/@/.snapshots/1/snapshot", "old_default": b.rootID, "top": "/run/provision-top-planted"})
	os.WriteFile(filepath.Join(state, "state.json"), st, 0o600)
	os.WriteFile(filepath.Join(jdir, "data", "2"), []byte("#!/bin/sh\n"), 0o600)
	manifest := fmt.Sprintf("{\"seq\":1,\"path\":%q,\"kind\":\"absent\"}\n{\"seq\":2,\"path\":%q,\"kind\":\"file\",\"mode\":2541,\"uid\":0,\"gid\":0}\n",
		victim, filepath.Join(host, "suid"))
	os.WriteFile(filepath.Join(jdir, "manifest"), []byte(manifest), 0o600)
	r := runCLI(t, b.root, okSeed(t, "iid-planted"), "")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.out)
	}
	if data, err := os.ReadFile(victim); err != nil || string(data) != "keep" {
		t.Errorf("the host file was deleted or changed: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(host, "suid")); err == nil {
		t.Error("a file was created on the host")
	}
	if !strings.Contains(r.out, "not replayed") {
		t.Errorf("the run does not say the journal was not replayed:\n%s", r.out)
	}
	if ents, _ := os.ReadDir(filepath.Join(b.top, snapshot.QuarantineDirName)); len(ents) != 1 {
		t.Errorf("quarantine holds %d entries, want the journal", len(ents))
	}
}
