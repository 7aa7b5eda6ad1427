package snapshot

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/provision-dev/provision/modules/fault"
	"github.com/provision-dev/provision/provision/snapshot/btrfs"
)

// TestTopLevelStateSeenWithoutMount: whether the top level holds the state
// directory is read by a tree search from the mounted root subvolume, in
// a top level with more entries than one search returns.
func TestTopLevelStateSeenWithoutMount(t *testing.T) {
	e := newBtrfs(t, layoutSnapper)
	has := func() bool {
		t.Helper()
		ok, err := btrfs.TopLevelHas(e.root, StateDirName)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if has() {
		t.Fatal("a state directory in a new filesystem")
	}
	for i := 0; i < 300; i++ {
		if err := os.Mkdir(filepath.Join(e.top, fmt.Sprintf("entry-%03d", i)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The name below the top level is not the top level's.
	os.Mkdir(filepath.Join(e.top, "@", StateDirName), 0o700)
	if has() {
		t.Fatal("found among 300 other entries, or one level down")
	}
	if err := os.Mkdir(filepath.Join(e.top, StateDirName), 0o700); err != nil {
		t.Fatal(err)
	}
	if !has() {
		t.Fatal("the state directory not found")
	}
}

// TestRecoverMountsTheTopLevelOnlyForState: with every mount failing
// (the fault rules, in a child process, as they are read once), recovery
// of a root with no state succeeds, since it mounts nothing; with a state
// directory it reaches the mount and reports its error.
func TestRecoverMountsTheTopLevelOnlyForState(t *testing.T) {
	e := newBtrfs(t, layoutSnapper)
	recoverInChild := func() (string, error) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperRecover$")
		cmd.Env = append(os.Environ(), helperEnv+"=1", "HELPER_ROOT="+e.root, fault.Env+"=mount:EIO")
		cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := recoverInChild(); err != nil {
		t.Fatalf("no state, yet recovery mounted something: %v\n%s", err, out)
	}
	if err := os.MkdirAll(filepath.Join(e.top, StateDirName, "20260101T000000Z-1"), 0o700); err != nil {
		t.Fatal(err)
	}
	out, err := recoverInChild()
	if err == nil || !strings.Contains(out, "input/output error") {
		t.Fatalf("with a state directory recovery must mount the top level (and fail with the injected EIO): %v\n%s", err, out)
	}
}

// TestHelperRecover is the child of TestRecoverMountsTheTopLevelOnlyForState.
func TestHelperRecover(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		t.Skip("helper for TestRecoverMountsTheTopLevelOnlyForState")
	}
	if err := RecoverLogged(context.Background(), os.Getenv("HELPER_ROOT"), os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	os.Exit(0)
}
