package chroot

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/provision-dev/provision/modules/fault"
	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/provision/etcmodel"
)

// mountEtcOverlay mounts the overlay /etc of fstab entry e on the tree's
// /etc, the way the booted system will mount it, so that what is written
// to /etc lands in the upper layer the booted system reads. Layer paths are
// resolved inside the tree (after /var is mounted: the layers live there).
func (e *Env) mountEtcOverlay(entry FstabEntry) error {
	where := fmt.Sprintf("/etc/fstab:%d", entry.Line)
	m, err := etcmodel.Detect("/etc/fstab", []byte(fmt.Sprintf("%s %s overlay %s 0 0\n", entry.Spec, entry.File, strings.Join(entry.Options, ","))))
	if err != nil {
		return fmt.Errorf("chroot: %s: %w", where, err)
	}
	etcHost, err := e.tree.ResolveFollow("/etc")
	if err != nil {
		return fmt.Errorf("chroot: %s: /etc: %w", where, err)
	}
	etcInfo, err := os.Stat(etcHost)
	if err != nil {
		return fmt.Errorf("chroot: %s: %w", where, err)
	}
	// A new upper layer takes the mode of the layer below it (the old
	// snapshot's upper) and /etc's SELinux label, as transactional-update
	// 4 creates it.
	mode := etcInfo.Mode().Perm()
	host := func(p string) (string, error) {
		h, err := e.tree.ResolveFollow(etcmodel.InTree(p))
		if err != nil {
			return "", fmt.Errorf("chroot: %s: overlay layer %s: %w", where, p, err)
		}
		return h, nil
	}
	var lowers []string
	for _, l := range m.Lower {
		h, err := host(l)
		if err != nil {
			return err
		}
		if st, err := os.Stat(h); err != nil || !st.IsDir() {
			return fmt.Errorf("chroot: %s: overlay lower layer %s is missing (%v): the booted system could not mount /etc", where, l, err)
		}
		if len(lowers) == 0 {
			if st, err := os.Stat(h); err == nil {
				mode = st.Mode().Perm()
			}
		}
		lowers = append(lowers, h)
	}
	label := make([]byte, 256)
	n, err := unix.Getxattr(etcHost, "security.selinux", label)
	if err != nil {
		n = 0
	}
	var dirs [2]string
	for i, p := range []string{m.Upper, m.Work} {
		inTree := etcmodel.InTree(p)
		h, err := host(p)
		if err != nil {
			return err
		}
		if _, err := os.Lstat(h); errors.Is(err, os.ErrNotExist) {
			top := e.firstMissing(inTree)
			if err := e.tree.MkdirAll(inTree, 0o755, rootfs.RootOwner); err != nil {
				return fmt.Errorf("chroot: %s: creating overlay layer %s: %w", where, p, err)
			}
			if err := os.Chmod(h, mode); err != nil {
				return fmt.Errorf("chroot: %s: %w", where, err)
			}
			if n > 0 {
				if err := unix.Lsetxattr(h, "security.selinux", label[:n], 0); err != nil && !errors.Is(err, unix.EOPNOTSUPP) {
					return fmt.Errorf("chroot: %s: labelling %s like /etc: %w", where, p, err)
				}
			}
			if e.onOutsideMount(h) {
				e.layers = append(e.layers, top)
			}
		} else if err != nil {
			return fmt.Errorf("chroot: %s: %w", where, err)
		}
		dirs[i] = h
	}
	data := "lowerdir=" + strings.Join(lowers, ":") + ",upperdir=" + dirs[0] + ",workdir=" + dirs[1]
	for _, o := range entry.Options {
		k, _, _ := strings.Cut(o, "=")
		switch {
		case k == "lowerdir" || k == "upperdir" || k == "workdir" || k == "defaults":
		case userspaceOptions[o] || strings.HasPrefix(o, "x-") || strings.HasPrefix(o, "X-"):
		default:
			data += "," + o
		}
	}
	if err := e.private(); err != nil {
		return err
	}
	if err := fault.Mount("overlay", etcHost, "overlay", 0, data); err != nil {
		return fmt.Errorf("chroot: %s: mount overlay on /etc (%s): %w", where, data, err)
	}
	e.mounts = append(e.mounts, Mount{Target: "/etc", HostPath: etcHost, Source: "overlay", FSType: "overlay", Data: data, FstabLine: entry.Line})
	e.log("/etc: overlay mounted as fstab line %d says: upper %s", entry.Line, m.Upper)
	return nil
}

// firstMissing returns the host path of the topmost missing component of
// p (a path in the tree).
func (e *Env) firstMissing(p string) string {
	top := p
	for {
		parent := path.Dir(top)
		if parent == top || e.tree.Exists(parent) {
			break
		}
		top = parent
	}
	h, err := e.tree.Resolve(top)
	if err != nil {
		return ""
	}
	return h
}

// onOutsideMount reports whether host lies on one of the fstab mounts whose
// writes persist outside the transaction.
func (e *Env) onOutsideMount(host string) bool {
	for _, m := range e.mounts {
		if m.Outside && (host == m.HostPath || strings.HasPrefix(host, m.HostPath+string(filepath.Separator))) {
			return true
		}
	}
	return false
}

// Discard removes what Setup created outside the snapshot (the overlay
// layers of a new snapshot on a /var of its own filesystem), for a
// transaction that is thrown away. Call it before Close.
func (e *Env) Discard() error {
	if e == nil {
		return nil
	}
	var errs []error
	for _, p := range e.layers {
		if p == "" {
			continue
		}
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, fmt.Errorf("chroot: removing %s: %w", p, err))
		}
	}
	e.layers = nil
	return errors.Join(errs...)
}
