// Package btrfs is the small part of the btrfs ioctl interface the
// transaction needs: subvolume ids, snapshot create and delete, the read-only
// flag and the default subvolume. It talks to the kernel directly through
// golang.org/x/sys/unix, so the initrd needs neither cgo nor btrfs-progs.
package btrfs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/provision-dev/provision/modules/fault"
)

// SuperMagic is the f_type statfs reports for btrfs.
const SuperMagic = 0x9123683E

// TopLevelID is the id of the filesystem tree, the subvolume every other one
// hangs from (mounted with subvolid=5).
const TopLevelID = 5

// firstFreeObjectID is the inode number of every subvolume's root directory.
const firstFreeObjectID = 256

const (
	ioctlMagic = 0x94
	// The argument structs below are all 4096 bytes, as in linux/btrfs.h.
	argSize = 4096
	// nameMax is BTRFS_SUBVOL_NAME_MAX (4039) + 1 for the NUL.
	volNameMax   = 4087 // btrfs_ioctl_vol_args: 8-byte fd, then the name
	volV2NameMax = 4039

	subvolRDONLY = 1 << 1

	rootTreeObjectID    = 1
	rootTreeDirObjectID = 6
	dirItemKey          = 84
)

// ioc encodes an ioctl request number the way asm-generic/ioctl.h does
// (x86, arm and arm64 use the generic encoding).
func ioc(dir, nr, size uintptr) uintptr {
	return dir<<30 | size<<16 | ioctlMagic<<8 | nr
}

const (
	iocWrite = 1
	iocRead  = 2
)

var (
	iocSnapDestroy    = ioc(iocWrite, 15, argSize)
	iocTreeSearch     = ioc(iocWrite|iocRead, 17, argSize)
	iocInoLookup      = ioc(iocWrite|iocRead, 18, argSize)
	iocDefaultSubvol  = ioc(iocWrite, 19, 8)
	iocSnapCreateV2   = ioc(iocWrite, 23, argSize)
	iocSubvolGetFlags = ioc(iocRead, 25, 8)
	iocSubvolSetFlags = ioc(iocWrite, 26, 8)
)

// faultPoints names the ioctls that change the filesystem, for fault
// injection; the read-only ones (tree search, lookups) are not asked.
var faultPoints = map[uintptr]string{
	iocSnapCreateV2:   fault.PointBtrfsSnapshot,
	iocSnapDestroy:    fault.PointBtrfsDelete,
	iocDefaultSubvol:  fault.PointBtrfsDefault,
	iocSubvolSetFlags: fault.PointBtrfsSetFlags,
}

func ioctl(fd int, req uintptr, arg unsafe.Pointer) error {
	if p, ok := faultPoints[req]; ok {
		if err := fault.At(p); err != nil {
			return err
		}
	}
	for {
		_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(arg))
		switch e {
		case 0:
			return nil
		case unix.EINTR:
			continue
		default:
			return e
		}
	}
}

func openDir(path string) (int, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return fd, nil
}

// IsSubvolume reports whether path is the root directory of a btrfs
// subvolume (btrfs gives every subvolume root inode 256).
func IsSubvolume(path string) (bool, error) {
	var fs unix.Statfs_t
	if err := unix.Statfs(path, &fs); err != nil {
		return false, &os.PathError{Op: "statfs", Path: path, Err: err}
	}
	if uint32(fs.Type) != SuperMagic {
		return false, nil
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return false, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	return st.Ino == firstFreeObjectID && st.Mode&unix.S_IFMT == unix.S_IFDIR, nil
}

type inoLookupArgs struct {
	TreeID   uint64
	ObjectID uint64
	Name     [argSize - 16]byte
}

// SubvolID returns the id of the subvolume that contains path.
func SubvolID(path string) (uint64, error) {
	fd, err := openDir(path)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	// Tree id 0 means "the tree this fd is in": the kernel fills it in.
	args := inoLookupArgs{ObjectID: firstFreeObjectID}
	if err := ioctl(fd, iocInoLookup, unsafe.Pointer(&args)); err != nil {
		return 0, fmt.Errorf("btrfs ino lookup %s: %w", path, err)
	}
	return args.TreeID, nil
}

type volArgsV2 struct {
	Fd      int64
	TransID uint64
	Flags   uint64
	Unused  [4]uint64
	Name    [volV2NameMax + 1]byte
}

type volArgs struct {
	Fd   int64
	Name [volNameMax + 1]byte
}

func checkName(name string, max int) error {
	if name == "" || name == "." || name == ".." || len(name) > max || bytes.ContainsAny([]byte(name), "/\x00") {
		return fmt.Errorf("btrfs: invalid subvolume name %q", name)
	}
	return nil
}

// Snapshot creates a writable snapshot of the subvolume at src, named name
// inside the directory dstDir (which must be on the same filesystem).
func Snapshot(src, dstDir, name string) error {
	if err := checkName(name, volV2NameMax); err != nil {
		return err
	}
	sfd, err := openDir(src)
	if err != nil {
		return err
	}
	defer unix.Close(sfd)
	dfd, err := openDir(dstDir)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	args := volArgsV2{Fd: int64(sfd)}
	copy(args.Name[:], name)
	if err := ioctl(dfd, iocSnapCreateV2, unsafe.Pointer(&args)); err != nil {
		return fmt.Errorf("btrfs snapshot %s -> %s: %w", src, filepath.Join(dstDir, name), err)
	}
	return nil
}

// Delete removes the subvolume name inside the directory parent. The kernel
// refuses to delete the default subvolume or one that is mounted.
func Delete(parent, name string) error {
	if err := checkName(name, volNameMax); err != nil {
		return err
	}
	fd, err := openDir(parent)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var args volArgs
	copy(args.Name[:], name)
	if err := ioctl(fd, iocSnapDestroy, unsafe.Pointer(&args)); err != nil {
		return fmt.Errorf("btrfs delete subvolume %s: %w", filepath.Join(parent, name), err)
	}
	return nil
}

// ReadOnly reports whether the subvolume at path has the read-only flag.
func ReadOnly(path string) (bool, error) {
	fd, err := openDir(path)
	if err != nil {
		return false, err
	}
	defer unix.Close(fd)
	var flags uint64
	if err := ioctl(fd, iocSubvolGetFlags, unsafe.Pointer(&flags)); err != nil {
		return false, fmt.Errorf("btrfs get flags %s: %w", path, err)
	}
	return flags&subvolRDONLY != 0, nil
}

// SetReadOnly sets or clears the read-only flag of the subvolume at path.
func SetReadOnly(path string, ro bool) error {
	fd, err := openDir(path)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var flags uint64
	if err := ioctl(fd, iocSubvolGetFlags, unsafe.Pointer(&flags)); err != nil {
		return fmt.Errorf("btrfs get flags %s: %w", path, err)
	}
	if ro {
		flags |= subvolRDONLY
	} else {
		flags &^= subvolRDONLY
	}
	if err := ioctl(fd, iocSubvolSetFlags, unsafe.Pointer(&flags)); err != nil {
		return fmt.Errorf("btrfs set flags %s: %w", path, err)
	}
	return nil
}

// SetDefault makes subvolume id the default of the filesystem that path is on.
// This single ioctl is atomic: it is the transaction's commit point.
func SetDefault(path string, id uint64) error {
	fd, err := openDir(path)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := ioctl(fd, iocDefaultSubvol, unsafe.Pointer(&id)); err != nil {
		return fmt.Errorf("btrfs set default subvolume %d: %w", id, err)
	}
	return nil
}

type searchKey struct {
	TreeID                   uint64
	MinObjectID, MaxObjectID uint64
	MinOffset, MaxOffset     uint64
	MinTransID, MaxTransID   uint64
	MinType, MaxType         uint32
	NrItems                  uint32
	Unused                   uint32
	Unused1                  [4]uint64
}

type searchArgs struct {
	Key searchKey
	Buf [argSize - unsafe.Sizeof(searchKey{})]byte
}

const searchHeaderSize = 32 // transid, objectid, offset u64; type, len u32

// dirItemSize is a btrfs_dir_item before its name and data: location
// {objectid u64, type u8, offset u64}, transid u64, data_len u16,
// name_len u16, type u8.
const dirItemSize = 30

// searchResults walks n tree search results in buf, each a header
// (searchHeaderSize) and its item, giving fn the header's offset and type
// and the item; fn returning true ends the walk.
func searchResults(buf []byte, n int, fn func(offset uint64, typ uint32, item []byte) (bool, error)) error {
	le := binary.LittleEndian
	for i := 0; i < n; i++ {
		if len(buf) < searchHeaderSize {
			return errors.New("short tree search result")
		}
		offset, typ := le.Uint64(buf[16:24]), le.Uint32(buf[24:28])
		itemLen := int(le.Uint32(buf[28:32]))
		buf = buf[searchHeaderSize:]
		if itemLen > len(buf) {
			return fmt.Errorf("bad item length %d", itemLen)
		}
		item := buf[:itemLen]
		buf = buf[itemLen:]
		if stop, err := fn(offset, typ, item); stop || err != nil {
			return err
		}
	}
	return nil
}

// Default returns the id of the default subvolume of the filesystem that
// path is on, read from the "default" entry of the root tree directory, as
// btrfs-progs does (there is no get-default ioctl).
func Default(path string) (uint64, error) {
	fd, err := openDir(path)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	var args searchArgs
	args.Key = searchKey{
		TreeID:      rootTreeObjectID,
		MinObjectID: rootTreeDirObjectID, MaxObjectID: rootTreeDirObjectID,
		MaxOffset: ^uint64(0), MaxTransID: ^uint64(0),
		MinType: dirItemKey, MaxType: dirItemKey,
		NrItems: 1,
	}
	if err := ioctl(fd, iocTreeSearch, unsafe.Pointer(&args)); err != nil {
		return 0, fmt.Errorf("btrfs tree search %s: %w", path, err)
	}
	if args.Key.NrItems == 0 {
		return TopLevelID, nil
	}
	return parseDefaultItem(args.Buf[:])
}

// parseDefaultItem decodes the first search result: a btrfs_dir_item whose
// location key's object id is the default subvolume.
func parseDefaultItem(buf []byte) (uint64, error) {
	if len(buf) < searchHeaderSize {
		return 0, errors.New("btrfs: short tree search result")
	}
	le := binary.LittleEndian
	itemLen := int(le.Uint32(buf[28:32]))
	item := buf[searchHeaderSize:]
	if itemLen < dirItemSize || itemLen > len(item) {
		return 0, fmt.Errorf("btrfs: bad dir item length %d", itemLen)
	}
	nameLen := int(le.Uint16(item[27:29]))
	if dirItemSize+nameLen > itemLen {
		return 0, fmt.Errorf("btrfs: bad dir item name length %d", nameLen)
	}
	if name := string(item[dirItemSize : dirItemSize+nameLen]); name != "default" {
		return 0, fmt.Errorf("btrfs: unexpected root dir item %q", name)
	}
	return le.Uint64(item[0:8]), nil
}

// rootRefKey is BTRFS_ROOT_REF_KEY: an item (parent id, ROOT_REF, child id)
// in the root tree for every subvolume directly inside another.
const rootRefKey = 156

// HasChildSubvolumes reports whether the subvolume at path contains other
// subvolumes. A snapshot leaves those out (they show as empty directories),
// so a subvolume with children cannot be replaced by a snapshot of itself
// without losing them. It needs CAP_SYS_ADMIN (a root tree search).
func HasChildSubvolumes(path string) (bool, error) {
	id, err := SubvolID(path)
	if err != nil {
		return false, err
	}
	fd, err := openDir(path)
	if err != nil {
		return false, err
	}
	defer unix.Close(fd)
	var args searchArgs
	args.Key = searchKey{
		TreeID:      rootTreeObjectID,
		MinObjectID: id, MaxObjectID: id,
		MaxOffset: ^uint64(0), MaxTransID: ^uint64(0),
		MinType: rootRefKey, MaxType: rootRefKey,
		NrItems: 1,
	}
	if err := ioctl(fd, iocTreeSearch, unsafe.Pointer(&args)); err != nil {
		return false, fmt.Errorf("btrfs tree search %s: %w", path, err)
	}
	return args.Key.NrItems > 0, nil
}

// Child is a subvolume directly inside another one.
type Child struct {
	ID   uint64
	Path string // relative to the parent subvolume's root, e.g. "etc"
}

// rootRefSize is struct btrfs_root_ref: dirid u64, sequence u64, name_len u16.
const rootRefSize = 18

// ChildSubvolumes lists the subvolumes directly inside the subvolume at
// path, in the order of their ids (their creation order). A snapshot of path
// leaves each of them out as an empty directory. It needs CAP_SYS_ADMIN.
func ChildSubvolumes(path string) ([]Child, error) {
	id, err := SubvolID(path)
	if err != nil {
		return nil, err
	}
	fd, err := openDir(path)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	var out []Child
	minOffset := uint64(0)
	for {
		var args searchArgs
		args.Key = searchKey{
			TreeID:      rootTreeObjectID,
			MinObjectID: id, MaxObjectID: id,
			MinOffset: minOffset, MaxOffset: ^uint64(0), MaxTransID: ^uint64(0),
			MinType: rootRefKey, MaxType: rootRefKey,
			NrItems: 4096,
		}
		if err := ioctl(fd, iocTreeSearch, unsafe.Pointer(&args)); err != nil {
			return nil, fmt.Errorf("btrfs tree search %s: %w", path, err)
		}
		refs, err := parseRootRefs(args.Buf[:], int(args.Key.NrItems))
		if err != nil {
			return nil, fmt.Errorf("btrfs: %s: %w", path, err)
		}
		if len(refs) == 0 {
			return out, nil
		}
		for _, r := range refs {
			dir, err := inoPath(fd, id, r.dirID)
			if err != nil {
				return nil, fmt.Errorf("btrfs: %s: child %d: %w", path, r.child, err)
			}
			out = append(out, Child{ID: r.child, Path: dir + r.name})
			minOffset = r.child + 1
		}
		if minOffset == 0 { // wrapped: the last possible id was listed
			return out, nil
		}
	}
}

type rootRef struct {
	child, dirID uint64
	name         string
}

// parseRootRefs decodes n tree search results of ROOT_REF items.
func parseRootRefs(buf []byte, n int) ([]rootRef, error) {
	le := binary.LittleEndian
	var out []rootRef
	err := searchResults(buf, n, func(offset uint64, typ uint32, item []byte) (bool, error) {
		if typ != rootRefKey {
			return false, nil
		}
		if len(item) < rootRefSize {
			return false, fmt.Errorf("bad root ref length %d", len(item))
		}
		nameLen := int(le.Uint16(item[16:18]))
		if rootRefSize+nameLen > len(item) || nameLen == 0 {
			return false, fmt.Errorf("bad root ref name length %d", nameLen)
		}
		name := string(item[rootRefSize : rootRefSize+nameLen])
		if name == "." || name == ".." || bytes.ContainsAny([]byte(name), "/\x00") {
			return false, fmt.Errorf("bad root ref name %q", name)
		}
		out = append(out, rootRef{child: offset, dirID: le.Uint64(item[0:8]), name: name})
		return false, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// inoPath returns the path of directory inode dirID inside subvolume tree,
// relative to its root: "" for the root itself, else "a/b/".
func inoPath(fd int, tree, dirID uint64) (string, error) {
	if dirID == firstFreeObjectID {
		return "", nil
	}
	args := inoLookupArgs{TreeID: tree, ObjectID: dirID}
	if err := ioctl(fd, iocInoLookup, unsafe.Pointer(&args)); err != nil {
		return "", fmt.Errorf("ino lookup %d: %w", dirID, err)
	}
	n := bytes.IndexByte(args.Name[:], 0)
	if n < 0 {
		n = len(args.Name)
	}
	p := string(args.Name[:n])
	for _, part := range strings.Split(strings.TrimSuffix(p, "/"), "/") {
		if part == "" || part == "." || part == ".." {
			return "", fmt.Errorf("ino lookup %d: bad path %q", dirID, p)
		}
	}
	return p, nil
}

// DeleteTree deletes the subvolume at parent/name after every subvolume
// nested inside it, deepest first (the kernel refuses to delete a subvolume
// that still contains others).
func DeleteTree(parent, name string) error {
	p := filepath.Join(parent, name)
	kids, err := ChildSubvolumes(p)
	if err != nil {
		return err
	}
	if len(kids) > 0 {
		// A read-only parent refuses the unlinks (EROFS); it is going
		// anyway.
		if ro, err := ReadOnly(p); err != nil {
			return err
		} else if ro {
			if err := SetReadOnly(p, false); err != nil {
				return err
			}
		}
	}
	for i := len(kids) - 1; i >= 0; i-- {
		k := filepath.Join(p, filepath.FromSlash(kids[i].Path))
		if err := DeleteTree(filepath.Dir(k), filepath.Base(k)); err != nil {
			return err
		}
	}
	return Delete(parent, name)
}

// TopLevelHas reports whether the top-level subvolume's root directory has
// an entry called name, read from the filesystem tree of subvolume 5 with a
// tree search on path, any directory of the filesystem: the top level need
// not be mounted. Recovery asks this on every boot, and mounting the top
// level only to find its state directory absent cost a mount and an
// unmount each time. It needs CAP_SYS_ADMIN.
func TopLevelHas(path, name string) (bool, error) {
	fd, err := openDir(path)
	if err != nil {
		return false, err
	}
	defer unix.Close(fd)
	minOffset := uint64(0)
	for {
		var args searchArgs
		args.Key = searchKey{
			TreeID:      TopLevelID,
			MinObjectID: firstFreeObjectID, MaxObjectID: firstFreeObjectID, // the subvolume's root directory
			MinOffset: minOffset, MaxOffset: ^uint64(0), MaxTransID: ^uint64(0),
			MinType: dirItemKey, MaxType: dirItemKey,
			NrItems: 4096,
		}
		if err := ioctl(fd, iocTreeSearch, unsafe.Pointer(&args)); err != nil {
			return false, fmt.Errorf("btrfs tree search %s: %w", path, err)
		}
		found, last, err := dirItemsHold(args.Buf[:], int(args.Key.NrItems), name)
		if err != nil || found {
			return found, err
		}
		if args.Key.NrItems == 0 || last == ^uint64(0) {
			return false, nil
		}
		minOffset = last + 1
	}
}

// dirItemsHold reports whether n tree search results of DIR_ITEM items
// name an entry name, and the offset (the names' hash) of the last one.
// One item holds every entry whose name hashes alike, one after another.
func dirItemsHold(buf []byte, n int, name string) (found bool, last uint64, err error) {
	le := binary.LittleEndian
	err = searchResults(buf, n, func(offset uint64, _ uint32, item []byte) (bool, error) {
		last = offset
		for len(item) > 0 {
			if len(item) < dirItemSize {
				return false, fmt.Errorf("short dir item (%d bytes)", len(item))
			}
			dataLen, nameLen := int(le.Uint16(item[25:27])), int(le.Uint16(item[27:29]))
			if dirItemSize+nameLen+dataLen > len(item) {
				return false, fmt.Errorf("bad dir item name length %d", nameLen)
			}
			if string(item[dirItemSize:dirItemSize+nameLen]) == name {
				found = true
				return true, nil
			}
			item = item[dirItemSize+nameLen+dataLen:]
		}
		return false, nil
	})
	if err != nil {
		return false, 0, fmt.Errorf("btrfs: %w", err)
	}
	return found, last, nil
}
