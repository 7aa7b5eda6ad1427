package provision_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/provision-dev/provision/provision/snapshot"
)

// TestRootTierKilledLeavesNoMount: `provision run` killed while its mounts
// are up (the btrfs top level at a kill point; the chroot's API
// filesystems and the target's /var and /home while a script runs, by an
// outside kill -9) leaves none of them in the mount table of whoever
// started it: they lived in its private mount namespace (issue 12).
func TestRootTierKilledLeavesNoMount(t *testing.T) {
	requireRootTier(t, "mkfs.btrfs", "btrfs")
	t.Run("kill point", func(t *testing.T) {
		b := newBtrfsTarget(t, true)
		mounts := mountPoints(t, b.img)
		cmd, out, _ := runBinary(t, b.root, okSeed(t, "iid-kill"), snapshot.KillPointEnv+"=btrfs.begin.top-mounted")
		err := cmd.Run()
		ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
		if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("not killed at the kill point: %v\n%s", err, out)
		}
		if left := newMounts(mounts, mountPoints(t, b.img)); len(left) > 0 {
			t.Errorf("mounts left behind: %v", left)
		}
	})
	t.Run("kill -9 during a script", func(t *testing.T) {
		b := newBtrfsTarget(t, true)
		killDuringScript(t, b.root, func() []string { return mountPoints(t, b.img) })
	})
	// A plain tree (the journal backend) mounts only for the programs:
	// the copy in a private namespace is made once the config shows one.
	t.Run("kill -9 during a script, plain ext4 tree", func(t *testing.T) {
		requireRootTier(t, "mkfs.ext4")
		root := ext4DebianTree(t)
		killDuringScript(t, root, func() []string { return mountsBelow(t, root) })
	})
}

// killDuringScript starts `provision run` on root with a runcmd that
// sleeps, kills it with SIGKILL once the script runs, and fails when
// mounts (as listed) are left that were not there before.
func killDuringScript(t *testing.T, root string, mounts func() []string) {
	t.Helper()
	seed := t.TempDir()
	os.WriteFile(filepath.Join(seed, "meta-data"), []byte("instance-id: iid-kill9\n"), 0o644)
	os.WriteFile(filepath.Join(seed, "user-data"), []byte("#cloud-config\nruncmd:\n  - echo ready-to-kill; sleep 15\n"), 0o644)
	before := mounts()
	cmd := exec.Command(provisionBinary(t), "run", "--root", root, "--source", seed, "--report", filepath.Join(t.TempDir(), "r.json"))
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan bool, 1)
	var lines []string
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			lines = append(lines, sc.Text())
			if strings.Contains(sc.Text(), "ready-to-kill") && !strings.Contains(sc.Text(), "echo") {
				ready <- true
			}
		}
		close(ready)
	}()
	select {
	case ok := <-ready:
		if !ok {
			cmd.Wait()
			t.Fatalf("the script never ran:\n%s", strings.Join(lines, "\n"))
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatal("timed out waiting for the script")
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	// The mounts of a namespace go with its last process; give the
	// kernel a moment to reap the child the parent's death killed.
	var left []string
	for range 50 {
		if left = newMounts(before, mounts()); len(left) == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(left) > 0 {
		t.Errorf("mounts left behind after kill -9: %v", left)
	}
}

// mountsBelow lists the mount points at or below root in this process's
// mount namespace.
func mountsBelow(t *testing.T, root string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if f := strings.Fields(l); len(f) > 4 && (f[4] == root || strings.HasPrefix(f[4], root+"/")) {
			out = append(out, f[4])
		}
	}
	return out
}
