package accounts

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/provision-dev/provision/modules/rootfs"
)

// HomeMode is the mode useradd gives a new home: login.defs HOME_MODE, else
// 0777 minus UMASK (default 022).
func HomeMode(d *LoginDefs) fs.FileMode {
	umask := d.Num("UMASK", 0o22)
	return fs.FileMode(d.Num("HOME_MODE", 0o777&^umask) & 0o7777)
}

// SkelDirs are the skeleton directories copied into a new home, in order:
// SKEL from /etc/default/useradd (default /etc/skel), then /usr/etc/skel for
// files the first one lacks (hermetic-usr systems ship only the latter).
func (db *DB) SkelDirs() []string {
	dirs := []string{db.Defaults.Skel}
	if path.Clean(db.Defaults.Skel) != "/usr/etc/skel" {
		dirs = append(dirs, "/usr/etc/skel")
	}
	return dirs
}

// CreateHome does what useradd -m does after writing the databases:
// missing parents are created 0755 root:root, the home itself owned by
// uid:gid with HomeMode, and the skeleton copied in with the user as owner
// (modes, symlinks and modification times kept). An existing home is left
// untouched, skeleton included, as useradd does; created reports which.
func CreateHome(root *rootfs.Root, home string, uid, gid int, mode fs.FileMode, skel []string) (created bool, err error) {
	if !strings.HasPrefix(home, "/") {
		return false, fmt.Errorf("home %q: not an absolute path", home)
	}
	if root.Exists(home) {
		return false, nil
	}
	owner := rootfs.Owner{UID: uid, GID: gid}
	if err := root.MkdirAll(home, mode, owner); err != nil {
		return false, fmt.Errorf("create home %s: %w", home, err)
	}
	copied := map[string]bool{}
	for _, dir := range skel {
		st, err := root.Stat(dir)
		if err != nil || !st.IsDir() {
			continue
		}
		entries, err := readSkel(root, dir)
		if err == nil {
			err = copyTree(root, entries, home, owner, copied)
		}
		if err != nil {
			return true, fmt.Errorf("copy %s to %s: %w", dir, home, err)
		}
	}
	return true, nil
}

// skelEntry is an entry of a skeleton directory, as read once per run
// (readSkel) for every home it is copied into.
type skelEntry struct {
	name     string
	info     fs.FileInfo // from lstat: type, mode, times
	data     []byte      // a regular file's content
	target   string      // a symlink's
	children []skelEntry // a directory's, in ReadDir order
}

// readSkel reads the skeleton directory src (in the target) with its
// files' contents. It is memoized: a run that creates several homes reads
// the skeleton once; a change below src through the Root, or a program
// run in the target, drops it (Root.Memo).
func readSkel(root *rootfs.Root, src string) ([]skelEntry, error) {
	v, err := root.Memo("skeleton "+src, []string{src}, func() (any, error) { return readSkelDir(root, src) })
	if err != nil {
		return nil, err
	}
	return v.([]skelEntry), nil
}

func readSkelDir(root *rootfs.Root, src string) ([]skelEntry, error) {
	host, err := root.ResolveFollow(src)
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(host)
	if err != nil {
		return nil, err
	}
	out := make([]skelEntry, 0, len(entries))
	for _, e := range entries {
		s := path.Join(src, e.Name())
		st, err := root.Lstat(s)
		if err != nil {
			return nil, err
		}
		se := skelEntry{name: e.Name(), info: st}
		switch {
		case st.Mode()&fs.ModeSymlink != 0:
			h, err := root.Resolve(s)
			if err != nil {
				return nil, err
			}
			if se.target, err = os.Readlink(h); err != nil {
				return nil, err
			}
		case st.IsDir():
			if se.children, err = readSkelDir(root, s); err != nil {
				return nil, err
			}
		case st.Mode().IsRegular():
			if se.data, err = root.ReadFile(s); err != nil {
				return nil, err
			}
		}
		out = append(out, se)
	}
	return out, nil
}

// copyTree copies the entries of a skeleton (readSkel) into dst. Names
// already copied from an earlier skeleton are skipped.
func copyTree(root *rootfs.Root, entries []skelEntry, dst string, owner rootfs.Owner, copied map[string]bool) error {
	for _, e := range entries {
		d := path.Join(dst, e.name)
		if copied[d] {
			continue
		}
		copied[d] = true
		mode := e.info.Mode()
		perm := mode.Perm() | mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)
		switch {
		case mode&fs.ModeSymlink != 0:
			if err := root.Symlink(e.target, d); err != nil {
				return err
			}
			if err := root.Chown(d, owner); err != nil {
				return err
			}
		case mode.IsDir():
			if err := root.MkdirAll(d, perm, owner); err != nil {
				return err
			}
			if err := copyTree(root, e.children, d, owner, copied); err != nil {
				return err
			}
		case mode.IsRegular():
			if err := root.WriteFile(d, e.data, perm, owner); err != nil {
				return err
			}
		default:
			// Device nodes and fifos in a skeleton are not copied (their
			// names are taken all the same).
			continue
		}
		if err := keepTimes(root, d, e.info); err != nil {
			return err
		}
	}
	return nil
}

// keepTimes gives the copy the source's access and modification times, as
// useradd's copy_tree does.
func keepTimes(root *rootfs.Root, p string, st fs.FileInfo) error {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	h, err := root.Resolve(p)
	if err != nil {
		return err
	}
	ts := []unix.Timespec{unix.NsecToTimespec(sys.Atim.Nano()), unix.NsecToTimespec(sys.Mtim.Nano())}
	return unix.UtimesNanoAt(unix.AT_FDCWD, h, ts, unix.AT_SYMLINK_NOFOLLOW)
}

// CreateMailSpool makes MAIL_DIR/name (default /var/mail) when
// /etc/default/useradd says CREATE_MAIL_SPOOL=yes: owned by the user and the
// "mail" group with mode 0660, or by the user's group with 0600 when the
// target has no "mail" group.
func (db *DB) CreateMailSpool(root *rootfs.Root, name string, uid, gid int) error {
	if !db.Defaults.CreateMailSpool {
		return nil
	}
	dir, ok := db.Defs.Str("MAIL_DIR")
	if !ok {
		dir = "/var/mail"
	}
	p := path.Join(dir, name)
	if root.Exists(p) {
		return nil
	}
	mode := fs.FileMode(0o600)
	if l := db.Group.Lookup("mail"); l != nil {
		gid, mode = l.Int(GrGID), 0o660
	}
	if err := root.WriteFile(p, nil, mode, rootfs.Owner{UID: uid, GID: gid}); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create mail spool %s: %w", p, err)
	}
	return nil
}
