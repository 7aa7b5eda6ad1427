// Package fault makes the agent's external calls fail on request, for the
// fault-injection tests: every mount and unmount, btrfs ioctl that changes
// the filesystem, program start, file write, rename and flush asks At
// first. Outside those tests (the variable unset) At costs one map lookup
// behind a sync.Once and never fails.
//
// PROVISION_TEST_FAULT holds comma-separated rules "POINT[#N]:ERRNO": the
// Nth call at POINT (every call without #N) fails with ERRNO, a name such
// as ENOSPC, EIO, EROFS, EPERM, EBUSY. The rule "trace" prints every call
// with its count to stderr, to find the N of the call a row means.
package fault

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Env is the environment variable the tests set.
const Env = "PROVISION_TEST_FAULT"

// The points, named after the call that fails.
const (
	PointMount          = "mount"
	PointUnmount        = "umount"
	PointBtrfsSnapshot  = "btrfs.snapshot"    // BTRFS_IOC_SNAP_CREATE_V2
	PointBtrfsDelete    = "btrfs.delete"      // BTRFS_IOC_SNAP_DESTROY
	PointBtrfsDefault   = "btrfs.set-default" // BTRFS_IOC_DEFAULT_SUBVOL
	PointBtrfsSetFlags  = "btrfs.set-flags"   // BTRFS_IOC_SUBVOL_SETFLAGS (read-only)
	PointExec           = "exec"              // a program started in the target
	PointWrite          = "write"             // a file's data written
	PointRename         = "rename"            // a written file put in place
	PointFsync          = "fsync"             // a file flushed: a journal record, a durable write
	PointSyncfs         = "syncfs"            // a written filesystem flushed before the commit
	PointJournalWrite   = "journal.write"     // the undo journal's own records
	PointJournalRestore = "journal.restore"   // a journal entry put back on rollback
)

// Points lists every point, for the tests' table.
func Points() []string {
	return []string{PointMount, PointUnmount, PointBtrfsSnapshot, PointBtrfsDelete, PointBtrfsDefault,
		PointBtrfsSetFlags, PointExec, PointWrite, PointRename, PointFsync, PointSyncfs,
		PointJournalWrite, PointJournalRestore}
}

var errnos = map[string]syscall.Errno{
	"ENOSPC": syscall.ENOSPC, "EIO": syscall.EIO, "EROFS": syscall.EROFS,
	"EPERM": syscall.EPERM, "EACCES": syscall.EACCES, "EBUSY": syscall.EBUSY,
	"ENOENT": syscall.ENOENT, "EEXIST": syscall.EEXIST, "EINVAL": syscall.EINVAL,
	"ENOTDIR": syscall.ENOTDIR, "EDQUOT": syscall.EDQUOT, "ENOMEM": syscall.ENOMEM,
}

type rule struct {
	nth   int // 0: every call
	errno syscall.Errno
}

var state struct {
	once  sync.Once
	mu    sync.Mutex
	rules map[string]rule
	calls map[string]int
	trace bool
	bad   error
}

func load() {
	state.rules = map[string]rule{}
	state.calls = map[string]int{}
	spec := os.Getenv(Env)
	if spec == "" {
		return
	}
	for _, r := range strings.Split(spec, ",") {
		if strings.TrimSpace(r) == "trace" {
			state.trace = true
			continue
		}
		point, name, ok := strings.Cut(strings.TrimSpace(r), ":")
		errno, known := errnos[name]
		if !ok || !known {
			state.bad = fmt.Errorf("%s: bad rule %q (POINT[#N]:ERRNO)", Env, r)
			return
		}
		point, n, hasN := strings.Cut(point, "#")
		nth := 0
		if hasN {
			v, err := strconv.Atoi(n)
			if err != nil || v < 1 {
				state.bad = fmt.Errorf("%s: bad count in %q", Env, r)
				return
			}
			nth = v
		}
		state.rules[point] = rule{nth: nth, errno: errno}
	}
}

// At is called before the external call at point: a non-nil error is what
// the call would have returned, a syscall.Errno, so the caller wraps it as
// it wraps the real call's error.
func At(point string) error {
	state.once.Do(load)
	if state.bad != nil {
		return state.bad
	}
	if len(state.rules) == 0 && !state.trace {
		return nil
	}
	state.mu.Lock()
	defer state.mu.Unlock()
	state.calls[point]++
	if state.trace {
		fmt.Fprintf(os.Stderr, "fault: %s#%d\n", point, state.calls[point])
	}
	r, ok := state.rules[point]
	if !ok {
		return nil
	}
	if r.nth != 0 && state.calls[point] != r.nth {
		return nil
	}
	return r.errno
}

// Mount is unix.Mount behind PointMount.
func Mount(source, target, fstype string, flags uintptr, data string) error {
	if err := At(PointMount); err != nil {
		return err
	}
	return unix.Mount(source, target, fstype, flags, data)
}

// Unmount is unix.Unmount behind PointUnmount.
func Unmount(target string, flags int) error {
	if err := At(PointUnmount); err != nil {
		return err
	}
	return unix.Unmount(target, flags)
}
