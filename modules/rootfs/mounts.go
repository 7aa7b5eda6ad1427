package rootfs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/provision-dev/provision/modules/fstab"
)

// ErrForeignMount is returned for a write that would land on a filesystem
// that is not the target's own: the API filesystems the agent mounted into
// the chroot (/proc, /sys, /dev, /run, /tmp — the running kernel's, the
// host's devices, throwaway tmpfs) or any other mount that does not persist
// with the target.
var ErrForeignMount = errors.New("not on the target's own filesystems")

// apiDirs are the trees the booted system mounts itself (kernel interfaces
// and tmpfs): nothing a provisioner writes there is ever seen after boot,
// and while provisioning they are the running kernel's and the host's.
var apiDirs = []struct{ dir, why string }{
	{"/proc", "the kernel's process filesystem"},
	{"/sys", "the kernel's sysfs"},
	{"/dev", "the device filesystem"},
	{"/run", "a tmpfs the booted system mounts empty (use a tmpfiles.d entry to create files there at boot)"},
	{"/tmp", "a tmpfs the booted system mounts empty (use /var/tmp, or a tmpfiles.d entry)"},
}

// CheckPersistentPath refuses a path (inside the target) under one of the
// API filesystems. Writing there would reach the running kernel or the
// host's devices while provisioning, or land on a tmpfs and vanish, yet be
// reported done; it is refused at plan time, naming the path. cloud-init
// runs in the booted system, where /run and /tmp writes last until the
// next reboot; a first-boot agent in the initrd cannot offer that.
func CheckPersistentPath(p string) error {
	clean := Join(p)
	for _, a := range apiDirs {
		if clean == a.dir || strings.HasPrefix(clean, a.dir+"/") {
			return fmt.Errorf("%s is under %s, %s: %w", Printable(p), a.dir, a.why, ErrForeignMount)
		}
	}
	return nil
}

// Unmounted is a mount point of the target's fstab the agent left unmounted
// (its device is missing and nothing needed it): a write below it would land
// in the root's empty mount point and be hidden by the real mount at boot.
type Unmounted struct {
	Dir string // inside the target, "/srv"
	Why string // the fstab line and the error
}

// checkUnmounted refuses p under one of r.Unmounted.
func (r *Root) checkUnmounted(p string) error {
	for _, u := range r.Unmounted {
		where := Printable(p) + " is under " + Printable(u.Dir)
		if p == u.Dir {
			where = Printable(p) + " is a mount point"
		}
		if p == u.Dir || strings.HasPrefix(p, u.Dir+"/") {
			return fmt.Errorf("%s, which is not mounted (%s): written there, it would be hidden by the real mount at boot", where, Printable(u.Why))
		}
	}
	return nil
}

// ScratchDir is the agent's own scratch space in the chroot's /run tmpfs
// (scripts are written there to be run), the one place on a foreign
// mount where rootfs writes.
const ScratchDir = "/run/provision"

// virtualFS are filesystem types that never hold the target's data.
var virtualFS = map[string]bool{
	"proc": true, "sysfs": true, "devtmpfs": true, "devpts": true, "tmpfs": true,
	"ramfs": true, "mqueue": true, "cgroup": true, "cgroup2": true, "securityfs": true,
	"debugfs": true, "tracefs": true, "bpf": true, "hugetlbfs": true, "configfs": true,
	"pstore": true, "efivarfs": true, "binfmt_misc": true, "autofs": true, "fusectl": true,
	"selinuxfs": true, "rpc_pipefs": true, "nsfs": true, "nfsd": true,
}

// checkMount refuses to change host (a resolved path inside the root) when
// the filesystem it is on — that of its nearest existing ancestor, where a
// new file would be created — is not the target's own: the root's mount,
// or a persistent filesystem mounted below the root (the target's /var,
// /home..., an overlay /etc). Mount identity comes from statx's mount id,
// so a bind mount of the host's /dev is told apart from the tree it sits
// in even where st_dev would not tell.
func (r *Root) checkMount(p, host string) error {
	p = Printable(p)
	// The nearest existing path and its mount, one statx each.
	near := host
	var id, dev uint64
	var ok2 bool
	for {
		var err error
		if id, dev, ok2, err = statMountID(near); err == nil {
			break
		}
		parent := filepath.Dir(near)
		if parent == near || !within(parent, r.Dir) {
			return nil // nothing of the tree exists: nothing to judge
		}
		near = parent
	}
	rootID, ok1 := r.rootMountID()
	if ok1 && ok2 && rootID == id {
		return nil
	}
	if within(host, filepath.Join(r.Dir, ScratchDir)) {
		return nil
	}
	if ok2 && r.knownMountOK(id, dev) {
		return nil
	}
	mounts, err := readMounts()
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	// The mount holding near has its mount point at near or above: inside
	// the tree it is one of the tree's mounts, above it the tree's own
	// (when the ids could not be compared).
	m, found := mountFor(mounts, id, ok2, near)
	switch {
	case !found:
		return fmt.Errorf("%s: the filesystem of %s is not in the mount table: %w", p, Printable(near), ErrForeignMount)
	case !within(m.point, r.Dir) && !ok2:
		return nil
	case !within(m.point, r.Dir):
		return fmt.Errorf("%s: %s is on %s mounted at %s, outside the target: %w", p, Printable(near), m.fstype, m.point, ErrForeignMount)
	case CheckPersistentPath(Join(strings.TrimPrefix(m.point, r.Dir))) != nil:
		// The agent's API mounts (a bind of the host's /dev, /sys) are
		// known by where they sit, whatever their type.
		return fmt.Errorf("%s: %s is on the %s mounted at %s by the agent, the running system's, not the target's: %w", p, Printable(Join(strings.TrimPrefix(near, r.Dir))), m.fstype, Join(strings.TrimPrefix(m.point, r.Dir)), ErrForeignMount)
	case virtualFS[m.fstype]:
		return fmt.Errorf("%s: %s is on the %s mounted at %s, which does not persist with the target: %w", p, Printable(Join(strings.TrimPrefix(near, r.Dir))), m.fstype, Join(strings.TrimPrefix(m.point, r.Dir)), ErrForeignMount)
	}
	if ok2 {
		r.rememberMountOK(id, dev, m.point)
	}
	return nil
}

// passedMount is a mount checkMount let changes onto: where it is mounted
// and the filesystem's device, which with the point decide the verdict.
type passedMount struct {
	point string
	dev   uint64
}

// knownMountOK reports whether checkMount passed the mount id before, of
// the same filesystem, and it is still the mount on top at the same point.
// Every write below the target's /var or /home asks about the same mount,
// and the mount table is read and parsed for each answer otherwise. The
// kernel reuses a mount id once its mount is gone, so the point is asked
// again (the id of what is on top there now) and the device compared: a
// tmpfs mounted where a disk's filesystem was, under the same id, is
// judged anew.
func (r *Root) knownMountOK(id, dev uint64) bool {
	r.memoMu.Lock()
	m, ok := r.mountsOK[id]
	r.memoMu.Unlock()
	if !ok || m.dev != dev {
		return false
	}
	now, nowDev, byID, err := statMountID(m.point)
	return err == nil && byID && now == id && nowDev == dev
}

func (r *Root) rememberMountOK(id, dev uint64, point string) {
	r.memoMu.Lock()
	if r.mountsOK == nil {
		r.mountsOK = map[uint64]passedMount{}
	}
	r.mountsOK[id] = passedMount{point: point, dev: dev}
	r.memoMu.Unlock()
}

func within(p, dir string) bool {
	// Without building dir+"/": the memo's invalidation asks this for
	// every remembered path on every write.
	return dir == "/" || strings.HasPrefix(p, dir) && (len(p) == len(dir) || p[len(dir)] == '/')
}

// mountID is statx's STATX_MNT_ID of p (not following a final symlink);
// false on kernels before 5.8.
func mountID(p string) (uint64, bool) {
	id, _, ok, _ := statMountID(p)
	return id, ok
}

// statMountID is mountID with the device of p's filesystem and statx's
// error (fs.ErrNotExist for a missing path).
func statMountID(p string) (id, dev uint64, byID bool, err error) {
	var stx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, p, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_MNT_ID, &stx); err != nil {
		return 0, 0, false, err
	}
	return stx.Mnt_id, unix.Mkdev(stx.Dev_major, stx.Dev_minor), stx.Mask&unix.STATX_MNT_ID != 0, nil
}

// rootMountID is mountID of the root directory, asked once: what is
// mounted on the root itself (the chroot's bind of the tree onto itself)
// is mounted before the first change, and Forget asks again.
func (r *Root) rootMountID() (uint64, bool) {
	r.memoMu.Lock()
	defer r.memoMu.Unlock()
	if !r.rootIDKnown {
		r.rootID, r.rootIDOK = mountID(r.Dir)
		r.rootIDKnown = true
	}
	return r.rootID, r.rootIDOK
}

type mountEntry struct {
	id     uint64
	point  string
	fstype string
}

// mountFor finds the mount by id, or without one the deepest mount point
// holding p.
func mountFor(mounts []mountEntry, id uint64, byID bool, p string) (mountEntry, bool) {
	var best mountEntry
	found := false
	for _, m := range mounts {
		if byID {
			if m.id == id {
				best, found = m, true // the last is the one on top
			}
			continue
		}
		if within(p, m.point) && (!found || len(m.point) >= len(best.point)) {
			best, found = m, true
		}
	}
	return best, found
}

// readMounts reads this process's mount table: "ID PARENT MAJ:MIN ROOT
// POINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS" (proc(5)).
func readMounts() ([]mountEntry, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("reading the mount table: %w", err)
	}
	var out []mountEntry
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || len(f) < sep+2 {
			continue
		}
		id, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			continue
		}
		out = append(out, mountEntry{id: id, point: fstab.UnescapeOctal(f[4]), fstype: f[sep+1]})
	}
	return out, sc.Err()
}
