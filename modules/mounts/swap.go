package mounts

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/modules/fstab"
	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/provision/config"
)

// swapDir is where a swap file goes on a snapper root instead of the root
// subvolume: /var is a subvolume of its own there (openSUSE's @/var), which
// snapper leaves out of its snapshots. A swap file in the root subvolume
// would break the next snapshot: the kernel refuses to snapshot a
// subvolume that holds an active swap file, and one whose extents a
// snapshot shares is refused by swapon.
const swapDir = "/var/lib/swap"

// planSwap returns the swap file step (none when the file is already
// there) and where the file goes ("" when it cannot go anywhere).
func planSwap(s *config.Swap, root *rootfs.Root) ([]modules.Step, string, error) {
	size := "size auto (cloud-init's suggested_swapsize: from the memory, at most maxsize and a quarter of the free space; decided when applied)"
	if !s.Auto {
		if s.Size < 1<<20 {
			// cloud-init allocates whole MiB: under one is no swap file.
			return []modules.Step{warnStep(s, s.Filename, "size "+strconv.FormatInt(s.Size, 10)+" is under 1 MiB, cloud-init's unit: no swap file")}, "", nil
		}
		size = humanBytes(s.Size &^ (1<<20 - 1))
	}
	what := size + ", NOCOW and fully allocated on btrfs, 0600, swap signature; activated at boot by its fstab line"
	if root == nil {
		return []modules.Step{{Module: module, Action: "create swap file", Target: s.Filename, Origin: s.Origin,
			Detail: what + "; where it goes is checked against the target's fstab (--root)"}}, s.Filename, nil
	}
	p, note, err := placeSwap(s.Filename, root)
	if err != nil {
		return nil, "", fmt.Errorf("%s: swap: %w", s.Origin, err)
	}
	if p == "" {
		return []modules.Step{warnStep(s, s.Filename, note)}, "", nil
	}
	if note != "" {
		what = note + "; " + what
	}
	if haveSwap(root, p, s) {
		return nil, p, nil
	}
	return []modules.Step{{
		Module: module, Action: "create swap file", Target: p, Origin: s.Origin, Detail: what,
		Apply: func(_ context.Context, env *modules.Env) error {
			return makeSwap(env, s, p)
		},
	}}, p, nil
}

func warnStep(s *config.Swap, target, why string) modules.Step {
	return modules.Step{
		Module: module, Action: "no swap file: warning", Target: target, Origin: s.Origin, Detail: why,
		Apply: func(_ context.Context, env *modules.Env) error {
			if env.Console != nil {
				fmt.Fprintf(env.Console, "[WARN] swap: %s: %s [%s]\n", target, why, s.Origin)
			}
			return nil
		},
	}
}

// placeSwap decides where the swap file goes from the target's fstab: as
// asked, unless that is the root subvolume of a snapper layout (see
// swapDir); then into /var when /var is mounted from elsewhere, else
// nowhere, which note explains.
func placeSwap(want string, root *rootfs.Root) (p, note string, err error) {
	b, err := readFstab(root)
	if err != nil {
		return "", "", err
	}
	entries, _ := fstab.Parse(fstabPath, b) // readFstab checked it
	m, ok := mountFor(entries, want)
	snapper := root.Exists("/.snapshots")
	for _, e := range entries {
		snapper = snapper || path.Clean(e.File) == "/.snapshots"
	}
	if !ok || path.Clean(m.File) != "/" || m.VfsType != "btrfs" || !snapper {
		return want, "", nil
	}
	for _, e := range entries {
		if path.Clean(e.File) == "/var" {
			return path.Join(swapDir, path.Base(want)), "placed at " + path.Join(swapDir, path.Base(want)) + " instead of " + want +
				": the root subvolume is snapshotted by snapper, which a swap file there would block; /var is a subvolume snapper leaves out", nil
		}
	}
	return "", "the root subvolume is snapshotted by snapper, which a swap file there would block, and the target's fstab mounts no /var to put it in: not created", nil
}

// haveSwap: a swap file of the asked size (any size for auto) with the
// signature is already there.
func haveSwap(root *rootfs.Root, p string, s *config.Swap) bool {
	host, err := root.Resolve(p)
	if err != nil {
		return false
	}
	st, err := os.Lstat(host)
	if err != nil || !st.Mode().IsRegular() || (!s.Auto && st.Size() != s.Size&^(1<<20-1)) {
		return false
	}
	f, err := os.Open(host)
	if err != nil {
		return false
	}
	defer f.Close()
	ps := os.Getpagesize()
	magic := make([]byte, 10)
	_, err = f.ReadAt(magic, int64(ps-10))
	return err == nil && string(magic) == swapMagic
}

const swapMagic = "SWAPSPACE2"

// linux/fs.h inode flags (chattr's C and c); x/sys/unix has no names for
// them.
const (
	fsNoCOWFlag uint32 = 0x00800000 // FS_NOCOW_FL
	fsComprFlag uint32 = 0x00000004 // FS_COMPR_FL
)

// memTotal and freeBytes are the machine's memory and a directory's free
// space, behind variables so tests choose them.
var (
	memTotal  = readMemTotal
	freeBytes = func(dir string) (int64, error) {
		var st unix.Statfs_t
		if err := unix.Statfs(dir, &st); err != nil {
			return 0, &os.PathError{Op: "statfs", Path: dir, Err: err}
		}
		return int64(st.Frsize) * int64(st.Bfree), nil
	}
)

func readMemTotal() (int64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/meminfo: MemTotal %q", v)
			}
			return kb * 1024, nil
		}
	}
	return 0, errors.New("/proc/meminfo: no MemTotal")
}

// suggestedSize is cloud-init's suggested_swapsize with a filesystem: at
// most maxsize (when given, and then at most 90% of the free space) or
// else a quarter of the free space and twice the memory; at least the
// memory under 4 GiB, 4 GiB under 16 GiB, else sqrt(memory in GiB) GiB.
func suggestedSize(mem, maxsize, avail int64) int64 {
	const gb = 1 << 30
	max := maxsize
	switch {
	case maxsize == 0:
		max = min(avail/4, mem*2)
	case float64(maxsize) > float64(avail)*0.9:
		max = int64(float64(avail) * 0.9)
	}
	var minsize int64
	switch {
	case mem < 4*gb:
		minsize = mem
	case mem < 16*gb:
		minsize = 4 * gb
	default:
		minsize = int64(math.Round(math.Sqrt(float64(mem)/gb))) * gb
	}
	return min(minsize, max)
}

// makeSwap creates the swap file as `btrfs filesystem mkswapfile` does: an
// empty file, NOCOW set before any data (btrfs refuses swap on
// copy-on-write or compressed extents, and the flag only takes on an
// empty file), every block allocated (no holes, which swapon refuses),
// mode 0600, then the swap header. On other filesystems the flag is
// skipped; where fallocate is not supported, zeros are written (cloud-init
// falls back to dd).
func makeSwap(env *modules.Env, s *config.Swap, p string) error {
	dirHost, err := env.Root.ResolveFollow(path.Dir(p))
	if err == nil {
		err = env.Root.MkdirAll(path.Dir(p), 0o755, rootfs.RootOwner)
	}
	if err != nil {
		return err
	}
	size := s.Size
	if s.Auto {
		mem, err := memTotal()
		if err != nil {
			return fmt.Errorf("swap size auto: %w", err)
		}
		avail, err := freeBytes(dirHost)
		if err != nil {
			return fmt.Errorf("swap size auto: %w", err)
		}
		size = suggestedSize(mem, s.MaxSize, avail)
	}
	size &^= 1<<20 - 1 // whole MiB, as cloud-init's fallocate -l <n>M
	if size == 0 {
		if env.Console != nil {
			fmt.Fprintf(env.Console, "[WARN] swap: %s: the suggested size is under 1 MiB: no swap file [%s]\n", p, s.Origin)
		}
		return nil
	}
	f, err := env.Root.CreateFile(p, 0o600, rootfs.RootOwner)
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		f.Close()
		if !ok {
			os.Remove(f.Name())
		}
	}()
	if err := shapeSwap(f, size); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	if !env.Root.NoSync {
		if err := f.Sync(); err != nil {
			return err
		}
	}
	ok = true
	return f.Close()
}

// shapeSwap gives an empty open file its NOCOW flag (btrfs), its blocks
// and the swap header.
func shapeSwap(f *os.File, size int64) error {
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &st); err != nil {
		return err
	}
	if st.Type == unix.BTRFS_SUPER_MAGIC {
		if err := setNoCOW(f); err != nil {
			return err
		}
	}
	if err := unix.Fallocate(int(f.Fd()), 0, 0, size); err != nil {
		if !errors.Is(err, unix.EOPNOTSUPP) {
			return fmt.Errorf("fallocate %d bytes: %w", size, err)
		}
		if err := writeZeros(f, size); err != nil {
			return err
		}
	}
	hdr, err := swapHeader(size, os.Getpagesize())
	if err != nil {
		return err
	}
	_, err = f.WriteAt(hdr, 0)
	return err
}

// setNoCOW is chattr +C: FS_NOCOW_FL through FS_IOC_SETFLAGS, checked
// afterwards since btrfs ignores the flag on a file with data.
func setNoCOW(f *os.File) error {
	fd := int(f.Fd())
	flags, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
	if err != nil {
		return fmt.Errorf("FS_IOC_GETFLAGS: %w", err)
	}
	flags |= fsNoCOWFlag
	flags &^= fsComprFlag
	if err := unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, int(flags)); err != nil {
		return fmt.Errorf("setting NOCOW (FS_IOC_SETFLAGS): %w", err)
	}
	got, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
	if err != nil {
		return fmt.Errorf("FS_IOC_GETFLAGS: %w", err)
	}
	if got&fsNoCOWFlag == 0 {
		return errors.New("the filesystem did not keep the NOCOW flag")
	}
	return nil
}

func writeZeros(w io.WriterAt, size int64) error {
	zero := make([]byte, 1<<20)
	for off := int64(0); off < size; off += int64(len(zero)) {
		n := min(int64(len(zero)), size-off)
		if _, err := w.WriteAt(zero[:n], off); err != nil {
			return err
		}
	}
	return nil
}

// swapHeader is the first page of a Linux swap area, version 1, as mkswap
// writes it (include/linux/swap.h, union swap_header): 1024 bytes left for
// a boot block, then version, last_page, nr_badpages, a random UUID and an
// empty label in the machine's byte order, and "SWAPSPACE2" in the page's
// last 10 bytes. The kernel reads it with the page size it runs with,
// which is this machine's: provision runs on the machine it provisions.
func swapHeader(size int64, pageSize int) ([]byte, error) {
	pages := size / int64(pageSize)
	if pages < 10 {
		return nil, fmt.Errorf("swap area of %d bytes: under 10 pages of %d bytes", size, pageSize)
	}
	if pages-1 > math.MaxUint32 {
		return nil, fmt.Errorf("swap area of %d bytes: over %d pages", size, uint64(math.MaxUint32)+1)
	}
	page := make([]byte, pageSize)
	ne := binary.NativeEndian
	ne.PutUint32(page[1024:], 1)                          // version
	ne.PutUint32(page[1028:], uint32(pages-1))            // last_page
	ne.PutUint32(page[1032:], 0)                          // nr_badpages
	if _, err := rand.Read(page[1036:1052]); err != nil { // sws_uuid
		return nil, err
	}
	page[1036+6] = page[1036+6]&0x0f | 0x40 // version 4, as libuuid's random UUIDs
	page[1036+8] = page[1036+8]&0x3f | 0x80 // RFC 4122 variant
	// sws_volume (label, 16 bytes) stays empty.
	copy(page[pageSize-10:], swapMagic)
	return page, nil
}

// humanBytes names a whole number of MiB.
func humanBytes(n int64) string {
	if n%(1<<30) == 0 {
		return fmt.Sprintf("%d GiB", n>>30)
	}
	return fmt.Sprintf("%d MiB", n>>20)
}
