package rootfs

import (
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/provision-dev/provision/modules/fault"
)

// Files are opened here with open(2) and wrapped with os.NewFile, not with
// os.OpenFile: OpenFile offers every descriptor to the runtime's poller,
// which for a regular file costs four fcntl calls and an epoll_ctl that
// fails, six system calls where one does (a run opens about a hundred
// files). NewFile leaves a blocking descriptor to plain system calls.

// openFD is open(2) with O_CLOEXEC, retried when interrupted; its error
// is an *os.PathError, as os.OpenFile's.
func openFD(name string, flag int, perm uint32) (int, error) {
	for {
		fd, err := unix.Open(name, flag|unix.O_CLOEXEC, perm)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: name, Err: err}
		}
		return fd, nil
	}
}

// OpenFile is os.OpenFile for regular files and directories, without the
// poller. flag must not hold O_NONBLOCK (ReadRegular reads with raw calls).
func OpenFile(name string, flag int, perm uint32) (*os.File, error) {
	fd, err := openFD(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), name), nil
}

// createTemp is os.CreateTemp(dir, prefix+"*") without the poller: a new
// file, mode 0600, named prefix and a random number.
func createTemp(dir, prefix string) (*os.File, error) {
	for try := 0; ; try++ {
		name := filepath.Join(dir, prefix+strconv.FormatUint(uint64(rand.Uint32()), 10))
		f, err := OpenFile(name, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) && try < 10000 {
			continue
		}
		return f, err
	}
}

// modeOf is the type bits of a stat's mode as fs.FileMode has them.
func modeOf(m uint32) fs.FileMode {
	perm := fs.FileMode(m & 0o777)
	switch m & unix.S_IFMT {
	case unix.S_IFDIR:
		return perm | fs.ModeDir
	case unix.S_IFLNK:
		return perm | fs.ModeSymlink
	case unix.S_IFIFO:
		return perm | fs.ModeNamedPipe
	case unix.S_IFSOCK:
		return perm | fs.ModeSocket
	case unix.S_IFCHR:
		return perm | fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		return perm | fs.ModeDevice
	}
	return perm
}

// SyncFS flushes the filesystem holding dir (syncfs(2)): the one flush a
// transaction makes of each filesystem it wrote. It is a fault point.
func SyncFS(dir string) error {
	fd, err := openFD(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := fault.At(fault.PointSyncfs); err != nil {
		return &os.PathError{Op: "syncfs", Path: dir, Err: err}
	}
	if err := unix.Syncfs(fd); err != nil {
		return &os.PathError{Op: "syncfs", Path: dir, Err: err}
	}
	return nil
}
