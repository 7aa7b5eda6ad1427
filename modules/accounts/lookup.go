package accounts

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/provision-dev/provision/modules/rootfs"
)

// ErrNotFound is returned (wrapped) when a user or group does not exist in
// the target.
var ErrNotFound = errors.New("not found")

// Load reads one database from the target, a copy the caller may change.
// A missing file is an empty database, as it is for shadow-utils on a
// fresh root.
func Load(root *rootfs.Root, kind Kind) (*File, error) {
	f, err := loadShared(root, kind)
	if err != nil {
		return nil, err
	}
	return f.Clone(), nil
}

// loadShared is the database as the target holds it now, read once per
// change of the file (rootfs.Root.Memo): the ssh and files modules resolve
// an owner per key and per file. Nobody may change what it returns.
func loadShared(root *rootfs.Root, kind Kind) (*File, error) {
	v, err := root.Memo("accounts "+kind.Path, []string{kind.Path}, func() (any, error) {
		data, err := root.ReadFile(kind.Path)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return Parse(kind, nil), nil
			}
			return nil, fmt.Errorf("read %s: %w", kind.Path, err)
		}
		return Parse(kind, data), nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*File), nil
}

// LookupUser resolves a user name — or, when no user has that name, a
// numeric string — against the target's /etc/passwd. For a number with no
// passwd entry it returns that uid with gid -1 and an empty home (chown
// accepts unknown numeric ids; the caller keeps the group as it is).
func LookupUser(root *rootfs.Root, name string) (uid, gid int, home string, err error) {
	f, err := loadShared(root, PasswdKind)
	if err != nil {
		return -1, -1, "", err
	}
	return lookupUser(f, name)
}

// LookupUserIn is LookupUser on a passwd already loaded.
func LookupUserIn(f *File, name string) (uid, gid int, home string, err error) {
	return lookupUser(f, name)
}

func lookupUser(f *File, name string) (uid, gid int, home string, err error) {
	if l := f.Lookup(name); l != nil {
		return l.Int(PwUID), l.Int(PwGID), l.Fields[PwDir], nil
	}
	if n := parseID(name); n >= 0 {
		if l := f.LookupID(PwUID, n); l != nil {
			return n, l.Int(PwGID), l.Fields[PwDir], nil
		}
		return n, -1, "", nil
	}
	return -1, -1, "", fmt.Errorf("user %q in %s: %w", name, PasswdKind.Path, ErrNotFound)
}

// LookupGroup resolves a group name — or, when no group has that name, a
// numeric string — against the target's /etc/group.
func LookupGroup(root *rootfs.Root, name string) (gid int, err error) {
	f, err := loadShared(root, GroupKind)
	if err != nil {
		return -1, err
	}
	return lookupGroup(f, name)
}

func lookupGroup(f *File, name string) (int, error) {
	if l := f.Lookup(name); l != nil {
		return l.Int(GrGID), nil
	}
	if n := parseID(name); n >= 0 {
		return n, nil
	}
	return -1, fmt.Errorf("group %q in %s: %w", name, GroupKind.Path, ErrNotFound)
}
