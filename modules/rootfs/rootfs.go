// Package rootfs confines every write the modules make to the target root.
// Paths are resolved component by component with chroot semantics: absolute
// symlinks in the target mean paths inside the target, and anything that would
// climb above the root (a ".." or a planted symlink) is refused, never followed.
// Files are replaced atomically: temp file in the same directory, fsync, rename.
package rootfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/provision-dev/provision/modules/fault"
)

// ErrEscape is returned when a path would resolve outside the root.
var ErrEscape = errors.New("path escapes the target root")

// ErrNotRegular is returned when a file the modules read or append to is
// not a regular file: a FIFO planted in the target would block the read
// forever, a device (/dev/zero) would never end it.
var ErrNotRegular = errors.New("not a regular file")

// MaxReadSize bounds every read of a target file: the files modules read
// (account databases, configuration) are small, and a huge one is a
// mistake or an attack that must not cost the initrd its memory.
const MaxReadSize = 64 << 20

// Journal is told about every path before it is changed, so a transaction can
// keep the original and restore it on abort. The path is the host path.
type Journal interface {
	Preserve(hostPath string) error
}

// BatchJournal is a Journal that records several paths with one flush.
type BatchJournal interface {
	PreserveAll(hostPaths []string) error
}

// Root is a target root directory.
type Root struct {
	Dir     string
	Journal Journal // may be nil
	// NoSync leaves durability to the transaction: no fsync per file or
	// directory. The engine sets it when the commit flushes every
	// filesystem the run wrote (one syncfs each) before the commit point:
	// until then a btrfs snapshot is invisible, and the undo journal has
	// made each original durable before it is changed, so a per-file
	// flush buys no safety and costs most of a run on a disk.
	NoSync bool
	// Unmounted are mount points whose filesystem the target expects but
	// the agent could not mount: every change below one is refused.
	Unmounted []Unmounted
	// BeforeChange, when set, is told the host path of every change
	// before it is made, first of all: the chroot snapshots a subvolume
	// there on its first write (chroot.Options.LazySubvolumes).
	BeforeChange func(host string) error

	// memo holds what was parsed from the target's files (Memo).
	memoMu sync.Mutex
	memo   map[string]memoEntry
	dirs   map[string]struct{} // knownDir
	absent map[string]struct{} // knownAbsent
	made   map[string]struct{} // madeDir
	// mountsOK are the mounts checkMount found to be the target's own, by
	// mount id, with their mount points and devices (knownMountOK).
	mountsOK map[uint64]passedMount
	// rootID is the root directory's mount id (rootMountID).
	rootID                uint64
	rootIDOK, rootIDKnown bool
}

// New returns a Root for dir, which must exist.
func New(dir string) (*Root, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("target root: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("target root %s is not a directory", abs)
	}
	return &Root{Dir: abs}, nil
}

const maxSymlinks = 40

// Resolve maps a path inside the target to a host path, following symlinks
// in every component but the last (whose own symlink-ness the caller decides
// about with Lstat). It errors with ErrEscape when resolution would leave the root.
func (r *Root) Resolve(p string) (string, error) {
	rel, err := r.resolve(p, false)
	if err != nil {
		return "", err
	}
	return filepath.Join(r.Dir, rel), nil
}

// ResolveFollow is Resolve that also follows a symlink in the last component.
func (r *Root) ResolveFollow(p string) (string, error) {
	rel, err := r.resolve(p, true)
	if err != nil {
		return "", err
	}
	return filepath.Join(r.Dir, rel), nil
}

func (r *Root) resolve(p string, followLast bool) (string, error) {
	if strings.ContainsRune(p, 0) {
		return "", fmt.Errorf("%q: NUL in path", p)
	}
	pending := splitPath(p)
	done := make([]string, 0, len(pending)) // resolved components, relative to root
	links := 0
	// missing: a component of done does not exist, so neither does
	// anything below it (nor can it be a symlink): no lstat is needed
	// until ".." climbs back out of it.
	missing := false
	var st unix.Stat_t // one for every component: os.Lstat would allocate each
	for len(pending) > 0 {
		c := pending[0]
		pending = pending[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(done) == 0 {
				return "", fmt.Errorf("%s: %w", p, ErrEscape)
			}
			done = done[:len(done)-1]
			missing = false // perhaps back where things exist: look again
			continue
		}
		done = append(done, c)
		if missing || len(pending) == 0 && !followLast {
			continue
		}
		rel := filepath.Join(done...)
		if r.knownDir(rel) {
			continue
		}
		if r.knownAbsent(rel) {
			missing = true
			continue
		}
		host := filepath.Join(r.Dir, rel)
		err := unix.Lstat(host, &st)
		if err != nil || st.Mode&unix.S_IFMT != unix.S_IFLNK {
			// Missing components are fine: they will be created.
			switch {
			case err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR:
				r.rememberDir(rel)
			case errors.Is(err, unix.ENOENT):
				missing = true
				r.rememberAbsent(rel)
			}
			continue
		}
		done = done[:len(done)-1] // the link's name, replaced by its target
		links++
		if links > maxSymlinks {
			return "", fmt.Errorf("%s: too many levels of symbolic links", p)
		}
		target, err := os.Readlink(host)
		if err != nil {
			return "", fmt.Errorf("%s: %w", p, err)
		}
		if strings.HasPrefix(target, "/") {
			done = done[:0]
		}
		pending = append(splitPath(target), pending...)
	}
	return filepath.Join(done...), nil
}

func splitPath(p string) []string { return strings.Split(p, "/") }

// Lstat stats the path inside the root without following a final symlink.
func (r *Root) Lstat(p string) (fs.FileInfo, error) {
	h, err := r.Resolve(p)
	if err != nil {
		return nil, err
	}
	return os.Lstat(h)
}

// Stat stats the path inside the root, following symlinks within the root.
//
// Most paths end in no symlink: the directories above resolve from what
// the Root knows, and one lstat of the last component answers; only a
// symlink there is followed, inside the root (ResolveFollow would lstat
// the last component first and stat it again).
func (r *Root) Stat(p string) (fs.FileInfo, error) {
	h, err := r.Resolve(p)
	if err != nil {
		return nil, err
	}
	st, err := os.Lstat(h)
	var pe *fs.PathError
	if errors.As(err, &pe) {
		pe.Op = "stat" // as the stat it stands for would say
	}
	if err != nil || st.Mode()&fs.ModeSymlink == 0 {
		return st, err
	}
	if h, err = r.ResolveFollow(p); err != nil {
		return nil, err
	}
	return os.Stat(h)
}

// ReadFile reads a regular file inside the root, following symlinks within
// the root; anything else (a FIFO, a device) is ErrNotRegular, and a file
// over MaxReadSize an error.
//
// The last component is opened without following a symlink first: the
// open refuses one (ELOOP), and only then is the link resolved, inside
// the root. Most files are none, and the lstat resolution would make of
// the last component is saved.
func (r *Root) ReadFile(p string) ([]byte, error) {
	h, err := r.Resolve(p)
	if err != nil {
		return nil, err
	}
	fd, err := openRegular(h)
	if errors.Is(err, unix.ELOOP) {
		if h, err = r.ResolveFollow(p); err != nil {
			return nil, err
		}
		return ReadRegular(p, h, MaxReadSize)
	}
	if err != nil {
		return nil, err
	}
	return readOpened(Printable(p), h, fd, MaxReadSize)
}

// ReadDir lists the directory p inside the root, following symlinks within
// the root.
func (r *Root) ReadDir(p string) ([]fs.DirEntry, error) {
	h, err := r.ResolveFollow(p)
	if err != nil {
		return nil, err
	}
	return os.ReadDir(h)
}

// ReadRegular reads the regular file at host (name is how errors call it)
// without blocking (a FIFO's open waits for a writer otherwise) and without
// following a final symlink (resolution already did, inside the root), checks
// the type on the open file, and reads at most limit bytes. Anything else
// than a regular file is ErrNotRegular. Files outside a target root (an ESP,
// efivarfs) are read with it too.
func ReadRegular(name, host string, limit int64) ([]byte, error) {
	name = Printable(name)
	fd, err := openRegular(host)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, fmt.Errorf("%s: %w (a symbolic link)", name, ErrNotRegular)
		}
		return nil, err
	}
	return readOpened(name, host, fd, limit)
}

// openRegular opens host for ReadRegular: raw calls, not an os.File (a
// descriptor opened O_NONBLOCK, so that a FIFO planted in the target
// cannot block the open, would be offered to the runtime's poller, five
// calls more for nothing: see fd.go), and no final symlink followed.
func openRegular(host string) (int, error) {
	return openFD(host, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOFOLLOW, 0)
}

// readOpened is ReadRegular's read of the open fd, which it closes.
func readOpened(name, host string, fd int, limit int64) ([]byte, error) {
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, &os.PathError{Op: "stat", Path: host, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("%s: %w (%s)", name, ErrNotRegular, fileType(modeOf(st.Mode)))
	}
	if st.Size > limit {
		return nil, fmt.Errorf("%s: larger than %s (%d bytes)", name, sizeName(limit), st.Size)
	}
	// Room for the size stat gave and the read that finds the end (a
	// file may still grow): one allocation, and two reads for most files.
	buf := make([]byte, 0, st.Size+512)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, &os.PathError{Op: "read", Path: host, Err: err})
		}
		if n == 0 {
			break
		}
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			return nil, fmt.Errorf("%s: larger than %s", name, sizeName(limit))
		}
	}
	return buf, nil
}

// sizeName writes a read limit as a person reads it: "64 MiB", "65536 bytes".
func sizeName(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

func fileType(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m.IsDir():
		return "a directory"
	}
	return "mode " + m.String()
}

// Exists reports whether p exists (a dangling final symlink counts).
func (r *Root) Exists(p string) bool {
	_, err := r.Lstat(p)
	return err == nil
}

// preserve is called before every change of host: the change must stay on
// the target's own filesystems (checkMount), and the journal keeps the
// original. The check comes first, so nothing foreign is ever journaled and
// a rollback never has to restore a path on /proc or /dev.
func (r *Root) preserve(host string) error {
	if err := r.mayChange(host); err != nil {
		return err
	}
	return r.journal(host)
}

func (r *Root) journal(host string) error {
	if r.Journal == nil {
		return nil
	}
	return r.Journal.Preserve(host)
}

// PreserveAll has the journal keep the originals of paths (inside the
// root) before writers change them one by one: with a journal that
// batches (BatchJournal), one flush for all instead of one each. A path
// whose parents are missing is kept as its topmost missing ancestor,
// which the writer creates (and a rollback removes, with all below). It
// is a hint: a path it cannot take (outside the root, below a mount left
// out) is left for the write itself to refuse, with its own error.
func (r *Root) PreserveAll(paths ...string) error {
	bj, ok := r.Journal.(BatchJournal)
	if !ok || len(paths) == 0 {
		return nil
	}
	hosts := make([]string, 0, len(paths))
	seen := make(map[string]bool, len(paths))
	for _, p := range paths {
		host, err := r.Resolve(p)
		if err != nil {
			continue
		}
		// Files in one directory the run makes share its record.
		host = r.topmostMissing(host)
		if seen[host] {
			continue
		}
		seen[host] = true
		// Checked as a change would be, but nothing changes yet: what
		// was read of the target stays known until the write itself.
		if r.checkChange(host, false, false) != nil {
			continue
		}
		hosts = append(hosts, host)
	}
	return bj.PreserveAll(hosts)
}

// topmostMissing is host, or its highest ancestor below the root that
// does not exist.
func (r *Root) topmostMissing(host string) string {
	top := host
	for p := filepath.Dir(host); p != r.Dir && within(p, r.Dir); p = filepath.Dir(p) {
		if r.knownHostDir(p) {
			break
		}
		if _, err := os.Lstat(p); err == nil {
			break
		}
		top = p
	}
	return top
}

// mayChange is preserve before the journal: the checks, and what must
// happen before anything below host changes (BeforeChange); what was read
// of the target at or below host is forgotten.
func (r *Root) mayChange(host string) error { return r.checkChange(host, true, false) }

// checkChange is mayChange; forget false is for a change announced, not
// made (PreserveAll): the checks and BeforeChange, but the memos stay
// until the write itself. mountChecked skips the check of the mount host
// is on, for a path new in a directory this Root made: the directory's
// change passed it, and what is made in it is on its filesystem.
func (r *Root) checkChange(host string, forget, mountChecked bool) error {
	rel := strings.TrimPrefix(host, r.Dir)
	if err := r.checkUnmounted(Join(rel)); err != nil {
		return err
	}
	if forget {
		r.forgetChanged(host)
	}
	if r.BeforeChange != nil {
		// What it mounts (a snapshot of the subvolume mounted there, taken
		// before anything was written to it) shows what was there: the
		// directories and missing paths known below it stay true.
		if err := r.BeforeChange(host); err != nil {
			return err
		}
	}
	if mountChecked {
		return nil
	}
	return r.checkMount(Join(rel), host)
}

// Owner is a numeric owner; -1 keeps the default (the caller's).
type Owner struct{ UID, GID int }

// RootOwner is root:root.
var RootOwner = Owner{0, 0}

// WriteFile replaces p atomically with data, mode and owner. A final symlink is
// replaced, not followed: write_files writes the path the user named.
func (r *Root) WriteFile(p string, data []byte, mode fs.FileMode, owner Owner) error {
	host, err := r.Resolve(p)
	if err != nil {
		return err
	}
	if r.madeDir(filepath.Dir(host)) {
		if done, err := r.writeNew(host, data, mode, owner); done {
			return err
		}
	}
	if st, err := os.Lstat(host); err == nil && st.IsDir() {
		return fmt.Errorf("%s: is a directory", p)
	}
	if err := r.mkdirParents(host, 0o755); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	if err := r.preserve(host); err != nil {
		return err
	}
	return writeAtomic(host, data, mode, owner, !r.NoSync)
}

// writeNew writes host in place, without a temporary file and a rename,
// when it is new in a directory this Root made (a home and the skeleton
// copied into it, a .ssh): it replaces nothing of the target's, so there
// is nothing for a reader to see half-swapped, and a rollback removes the
// directory with all below. done is false when host turns out to exist;
// the caller then replaces it as any other.
func (r *Root) writeNew(host string, data []byte, mode fs.FileMode, owner Owner) (done bool, err error) {
	if err := r.checkChange(host, true, true); err != nil {
		return true, err
	}
	if err := r.journal(host); err != nil {
		return true, err
	}
	// O_EXCL|O_NOFOLLOW: whatever is there, a symlink included, is left
	// for the atomic replacement.
	f, err := OpenFile(host, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	if err != nil {
		return true, err
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(host)
		}
	}()
	durable := !r.NoSync
	if err := fill(f, data, mode, owner, "", durable); err != nil {
		return true, err
	}
	if err := f.Close(); err != nil {
		return true, err
	}
	ok = true
	if !durable {
		return true, nil
	}
	return true, syncDir(filepath.Dir(host))
}

// AppendFile appends data to p (created with mode and owner when missing).
// The result is still written atomically: old content + data, renamed over.
func (r *Root) AppendFile(p string, data []byte, mode fs.FileMode, owner Owner) error {
	host, err := r.ResolveFollow(p)
	if err != nil {
		return err
	}
	old, err := ReadRegular(p, host, MaxReadSize)
	switch {
	case err == nil:
		st, serr := os.Stat(host)
		if serr != nil {
			return serr
		}
		if sys, ok := st.Sys().(*syscall.Stat_t); ok && owner.UID < 0 {
			owner = Owner{int(sys.Uid), int(sys.Gid)}
		}
		if mode == 0 {
			mode = st.Mode().Perm() | st.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)
		}
	case errors.Is(err, fs.ErrNotExist):
		old = nil
	default:
		return err
	}
	if err := r.mkdirParents(host, 0o755); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	if err := r.preserve(host); err != nil {
		return err
	}
	return writeAtomic(host, append(old, data...), mode, owner, !r.NoSync)
}

// writeAtomic replaces host with data through a temporary file and a
// rename; durable flushes the file and its directory before returning.
func writeAtomic(host string, data []byte, mode fs.FileMode, owner Owner, durable bool) error {
	dir := filepath.Dir(host)
	tmp, err := createTemp(dir, "."+filepath.Base(host)+".provision-")
	if err != nil {
		return err
	}
	name := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(name)
		}
	}()
	if err := fill(tmp, data, mode, owner, host, durable); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := fault.At(fault.PointRename); err != nil {
		return &os.LinkError{Op: "rename", Old: name, New: host, Err: err}
	}
	if err := os.Rename(name, host); err != nil {
		return err
	}
	ok = true
	if !durable {
		return nil
	}
	return syncDir(dir)
}

// fill writes data into f, a new empty file, and gives it owner and mode;
// replaced, when set, is the file it is to replace, whose label, ACL and
// user xattrs carry over (xattr.go). durable flushes it.
func fill(f *os.File, data []byte, mode fs.FileMode, owner Owner, replaced string, durable bool) error {
	if err := fault.At(fault.PointWrite); err != nil {
		return &os.PathError{Op: "write", Path: f.Name(), Err: err}
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if owner.UID >= 0 || owner.GID >= 0 {
		if err := f.Chown(owner.UID, owner.GID); err != nil && !tolerableChownError(err) {
			return err
		}
	}
	// The xattrs after chown, which drops some, before chmod, which then
	// sets an ACL's mask to the mode asked for.
	if replaced != "" {
		if err := copyXattrs(replaced, f); err != nil {
			return err
		}
	}
	// Chmod after chown: chown clears setuid/setgid bits.
	if err := f.Chmod(toSyscallMode(mode)); err != nil {
		return err
	}
	if !durable {
		return nil
	}
	if err := fault.At(fault.PointFsync); err != nil {
		return &os.PathError{Op: "fsync", Path: f.Name(), Err: err}
	}
	return f.Sync()
}

// tolerableChownError lets unprivileged runs (tests, --root on a workstation
// copy) proceed when they cannot give files away; as root this never happens.
func tolerableChownError(err error) bool {
	return os.Geteuid() != 0 && errors.Is(err, fs.ErrPermission)
}

// FormatMode writes m as octal Unix permission bits, setuid, setgid and
// sticky included: "0755", "4755".
func FormatMode(m fs.FileMode) string {
	u := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		u |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		u |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		u |= 0o1000
	}
	return fmt.Sprintf("%04o", u)
}

// toSyscallMode accepts both Go's mode flags and raw Unix bits (0o4000 setuid,
// 0o2000 setgid, 0o1000 sticky): the model stores modes as Unix bits, as
// every config format writes them.
func toSyscallMode(m fs.FileMode) fs.FileMode {
	out := m & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
	if m&0o4000 != 0 {
		out |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		out |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		out |= fs.ModeSticky
	}
	return out
}

func syncDir(dir string) error {
	d, err := OpenFile(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	defer d.Close()
	// Some filesystems (tmpfs, overlay) reject fsync on directories.
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}

// mkdirParents creates the missing parents of host (already resolved inside
// the root) with mode, owned by root.
func (r *Root) mkdirParents(host string, mode fs.FileMode) error {
	parent := filepath.Dir(host)
	if r.knownHostDir(parent) {
		return nil
	}
	if st, err := os.Stat(parent); err == nil {
		if !st.IsDir() {
			return fmt.Errorf("%s is not a directory", parent)
		}
		return nil
	}
	if err := r.mkdirParents(parent, mode); err != nil {
		return err
	}
	if err := r.preserve(parent); err != nil {
		return err
	}
	if err := os.Mkdir(parent, mode); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil
		}
		return err
	}
	r.rememberMade(parent)
	return nil
}

// MkdirAll creates p and missing parents. Only the final directory gets mode
// and owner; parents get 0755 root:root, as install -d would.
func (r *Root) MkdirAll(p string, mode fs.FileMode, owner Owner) error {
	host, err := r.ResolveFollow(p)
	if err != nil {
		return err
	}
	if st, err := os.Stat(host); err == nil {
		if !st.IsDir() {
			return fmt.Errorf("%s: exists and is not a directory", p)
		}
		return nil
	}
	if err := r.mkdirParents(host, 0o755); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	if err := r.preserve(host); err != nil {
		return err
	}
	switch err := os.Mkdir(host, 0o700); {
	case err == nil:
		r.rememberMade(host)
	case !errors.Is(err, fs.ErrExist):
		return err
	}
	return r.setAttrs(host, mode, owner)
}

// Chown sets the owner of p (not following a final symlink).
func (r *Root) Chown(p string, owner Owner) error {
	host, err := r.Resolve(p)
	if err != nil {
		return err
	}
	if err := r.preserve(host); err != nil {
		return err
	}
	if err := os.Lchown(host, owner.UID, owner.GID); err != nil && !tolerableChownError(err) {
		return err
	}
	return nil
}

// Chmod sets the mode of p, following symlinks within the root.
func (r *Root) Chmod(p string, mode fs.FileMode) error {
	host, err := r.ResolveFollow(p)
	if err != nil {
		return err
	}
	if err := r.preserve(host); err != nil {
		return err
	}
	return os.Chmod(host, toSyscallMode(mode))
}

func (r *Root) setAttrs(host string, mode fs.FileMode, owner Owner) error {
	if owner.UID >= 0 || owner.GID >= 0 {
		if err := os.Lchown(host, owner.UID, owner.GID); err != nil && !tolerableChownError(err) {
			return err
		}
	}
	return os.Chmod(host, toSyscallMode(mode))
}

// Symlink makes p a symlink to target, replacing what is there atomically.
// The target is stored as given; it is not resolved on the host.
func (r *Root) Symlink(target, p string) error {
	return r.replaceWithLink(p, func(tmp string) error { return os.Symlink(target, tmp) })
}

// Link makes p a hard link to the existing file target (both inside the root).
func (r *Root) Link(target, p string) error {
	hostTarget, err := r.Resolve(target)
	if err != nil {
		return err
	}
	return r.replaceWithLink(p, func(tmp string) error { return os.Link(hostTarget, tmp) })
}

// replaceWithLink creates a link beside p with create, then renames it over p,
// so readers see either the old entry or the new link, never neither.
func (r *Root) replaceWithLink(p string, create func(tmp string) error) error {
	host, err := r.Resolve(p)
	if err != nil {
		return err
	}
	if st, err := os.Lstat(host); err == nil && st.IsDir() {
		return fmt.Errorf("%s: is a directory", p)
	}
	if err := r.mkdirParents(host, 0o755); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	if err := r.preserve(host); err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(host), "."+filepath.Base(host)+".provision-link")
	err = create(tmp)
	if errors.Is(err, fs.ErrExist) {
		// Left by a run that died between the two calls: ours to replace.
		os.Remove(tmp)
		err = create(tmp)
	}
	if err != nil {
		return err
	}
	err = os.Rename(tmp, host)
	// The link may be a symlink, or lead to one, where resolution found
	// nothing before: checkChange dropped the missing paths before the
	// link was made, and a lookup since may have noted its name again.
	r.forgetAbsent()
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if r.NoSync {
		return nil
	}
	return syncDir(filepath.Dir(host))
}

// Remove deletes p (a file, symlink or empty directory).
func (r *Root) Remove(p string) error {
	host, err := r.Resolve(p)
	if err != nil {
		return err
	}
	if err := r.preserve(host); err != nil {
		return err
	}
	r.forgetMade(host)
	return os.Remove(host)
}

// Join gives the in-root path for display and for chroot commands.
func Join(elem ...string) string { return path.Join(append([]string{"/"}, elem...)...) }
