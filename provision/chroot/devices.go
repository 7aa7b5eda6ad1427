package chroot

import (
	"errors"
	"fmt"
	"github.com/provision-dev/provision/sources/blockdev"
	"os"
	"path"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// DeviceResolver maps fstab device specs to device nodes without blkid:
//
//   - UUID=, LABEL=, PARTUUID=, PARTLABEL=, ID=: the udev symlinks in
//     /dev/disk/by-uuid, by-label, by-partuuid, by-partlabel, by-id;
//   - without udev (a minimal initrd): UUID= and LABEL= of a btrfs
//     filesystem the kernel already knows, from /sys/fs/btrfs/<uuid>/
//     (devices/, label), and PARTLABEL= from the partitions' uevent PARTNAME;
//   - /dev/... paths as written.
//
// Other filesystems need udev for UUID= and LABEL=; the error says so.
type DeviceResolver struct {
	Dev string // "/dev" when empty (tests point it elsewhere)
	Sys string // "/sys" when empty
}

// ErrNotDevice is returned for specs that name no block device (tmpfs, a
// network share, "none").
var ErrNotDevice = errors.New("not a block device spec")

func (r *DeviceResolver) dev() string {
	if r.Dev == "" {
		return "/dev"
	}
	return r.Dev
}

func (r *DeviceResolver) sys() string {
	if r.Sys == "" {
		return "/sys"
	}
	return r.Sys
}

var specLinks = map[string]string{
	"UUID":      "by-uuid",
	"LABEL":     "by-label",
	"PARTUUID":  "by-partuuid",
	"PARTLABEL": "by-partlabel",
	"ID":        "by-id",
}

// Resolve returns the device node for spec.
func (r *DeviceResolver) Resolve(spec string) (string, error) {
	if strings.HasPrefix(spec, "/") {
		if !strings.HasPrefix(spec, "/dev/") {
			return "", fmt.Errorf("%s: %w", spec, ErrNotDevice)
		}
		p := filepath.Join(r.dev(), strings.TrimPrefix(spec, "/dev/"))
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			return "", fmt.Errorf("%s: %w", spec, err)
		}
		return real, nil
	}
	key, val, ok := strings.Cut(spec, "=")
	dir, known := specLinks[key]
	if !ok || !known {
		return "", fmt.Errorf("%s: %w", spec, ErrNotDevice)
	}
	val = strings.Trim(val, `"`)
	if val == "" {
		return "", fmt.Errorf("%s: empty value", spec)
	}
	name := val
	switch key {
	case "LABEL", "PARTLABEL":
		name = udevEncode(val)
	case "UUID", "PARTUUID":
		name = strings.ToLower(val)
	}
	if !strings.Contains(name, "/") {
		if real, err := filepath.EvalSymlinks(filepath.Join(r.dev(), "disk", dir, name)); err == nil {
			return real, nil
		}
	}
	switch key {
	case "UUID":
		if d, ok := r.btrfsDevice(strings.ToLower(val)); ok {
			return d, nil
		}
	case "LABEL":
		if uuid, ok := r.btrfsByLabel(val); ok {
			if d, ok := r.btrfsDevice(uuid); ok {
				return d, nil
			}
		}
	case "PARTLABEL":
		if d, ok := r.partByName(val); ok {
			return d, nil
		}
	}
	if key == "UUID" || key == "LABEL" {
		// No udev yet (a minimal initrd, a test's loop device): read the
		// superblocks of the block devices sysfs lists, as blkid does.
		if d, ok := r.bySuperblock(key, val); ok {
			return d, nil
		}
	}
	return "", fmt.Errorf("%s: no such device (no %s link, the kernel does not know it as a btrfs device, and no block device's superblock carries it)", spec, path.Join("/dev/disk", dir, name))
}

// btrfsDevice returns a member device of the mounted/scanned btrfs uuid.
func (r *DeviceResolver) btrfsDevice(uuid string) (string, bool) {
	if strings.ContainsAny(uuid, "/") || uuid == "" || uuid == "." || uuid == ".." {
		return "", false
	}
	ents, err := os.ReadDir(filepath.Join(r.sys(), "fs/btrfs", uuid, "devices"))
	if err != nil || len(ents) == 0 {
		return "", false
	}
	return filepath.Join(r.dev(), ents[0].Name()), true
}

func (r *DeviceResolver) btrfsByLabel(label string) (string, bool) {
	ents, err := os.ReadDir(filepath.Join(r.sys(), "fs/btrfs"))
	if err != nil {
		return "", false
	}
	for _, d := range ents {
		l, err := os.ReadFile(filepath.Join(r.sys(), "fs/btrfs", d.Name(), "label"))
		if err == nil && strings.TrimRight(string(l), "\n") == label {
			return d.Name(), true
		}
	}
	return "", false
}

// btrfsOf returns the uuid and label of the btrfs filesystem that has
// device dev (by its kernel name) as a member.
func (r *DeviceResolver) btrfsOf(dev string) (uuid, label string, members []string) {
	base := filepath.Base(dev)
	ents, err := os.ReadDir(filepath.Join(r.sys(), "fs/btrfs"))
	if err != nil {
		return "", "", nil
	}
	for _, d := range ents {
		devs, err := os.ReadDir(filepath.Join(r.sys(), "fs/btrfs", d.Name(), "devices"))
		if err != nil {
			continue
		}
		var names []string
		match := false
		for _, m := range devs {
			names = append(names, m.Name())
			if m.Name() == base {
				match = true
			}
		}
		if match {
			l, _ := os.ReadFile(filepath.Join(r.sys(), "fs/btrfs", d.Name(), "label"))
			return d.Name(), strings.TrimRight(string(l), "\n"), names
		}
	}
	return "", "", nil
}

func (r *DeviceResolver) partByName(name string) (string, bool) {
	ents, err := os.ReadDir(filepath.Join(r.sys(), "class/block"))
	if err != nil {
		return "", false
	}
	for _, d := range ents {
		ue, err := os.ReadFile(filepath.Join(r.sys(), "class/block", d.Name(), "uevent"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(ue), "\n") {
			if line == "PARTNAME="+name {
				return filepath.Join(r.dev(), d.Name()), true
			}
		}
	}
	return "", false
}

// rootFS describes the filesystem holding the tree.
type rootFS struct {
	Source  string   // device node, symlinks resolved
	FSType  string   // "btrfs", "ext4", ...
	UUID    string   // btrfs only (from sysfs)
	Label   string   // btrfs only
	Members []string // btrfs member device names
}

func (r *DeviceResolver) rootFS(m mountInfo) rootFS {
	fs := rootFS{Source: m.Source, FSType: m.FSType}
	if real, err := filepath.EvalSymlinks(m.Source); err == nil {
		fs.Source = real
	}
	if fs.FSType == "btrfs" {
		fs.UUID, fs.Label, fs.Members = r.btrfsOf(fs.Source)
	}
	return fs
}

// sameFS reports whether spec names the root's own btrfs filesystem.
func (r *DeviceResolver) sameFS(spec string, root rootFS) bool {
	if root.FSType != "btrfs" {
		return false
	}
	key, val, _ := strings.Cut(spec, "=")
	val = strings.Trim(val, `"`)
	switch {
	case key == "UUID" && root.UUID != "":
		return strings.EqualFold(val, root.UUID)
	case key == "LABEL" && root.Label != "":
		if val == root.Label {
			return true
		}
	}
	dev, err := r.Resolve(spec)
	if err != nil {
		return false
	}
	if dev == root.Source {
		return true
	}
	for _, m := range root.Members {
		if filepath.Base(dev) == m {
			return true
		}
	}
	return false
}

// udevEncode escapes a label the way udev names /dev/disk/by-label links:
// bytes outside [0-9A-Za-z#+-.:=@_] and not part of valid UTF-8 become \xNN.
func udevEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRuneInString(s[i:])
			if r != utf8.RuneError || n > 1 {
				b.WriteString(s[i : i+n])
				i += n
				continue
			}
		}
		if (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || strings.IndexByte("#+-.:=@_", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, `\x%02x`, c)
		}
		i++
	}
	return b.String()
}

// bySuperblock finds the block device whose filesystem has the UUID (case
// insensitive, as fstab and blkid compare it) or LABEL val.
func (r *DeviceResolver) bySuperblock(key, val string) (string, bool) {
	prefix := strings.TrimSuffix(r.dev(), "/dev")
	if r.dev() != "/dev" || r.sys() != "/sys" {
		if strings.TrimSuffix(r.sys(), "/sys") != prefix {
			return "", false // a fake tree with unrelated prefixes
		}
	}
	vols, err := blockdev.ScanDevices(blockdev.Env{Prefix: prefix})
	if err != nil {
		return "", false
	}
	for _, v := range vols {
		if (key == "UUID" && v.UUID != "" && strings.EqualFold(v.UUID, val)) || (key == "LABEL" && v.Label == val) {
			return filepath.Join(r.dev(), strings.TrimPrefix(v.Name, "/dev/")), true
		}
	}
	return "", false
}
