package provision_test

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// sleeperArg marks the program the SIGTERM test starts in the target, so
// the test can tell whether it outlived the run.
const sleeperArg = "313"

// TestRootTierSIGTERM: SIGTERM while a runcmd is running (the binary in
// its private mount namespace, the chroot's API filesystems and the
// target's /var and /home mounted) stops the program, rolls the snapshot
// back and exits non-zero: the old root stays the default, no mount and
// no process of the run are left.
func TestRootTierSIGTERM(t *testing.T) {
	requireRootTier(t, "mkfs.btrfs", "btrfs")
	b := newBtrfsTarget(t, true)
	mounts := mountPoints(t, b.img)
	seed := t.TempDir()
	os.WriteFile(filepath.Join(seed, "meta-data"), []byte("instance-id: iid-sigterm\n"), 0o644)
	os.WriteFile(filepath.Join(seed, "user-data"), []byte(`#cloud-config
users:
  - name: alice
    gecos: Alice
runcmd:
  - echo started; exec busybox sleep `+sleeperArg+`
`), 0o644)
	cmd, out, rep := runBinary(t, b.root, seed)
	// The output is read by one goroutine, which says when the program
	// has started and hands the whole of it over once the run has ended.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	started, output := make(chan struct{}), make(chan string, 1)
	go func() {
		var all strings.Builder
		seen := false
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			all.WriteString(sc.Text() + "\n")
			if !seen && strings.Contains(sc.Text(), "[runcmd] started") {
				close(started)
				seen = true
			}
		}
		output <- all.String()
	}()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// The guards only catch a hang; they measure nothing.
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("the run ended before its runcmd started: %v\n%s", err, <-output)
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		t.Fatalf("runcmd never started:\n%s", <-output)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err = <-done:
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		<-done
		t.Fatalf("SIGTERM ignored: still running\n%s", <-output)
	}
	out.WriteString(<-output)
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Errorf("exit %v, want status 1\n%s", err, out)
	}
	if !strings.Contains(out.String(), "context canceled (terminated signal received)") {
		t.Errorf("the error does not say the run was terminated:\n%s", out)
	}
	var r map[string]any
	data, _ := os.ReadFile(rep)
	json.Unmarshal(data, &r)
	if r["status"] != "error" || r["result"] != "rolled back" {
		t.Errorf("report status %v result %v, want error / rolled back\n%s", r["status"], r["result"], out)
	}
	if left := newMounts(mounts, mountPoints(t, b.img)); len(left) > 0 {
		t.Errorf("mounts left behind: %v", left)
	}
	if pids := processesWithArgv("busybox", "sleep", sleeperArg); len(pids) > 0 {
		for _, p := range pids {
			syscall.Kill(p, syscall.SIGKILL)
		}
		t.Errorf("the run's program outlived it: pids %v", pids)
	}
	b.expectOld(t)
}

// processesWithArgv lists the pids whose command line is exactly argv.
func processesWithArgv(argv ...string) []int {
	want := strings.Join(argv, "\x00") + "\x00"
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); err == nil && string(b) == want {
			pids = append(pids, pid)
		}
	}
	return pids
}
