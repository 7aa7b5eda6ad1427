package accounts

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/provision-dev/provision/modules/rootfs"
)

// DB is the target's account databases plus the settings that govern new
// accounts. Shadow and Gshadow are nil when the target has no such file
// (then, like shadow-utils, passwords live in passwd and group). SubUID and
// SubGID are nil when absent: useradd only assigns ranges when the file
// exists.
type DB struct {
	Passwd, Group, Shadow, Gshadow, SubUID, SubGID *File
	Defs                                           *LoginDefs
	Defaults                                       UseraddDefaults
	// Hash is how the target's chpasswd would hash a plain password.
	Hash HashMethod
	// Now gives "today" for last-change days; time.Now when nil.
	Now func() time.Time

	changed map[*File]bool
}

// Open loads every database of the target.
func Open(root *rootfs.Root) (*DB, error) {
	db := &DB{changed: map[*File]bool{}}
	var err error
	if db.Passwd, err = Load(root, PasswdKind); err != nil {
		return nil, err
	}
	if db.Group, err = Load(root, GroupKind); err != nil {
		return nil, err
	}
	for _, x := range []struct {
		dst  **File
		kind Kind
	}{{&db.Shadow, ShadowKind}, {&db.Gshadow, GshadowKind}, {&db.SubUID, SubUIDKind}, {&db.SubGID, SubGIDKind}} {
		if !root.Exists(x.kind.Path) {
			continue
		}
		if *x.dst, err = Load(root, x.kind); err != nil {
			return nil, err
		}
	}
	v, err := root.Memo("accounts settings", settingsFiles, func() (any, error) {
		var s settings
		var err error
		if s.defs, err = ReadLoginDefs(root); err != nil {
			return nil, err
		}
		if s.defaults, err = ReadUseraddDefaults(root); err != nil {
			return nil, err
		}
		if s.hash, err = ReadHashMethod(root, s.defs); err != nil {
			return nil, err
		}
		return s, nil
	})
	if err != nil {
		return nil, err
	}
	s := v.(settings)
	// LoginDefs is read-only once parsed: shared, not copied.
	db.Defs, db.Defaults, db.Hash = s.defs, s.defaults, s.hash
	return db, nil
}

// settings are what Open reads besides the databases, read once per
// change of settingsFiles.
type settings struct {
	defs     *LoginDefs
	defaults UseraddDefaults
	hash     HashMethod
}

// settingsFiles are the files (and PAM directories) settings come from.
var settingsFiles = append([]string{"/etc/login.defs", "/usr/etc/login.defs",
	"/etc/default/useradd", "/usr/etc/default/useradd"}, pamDirs...)

// Clone returns an independent copy, so a plan can simulate its steps.
func (db *DB) Clone() *DB {
	c := *db
	c.Passwd, c.Group = db.Passwd.Clone(), db.Group.Clone()
	c.Shadow, c.Gshadow = db.Shadow.Clone(), db.Gshadow.Clone()
	c.SubUID, c.SubGID = db.SubUID.Clone(), db.SubGID.Clone()
	c.changed = map[*File]bool{}
	return &c
}

func (db *DB) mark(f *File) {
	if db.changed == nil {
		db.changed = map[*File]bool{}
	}
	db.changed[f] = true
}

// Changed reports whether any database was modified since Open.
func (db *DB) Changed() bool { return len(db.changed) > 0 }

// today is the day number shadow stores as "last change" (days since the
// epoch, UTC); 0 would mean "must change", so like gettime()/SCALE users the
// impossible day 0 becomes -1 ("").
func (db *DB) today() int64 {
	now := time.Now
	if db.Now != nil {
		now = db.Now
	}
	return now().Unix() / 86400
}

// Save writes every changed database atomically, keeping the existing
// file's mode and owner, after saving the old content as "<file>-" like
// shadow-utils does. Call it with the lock held.
func (db *DB) Save(root *rootfs.Root) error {
	files := []*File{db.Passwd, db.Group, db.Shadow, db.Gshadow, db.SubUID, db.SubGID}
	// Each database and its backup: the journal keeps them with one flush.
	var paths []string
	for _, f := range files {
		if f != nil && db.changed[f] {
			paths = append(paths, f.Kind.Path, f.Kind.Path+"-")
		}
	}
	if err := root.PreserveAll(paths...); err != nil {
		return err
	}
	for _, f := range files {
		if f == nil || !db.changed[f] {
			continue
		}
		// commonio writes every line with its newline.
		f.noFinalNewline = false
		if err := writeDB(root, f); err != nil {
			return err
		}
	}
	db.changed = map[*File]bool{}
	return nil
}

func writeDB(root *rootfs.Root, f *File) error {
	p := f.Kind.Path
	mode, owner := defaultMode(root, f.Kind)
	st, err := root.Lstat(p)
	switch {
	case err == nil && st.Mode().IsRegular():
		mode = st.Mode().Perm()
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			owner = rootfs.Owner{UID: int(sys.Uid), GID: int(sys.Gid)}
		}
		// The old file itself becomes the backup ("passwd-"), as
		// shadow-utils' copy of it would: the same bytes, mode, owner,
		// label and times, for one link instead of a read and a write.
		// The new file then replaces the name, not the inode.
		if err := root.Link(p, p+"-"); err != nil {
			return fmt.Errorf("back up %s: %w", p, err)
		}
	case err == nil:
		// A symbolic link (or worse): back up what it leads to.
		old, err := root.ReadFile(p)
		if err != nil {
			return fmt.Errorf("read %s: %w", p, err)
		}
		if st, err = root.Stat(p); err != nil {
			return err
		}
		mode = st.Mode().Perm()
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			owner = rootfs.Owner{UID: int(sys.Uid), GID: int(sys.Gid)}
		}
		if err := root.WriteFile(p+"-", old, mode, owner); err != nil {
			return fmt.Errorf("back up %s: %w", p, err)
		}
	case errors.Is(err, fs.ErrNotExist):
	default:
		return fmt.Errorf("read %s: %w", p, err)
	}
	if err := root.WriteFile(p, f.Bytes(), mode, owner); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}

// defaultMode is what a newly created database gets: shadow files 0640
// root:shadow (Debian, SUSE), or 0000 root:root where the target has no
// shadow group (Fedora); the rest 0644 root:root.
func defaultMode(root *rootfs.Root, k Kind) (fs.FileMode, rootfs.Owner) {
	if k.Path != ShadowKind.Path && k.Path != GshadowKind.Path {
		return 0o644, rootfs.RootOwner
	}
	if gid, err := LookupGroup(root, "shadow"); err == nil {
		return 0o640, rootfs.Owner{UID: 0, GID: gid}
	}
	return 0, rootfs.RootOwner
}

// Paths are the files a change of the databases may write: each
// database, its backup ("passwd-") and the lock file.
func Paths() []string {
	var out []string
	for _, k := range []Kind{PasswdKind, GroupKind, ShadowKind, GshadowKind, SubUIDKind, SubGIDKind} {
		out = append(out, k.Path, k.Path+"-")
	}
	return append(out, lockPath)
}

// lockPath is lckpwdf(3)'s lock file.
const lockPath = "/etc/.pwd.lock"

// LockTimeout is how long Lock waits for another holder, as glibc's
// lckpwdf does.
var LockTimeout = 15 * time.Second

// Lock takes the target's /etc/.pwd.lock the way lckpwdf(3) does: the file
// is created 0600 when missing and a write lock is set on it with fcntl, so
// a passwd, useradd or chpasswd running against the same root waits for
// us (and we for it). The returned function releases the lock.
func Lock(root *rootfs.Root) (unlock func() error, err error) {
	const p = lockPath
	if !root.Exists(p) {
		// Through rootfs so a transaction journal records the new file.
		if err := root.WriteFile(p, nil, 0o600, rootfs.RootOwner); err != nil {
			return nil, fmt.Errorf("create %s: %w", p, err)
		}
	}
	host, err := root.Resolve(p)
	if err != nil {
		return nil, err
	}
	// O_NOFOLLOW: a symlink planted at the lock path is refused.
	fd, err := unix.Open(host, unix.O_WRONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", p, err)
	}
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0}
	deadline := time.Now().Add(LockTimeout)
	for {
		err = unix.FcntlFlock(uintptr(fd), unix.F_SETLK, &lk)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EACCES) && !errors.Is(err, unix.EINTR) {
			unix.Close(fd)
			return nil, fmt.Errorf("lock %s: %w", p, err)
		}
		if time.Now().After(deadline) {
			unix.Close(fd)
			return nil, fmt.Errorf("lock %s: held by another process for %v: %w", p, LockTimeout, os.ErrDeadlineExceeded)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return func() error {
		// Closing the descriptor drops the fcntl lock.
		return unix.Close(fd)
	}, nil
}

// Update runs fn on freshly loaded databases under the lock and saves what
// it changed: the shape of every apply step.
func Update(root *rootfs.Root, now func() time.Time, fn func(db *DB) error) error {
	unlock, err := Lock(root)
	if err != nil {
		return err
	}
	defer unlock()
	db, err := Open(root)
	if err != nil {
		return err
	}
	db.Now = now
	if err := fn(db); err != nil {
		return err
	}
	return db.Save(root)
}
