package chroot

import (
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// fstabTargets are the mount points whose content belongs to the installed
// system but lives outside the root subvolume on the usual btrfs layouts
// (openSUSE, Fedora): Combustion leaves them unmounted and writes into
// the empty directories below them, which the real mounts then hide.
var fstabTargets = map[string]bool{
	"/var": true, "/home": true, "/root": true, "/opt": true, "/srv": true, "/usr/local": true,
}

// candidate reports whether PlanFstab looks further at e: a mount point
// of fstabTargets or one marked x-initrd.mount, never "/" or swap.
func candidate(e FstabEntry) bool {
	if !strings.HasPrefix(e.File, "/") {
		return false // "none" (swap) and garbage
	}
	target := path.Clean(e.File)
	if !fstabTargets[target] && !e.HasOption("x-initrd.mount") {
		return false
	}
	return target != "/" && e.VfsType != "swap"
}

// FstabMayMount reports whether the fstab text data names anything the
// chroot could mount; text it cannot parse counts as yes (the run's own
// parse then says what is wrong). Debian's "UNCONFIGURED FSTAB" and an
// fstab of only the root and swap mount nothing.
func FstabMayMount(data []byte) bool {
	entries, err := ParseFstab("/etc/fstab", data)
	if err != nil {
		return true
	}
	for _, e := range entries {
		if candidate(e) {
			return true
		}
	}
	return false
}

// plannedMount is a Mount plus how to perform it.
type plannedMount struct {
	Mount
	flags  uintptr
	nofail bool
	// optional: nothing this run does needs the mount (no program runs,
	// it is not /var); missing, when set, is why it cannot be mounted.
	optional bool
	missing  error
	sameFS   bool // a subvolume of the root's own btrfs
	entry    FstabEntry
}

// PlanFstab picks the fstab entries to mount into the tree and says how:
//
//   - entries for /var, /home, /root, /opt, /srv, /usr/local, and any entry
//     with x-initrd.mount; "noauto" skips an entry unless x-initrd.mount;
//   - never "/", swap, or /etc as a bind (the nested subvolume is part of
//     the snapshot); an overlay /etc only with etcOverlay, after all others;
//   - a btrfs entry naming the root's own filesystem (UUID=, LABEL= or a
//     device of it) is mounted from the root's device with the entry's
//     options (subvol= included), so the right subvolume appears even before
//     udev made /dev/disk links;
//   - other devices are resolved with DeviceResolver; specs that are no
//     device (tmpfs, ...) are passed to mount(2) as written;
//   - "bind" entries bind a path of the tree.
//
// Parents are mounted before children. An unresolvable device is an error,
// unless the entry says nofail or optional says nothing needs its mount
// point (then it is logged and skipped; optional may be nil).
func PlanFstab(entries []FstabEntry, root rootFS, dev *DeviceResolver, etcOverlay bool, optional func(target string) bool, logf func(string, ...any)) ([]plannedMount, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if optional == nil {
		optional = func(string) bool { return false }
	}
	var out, overlay []plannedMount
	for _, e := range entries {
		where := fmt.Sprintf("/etc/fstab:%d", e.Line)
		if !candidate(e) {
			continue
		}
		target := path.Clean(e.File)
		initrd := e.HasOption("x-initrd.mount")
		if target == "/etc" && e.VfsType == "overlay" && etcOverlay {
			// After everything it stacks on (/var): see Env.mountEtcOverlay.
			overlay = append(overlay, plannedMount{Mount: Mount{Target: target, FstabLine: e.Line, Source: e.Spec, FSType: "overlay-etc"}, entry: e})
			continue
		}
		if target == "/etc" && (e.VfsType == "none" || e.VfsType == "overlay") {
			logf("%s: not mounting the %s /etc (part of the snapshot)", where, e.VfsType)
			continue
		}
		if e.HasOption("noauto") && !initrd {
			continue
		}
		flags, data, bind := mountOptions(e.Options)
		p := plannedMount{
			Mount:  Mount{Target: target, FstabLine: e.Line, Data: data, Outside: true},
			flags:  flags,
			nofail: e.HasOption("nofail"),
		}
		if !p.nofail && optional(target) {
			p.optional = true
		}
		switch {
		case bind:
			// A bind of a path in the tree: writes land where the
			// source is, inside the snapshot, so not "outside".
			p.FSType, p.Source, p.Outside = "bind-tree", e.Spec, false
		case (e.VfsType == "btrfs" || e.VfsType == "auto") && dev.sameFS(e.Spec, root):
			p.FSType, p.Source, p.sameFS = "btrfs", root.Source, true
		default:
			d, err := dev.Resolve(e.Spec)
			switch {
			case errors.Is(err, ErrNotDevice):
				p.Source = e.Spec
			case err != nil && p.nofail:
				logf("%s: skipping %s (nofail): %v", where, target, err)
				continue
			case err != nil && p.optional:
				p.missing = fmt.Errorf("%s: %w", where, err)
				out = append(out, p)
				continue
			case err != nil:
				return nil, fmt.Errorf("%s: %s: %w", where, target, err)
			default:
				p.Source = d
			}
			p.FSType = e.VfsType
			if p.FSType == "auto" {
				err := fmt.Errorf("%s: %s: filesystem type \"auto\" needs probing; name the type in fstab", where, target)
				if p.nofail {
					logf("skipping: %v", err)
					continue
				}
				return nil, err
			}
		}
		out = append(out, p)
	}
	sort.SliceStable(out, func(i, j int) bool {
		return depth(out[i].Target) < depth(out[j].Target)
	})
	return append(out, overlay...), nil
}

func depth(p string) int {
	if p == "/" {
		return 0
	}
	return strings.Count(p, "/")
}

var flagOptions = map[string]struct {
	set  bool
	flag uintptr
}{
	"ro":          {true, unix.MS_RDONLY},
	"rw":          {false, unix.MS_RDONLY},
	"nosuid":      {true, unix.MS_NOSUID},
	"suid":        {false, unix.MS_NOSUID},
	"nodev":       {true, unix.MS_NODEV},
	"dev":         {false, unix.MS_NODEV},
	"noexec":      {true, unix.MS_NOEXEC},
	"exec":        {false, unix.MS_NOEXEC},
	"sync":        {true, unix.MS_SYNCHRONOUS},
	"async":       {false, unix.MS_SYNCHRONOUS},
	"dirsync":     {true, unix.MS_DIRSYNC},
	"noatime":     {true, unix.MS_NOATIME},
	"atime":       {false, unix.MS_NOATIME},
	"nodiratime":  {true, unix.MS_NODIRATIME},
	"diratime":    {false, unix.MS_NODIRATIME},
	"relatime":    {true, unix.MS_RELATIME},
	"norelatime":  {false, unix.MS_RELATIME},
	"strictatime": {true, unix.MS_STRICTATIME},
	"lazytime":    {true, unix.MS_LAZYTIME},
	"nolazytime":  {false, unix.MS_LAZYTIME},
	"silent":      {true, unix.MS_SILENT},
	"loud":        {false, unix.MS_SILENT},
}

// userspaceOptions are read by mount(8), systemd or fsck, never by the kernel.
var userspaceOptions = map[string]bool{
	"defaults": true, "auto": true, "noauto": true, "user": true, "nouser": true,
	"users": true, "owner": true, "group": true, "nofail": true, "_netdev": true,
	"loop": true, "remount": true,
}

// mountOptions splits fstab options into mount(2) flags and the data string
// for the filesystem, dropping options only userspace understands
// (x-*, comment=, nofail, ...). bind/rbind are reported separately.
func mountOptions(opts []string) (flags uintptr, data string, bind bool) {
	var rest []string
	for _, o := range opts {
		name, _, _ := strings.Cut(o, "=")
		if f, ok := flagOptions[o]; ok {
			if f.set {
				flags |= f.flag
			} else {
				flags &^= f.flag
			}
			continue
		}
		switch {
		case o == "bind" || o == "rbind":
			bind = true
		case userspaceOptions[o], strings.HasPrefix(o, "x-"), strings.HasPrefix(o, "X-"),
			name == "comment", name == "helper":
		default:
			rest = append(rest, o)
		}
	}
	return flags, strings.Join(rest, ","), bind
}
