package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/provision-dev/provision/provision/chroot"
	"github.com/provision-dev/provision/provision/snapshot/btrfs"
)

// mountNSEnv carries the mount namespace `provision run` was started in to
// the copy of itself it re-executes in a private one. The child compares it
// with its own, so a variable inherited from elsewhere never skips the
// unshare.
const mountNSEnv = "PROVISION_PARENT_MOUNTNS"

// mountNS is the inode of this process's mount namespace.
func mountNS() (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/ns/mnt", &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// inPrivateMounts reports whether this process is the re-executed copy,
// in a mount namespace other than its parent's.
func inPrivateMounts() bool {
	parent, err := strconv.ParseUint(os.Getenv(mountNSEnv), 10, 64)
	if err != nil {
		return false
	}
	own, err := mountNS()
	return err == nil && own != parent
}

// runInPrivateMounts runs this command again in a mount namespace of its
// own, / made private in it (Go's exec does that with CLONE_NEWNS), and
// returns its exit status; ok is false when there is nothing to do here
// (this already is that copy) or it cannot be done (then the run goes on
// in the current namespace, as before).
//
// Why a second process: every mount the run makes (the btrfs top level,
// the chroot's /proc, /sys, /dev, the target's /var and /home, an ESP)
// then dies with it, even under kill -9, and none ever shows in the
// host's (or the initrd's) mount table. Unsharing in this process would
// move only the calling OS thread: Go runs goroutines, and execs
// programs, from any thread. Nothing a run mounts must outlive it: the
// commit switches the btrfs default subvolume, a property of the
// filesystem, and the initrd mounts /sysroot again itself afterwards
// (provision-initrd, provision init), so the initrd flow is unchanged.
func runInPrivateMounts(stdout, stderr io.Writer) (code int, ok bool) {
	if inPrivateMounts() {
		return 0, false
	}
	ns, err := mountNS()
	if err != nil {
		fmt.Fprintf(stderr, "provision: warning: no mount namespace of its own (%v): a killed run may leave mounts behind\n", err)
		return 0, false
	}
	// The parent's death (kill -9) kills the child: it is the thread that
	// forked that must live, so this goroutine keeps its thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cmd := exec.Command("/proc/self/exe", os.Args[1:]...)
	cmd.Args[0] = os.Args[0]
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d", mountNSEnv, ns))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS, Pdeathsig: syscall.SIGKILL}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(stderr, "provision: warning: no mount namespace of its own (%v): a killed run may leave mounts behind\n", err)
		return 0, false
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case s := <-sigs:
			// The child decides what a signal means (roll back, exit).
			_ = cmd.Process.Signal(s)
		case err := <-done:
			return childStatus(err), true
		}
	}
}

// ownCommandLine reports whether args (what follows the command name) are
// this process's own command line: the re-executed copy gets os.Args, so
// a caller of run() with other arguments (a test) is never re-executed.
func ownCommandLine(args []string) bool {
	n := len(os.Args) - len(args)
	return n >= 1 && slices.Equal(os.Args[n:], args)
}

// childStatus is the child's exit status as ours. A child killed by a
// signal kills us by the same one, so whoever started provision sees what
// happened (crash tests look for SIGKILL); should we survive it, 128+N.
func childStatus(err error) int {
	var ee *exec.ExitError
	if err == nil {
		return exitOK
	}
	if !errors.As(err, &ee) {
		return exitFailed
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		signal.Reset(ws.Signal())
		_ = syscall.Kill(os.Getpid(), ws.Signal())
		return 128 + int(ws.Signal())
	}
	return ee.ExitCode()
}

// mountsFromTheStart reports whether a run on root mounts before its
// config is read, whatever the config: in the initrd, on a btrfs
// subvolume (the snapshot transaction mounts the top level, and recovery
// before it), or on a target whose fstab the chroot mounts (/var, /home,
// an overlay /etc, the ESP). Anything it cannot tell counts as yes.
func mountsFromTheStart(root string) bool {
	if inInitrd() {
		return true
	}
	sub, err := btrfs.IsSubvolume(root)
	if err != nil || sub {
		return true
	}
	// The tree's own fstab is read here only to look: the run reads it
	// again, confined to the root. A symlink or anything but a regular
	// file counts as yes.
	st, err := os.Lstat(filepath.Join(root, "etc/fstab"))
	if errors.Is(err, fs.ErrNotExist) {
		return false
	}
	if err != nil || !st.Mode().IsRegular() || st.Size() > 1<<20 {
		return true
	}
	data, err := os.ReadFile(filepath.Join(root, "etc/fstab"))
	return err != nil || chroot.FstabMayMount(data)
}
