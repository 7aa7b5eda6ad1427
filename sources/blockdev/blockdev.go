// Package blockdev finds local configuration media — labelled USB sticks,
// seed ISOs, config drives, image files — and reads them. Devices come from
// sysfs and labels from superblocks we parse ourselves (udev may not have run
// yet in the initrd); FAT and ISO9660 are read without mounting through
// go-diskfs so the same code reads image files on a workstation without root.
// Every label-based source uses FindByLabel and Medium instead of its own
// "mount the drive and read a file".
package blockdev

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Env says where the machine's sysfs and /dev are and how media are read.
type Env struct {
	// Prefix is prepended to /sys and /dev paths, so tests run against fake
	// trees ("" on a real system).
	Prefix string
	// MaxFileSize caps each file read from a medium; 0 means DefaultMaxFileSize.
	MaxFileSize int64
	// PollInterval is the rescan period while waiting for a device; 0 means 200 ms.
	PollInterval time.Duration
	// Mounter mounts filesystems go-diskfs cannot read (ext4, btrfs, xfs);
	// nil means the kernel, which needs root.
	Mounter Mounter
	// Scan, when set, is one scan shared by the sources of a detection:
	// each label-based source asks for the devices in Detect and again in
	// Fetch, and the devices are probed once for all of them (see
	// ScanDevices). nil: every call scans.
	Scan *Scan
}

// DefaultMaxFileSize bounds any one file read from a medium: seeds are
// kilobytes, and a corrupt directory entry must not make us allocate gigabytes.
const DefaultMaxFileSize = 64 << 20

func (e Env) maxFileSize() int64 {
	if e.MaxFileSize > 0 {
		return e.MaxFileSize
	}
	return DefaultMaxFileSize
}

func (e Env) pollInterval() time.Duration {
	if e.PollInterval > 0 {
		return e.PollInterval
	}
	return 200 * time.Millisecond
}

// Device is a block device or partition as sysfs describes it.
type Device struct {
	Name             string // kernel name: "vdb", "sda1", "nvme0n1p2"
	Path             string // device node without Env.Prefix: "/dev/vdb"
	Size             int64  // bytes
	Parent           string // whole disk of a partition, "" for a disk
	Partition        int    // partition number, 0 for a whole disk
	Start            int64  // partition start within Parent, in bytes
	LogicalBlockSize int    // bytes, from queue/logical_block_size
}

// sysfs reports sizes and starts in 512-byte units whatever the device's
// sector size.
const sysfsSector = 512

// Enumerate lists the block devices and partitions under
// <prefix>/sys/class/block in sysfs order: kernel names sorted so a disk is
// followed by its partitions and numbers compare as numbers (vda, vda1,
// vda2, vda10, vdb). Devices of size 0 (empty CD trays, unused loop
// devices) are left out.
func Enumerate(prefix string) ([]Device, error) {
	dir := filepath.Join(prefix, "/sys/class/block")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list block devices: %w", err)
	}
	devs := make([]Device, 0, len(entries))
	for _, e := range entries {
		d, ok := readDevice(prefix, dir, e.Name())
		if ok {
			devs = append(devs, d)
		}
	}
	slices.SortStableFunc(devs, func(a, b Device) int {
		ka, kb := a.Name, b.Name
		if a.Parent != "" {
			ka = a.Parent
		}
		if b.Parent != "" {
			kb = b.Parent
		}
		if c := naturalCompare(ka, kb); c != 0 {
			return c
		}
		return cmp.Compare(a.Partition, b.Partition)
	})
	return devs, nil
}

func readDevice(prefix, classDir, name string) (Device, bool) {
	sysDir := filepath.Join(classDir, name)
	d := Device{Name: name, Path: "/dev/" + strings.ReplaceAll(name, "!", "/")}
	if dn := ueventValue(filepath.Join(sysDir, "uevent"), "DEVNAME"); dn != "" {
		d.Path = "/dev/" + dn
	}
	sectors, err := readInt(filepath.Join(sysDir, "size"))
	if err != nil || sectors <= 0 {
		return d, false
	}
	d.Size = sectors * sysfsSector
	if n, err := readInt(filepath.Join(sysDir, "partition")); err == nil && n > 0 {
		d.Partition = int(n)
		if s, err := readInt(filepath.Join(sysDir, "start")); err == nil {
			d.Start = s * sysfsSector
		}
		// A partition's sysfs directory sits inside its disk's.
		if real, err := filepath.EvalSymlinks(sysDir); err == nil {
			d.Parent = filepath.Base(filepath.Dir(real))
		}
		if d.Parent == "" || d.Parent == "." || d.Parent == "block" {
			d.Parent = guessParent(name)
		}
	}
	queue := filepath.Join(sysDir, "queue")
	if d.Parent != "" {
		queue = filepath.Join(classDir, d.Parent, "queue")
	}
	d.LogicalBlockSize = sysfsSector
	if n, err := readInt(filepath.Join(queue, "logical_block_size")); err == nil && n > 0 {
		d.LogicalBlockSize = int(n)
	}
	return d, true
}

// guessParent strips the partition suffix from a kernel name ("sda1" ->
// "sda", "nvme0n1p2" -> "nvme0n1") when sysfs links cannot tell.
func guessParent(name string) string {
	p := strings.TrimRight(name, "0123456789")
	if strings.HasSuffix(p, "p") && len(p) > 1 && p[len(p)-2] >= '0' && p[len(p)-2] <= '9' {
		p = p[:len(p)-1]
	}
	return p
}

func readInt(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

func ueventValue(path, key string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), key+"="); ok {
			return v
		}
	}
	return ""
}

// naturalCompare orders names with embedded numbers numerically, so sdb2
// sorts before sdb10 and loop9 before loop10.
func naturalCompare(a, b string) int {
	for a != "" && b != "" {
		da, db := isDigit(a[0]), isDigit(b[0])
		if da && db {
			na, ra := splitDigits(a)
			nb, rb := splitDigits(b)
			ta, tb := strings.TrimLeft(na, "0"), strings.TrimLeft(nb, "0")
			if c := cmp.Compare(len(ta), len(tb)); c != 0 {
				return c
			}
			if c := strings.Compare(ta, tb); c != 0 {
				return c
			}
			a, b = ra, rb
			continue
		}
		if a[0] != b[0] {
			return cmp.Compare(a[0], b[0])
		}
		a, b = a[1:], b[1:]
	}
	return cmp.Compare(len(a), len(b))
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func splitDigits(s string) (string, string) {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return s[:i], s[i:]
}

// ErrNeedsRoot is returned for media only the kernel can read (ext4, btrfs,
// xfs) when we are not root, as in a workstation dry run.
var ErrNeedsRoot = errors.New("needs root to read")
