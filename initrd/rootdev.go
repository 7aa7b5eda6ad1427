package initrd

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
)

// Superblock is what a root filesystem says about itself. Only the
// filesystems a root can be on are probed; seeds (FAT, ISO) are the sources'
// business.
type Superblock struct {
	Type  string // "btrfs", "ext4", "xfs"
	UUID  string // lowercase 8-4-4-4-12, as blkid prints it
	Label string
}

// ProbeSuperblock reads a btrfs, ext2/3/4 or xfs superblock. ok is false when
// none is recognised; err is only for read errors.
func ProbeSuperblock(r io.ReaderAt) (sb Superblock, ok bool, err error) {
	buf := make([]byte, 4096)
	// btrfs: primary superblock at 64 KiB, magic at +0x40, fsid +0x20, label +0x12b.
	if n, err := r.ReadAt(buf, 0x10000); n >= 0x12b+256 && bytes.Equal(buf[0x40:0x48], []byte("_BHRfS_M")) {
		return Superblock{Type: "btrfs", UUID: formatUUID(buf[0x20:0x30]), Label: cString(buf[0x12b : 0x12b+256])}, true, nil
	} else if err != nil && !errors.Is(err, io.EOF) {
		return Superblock{}, false, err
	}
	n, err := r.ReadAt(buf[:2048], 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return Superblock{}, false, err
	}
	b := buf[:n]
	// xfs: superblock at 0, big-endian magic "XFSB", uuid +32, fname +108 (12 bytes).
	if len(b) >= 120 && bytes.Equal(b[0:4], []byte("XFSB")) {
		return Superblock{Type: "xfs", UUID: formatUUID(b[32:48]), Label: cString(b[108:120])}, true, nil
	}
	// ext2/3/4: superblock at 1024, magic 0xEF53 at +0x38, uuid +0x68, name +0x78.
	if len(b) >= 1024+0x88 && binary.LittleEndian.Uint16(b[1024+0x38:]) == 0xEF53 {
		s := b[1024:]
		typ := "ext2"
		compat := binary.LittleEndian.Uint32(s[0x5c:])
		incompat := binary.LittleEndian.Uint32(s[0x60:])
		switch {
		case incompat&0x2c0 != 0: // extents, 64bit, flex_bg
			typ = "ext4"
		case compat&0x4 != 0: // has_journal
			typ = "ext3"
		}
		return Superblock{Type: typ, UUID: formatUUID(s[0x68:0x78]), Label: cString(s[0x78:0x88])}, true, nil
	}
	return Superblock{}, false, nil
}

func formatUUID(b []byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// formatGUID prints a GPT GUID, whose first three fields are little-endian.
func formatGUID(b []byte) string {
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x",
		binary.LittleEndian.Uint32(b[0:4]), binary.LittleEndian.Uint16(b[4:6]),
		binary.LittleEndian.Uint16(b[6:8]), b[8:10], b[10:16])
}

func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// Partition is one entry of a partition table, numbered like the kernel
// numbers partition devices (vda1 is 1).
type Partition struct {
	Number int
	UUID   string // GPT unique GUID, or MBR "SSSSSSSS-NN"
	Label  string // GPT name
}

// maxGPTEntries bounds what a hostile header can make us read.
const maxGPTEntries = 1024

// ReadPartitions reads a GPT (512- or 4096-byte sectors) or, failing that,
// an MBR partition table from a whole disk.
func ReadPartitions(r io.ReaderAt) ([]Partition, error) {
	for _, sector := range []int64{512, 4096} {
		hdr := make([]byte, 92)
		if _, err := r.ReadAt(hdr, sector); err != nil {
			continue
		}
		if !bytes.Equal(hdr[0:8], []byte("EFI PART")) {
			continue
		}
		lba := binary.LittleEndian.Uint64(hdr[72:])
		count := binary.LittleEndian.Uint32(hdr[80:])
		size := binary.LittleEndian.Uint32(hdr[84:])
		if count == 0 || count > maxGPTEntries || size < 128 || size > 4096 || lba > 1<<40/uint64(sector) {
			return nil, fmt.Errorf("gpt: implausible header (entries %d of %d bytes at LBA %d)", count, size, lba)
		}
		tbl := make([]byte, int(count)*int(size))
		if _, err := r.ReadAt(tbl, int64(lba)*sector); err != nil {
			return nil, fmt.Errorf("gpt: reading entries: %w", err)
		}
		var parts []Partition
		for i := 0; i < int(count); i++ {
			e := tbl[i*int(size) : (i+1)*int(size)]
			if allZero(e[0:16]) { // unused entry (type GUID zero)
				continue
			}
			name := make([]uint16, 36)
			for j := range name {
				name[j] = binary.LittleEndian.Uint16(e[56+2*j:])
			}
			for k, c := range name {
				if c == 0 {
					name = name[:k]
					break
				}
			}
			parts = append(parts, Partition{Number: i + 1, UUID: formatGUID(e[16:32]), Label: string(utf16.Decode(name))})
		}
		return parts, nil
	}
	mbr := make([]byte, 512)
	if _, err := r.ReadAt(mbr, 0); err != nil {
		return nil, fmt.Errorf("mbr: %w", err)
	}
	if mbr[510] != 0x55 || mbr[511] != 0xaa {
		return nil, nil
	}
	sig := binary.LittleEndian.Uint32(mbr[440:])
	var parts []Partition
	for i := 0; i < 4; i++ {
		e := mbr[446+16*i : 446+16*(i+1)]
		if e[4] == 0 { // empty slot
			continue
		}
		// Like the kernel's root=PARTUUID for MBR disks: signature-slot in hex.
		parts = append(parts, Partition{Number: i + 1, UUID: fmt.Sprintf("%08x-%02x", sig, i+1)})
	}
	return parts, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// Resolver finds the block device a RootSpec names. The paths are fields so
// tests can point it at a fake tree.
type Resolver struct {
	SysBlock string // /sys/class/block
	Dev      string // /dev
	// Open opens a device for reading; os.Open when nil.
	Open func(path string) (io.ReaderAt, io.Closer, error)
}

// Found is a resolved root device.
type Found struct {
	Path string
	// Superblock is zero when the device holds nothing we recognise (the
	// mount then tries rootfstype= or the kernel's list).
	Superblock Superblock
}

func (r *Resolver) open(p string) (io.ReaderAt, io.Closer, error) {
	if r.Open != nil {
		return r.Open(p)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, nil, err
	}
	return f, f, nil
}

// devices lists block device names in sysfs order (sorted, so vda before vdb).
func (r *Resolver) devices() []string {
	ents, err := os.ReadDir(r.SysBlock)
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range ents {
		n := e.Name()
		// ram and loop devices are never the root of a first boot and probing
		// 16 empty ramdisks is wasted time.
		if strings.HasPrefix(n, "ram") || strings.HasPrefix(n, "loop") {
			continue
		}
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (r *Resolver) probe(path string) (Superblock, bool) {
	ra, c, err := r.open(path)
	if err != nil {
		return Superblock{}, false
	}
	defer c.Close()
	sb, ok, _ := ProbeSuperblock(ra)
	return sb, ok
}

// Find looks once for the device; it returns os.ErrNotExist when it is not
// (yet) there.
func (r *Resolver) Find(spec RootSpec) (Found, error) {
	switch spec.Kind {
	case RootPath:
		// /dev/disk/by-* only exists when udev (or mdev) runs; the path may be
		// a symlink then. A plain /dev/vda comes from devtmpfs.
		p := filepath.Join(r.Dev, strings.TrimPrefix(spec.Value, "/dev/"))
		if _, err := os.Stat(p); err != nil {
			return Found{}, os.ErrNotExist
		}
		sb, _ := r.probe(p)
		return Found{Path: p, Superblock: sb}, nil
	case RootLabel, RootUUID:
		for _, n := range r.devices() {
			p := filepath.Join(r.Dev, n)
			sb, ok := r.probe(p)
			if !ok {
				continue
			}
			if (spec.Kind == RootLabel && sb.Label == spec.Value) || (spec.Kind == RootUUID && sb.UUID == spec.Value) {
				return Found{Path: p, Superblock: sb}, nil
			}
		}
		return Found{}, os.ErrNotExist
	case RootPartUUID, RootPartLabel:
		for _, n := range r.devices() {
			num, err := readInt(filepath.Join(r.SysBlock, n, "partition"))
			if err != nil {
				continue // a whole disk
			}
			// /sys/class/block/vda2 links to .../block/vda/vda2: the disk is
			// the directory above the partition's real path.
			real, err := filepath.EvalSymlinks(filepath.Join(r.SysBlock, n))
			if err != nil {
				continue
			}
			parent := filepath.Dir(real)
			parts, err := r.partitions(filepath.Join(r.Dev, filepath.Base(parent)))
			if err != nil {
				continue
			}
			for _, pt := range parts {
				if pt.Number != num {
					continue
				}
				if (spec.Kind == RootPartUUID && pt.UUID == spec.Value) || (spec.Kind == RootPartLabel && pt.Label == spec.Value) {
					p := filepath.Join(r.Dev, n)
					sb, _ := r.probe(p)
					return Found{Path: p, Superblock: sb}, nil
				}
			}
		}
		return Found{}, os.ErrNotExist
	}
	return Found{}, errors.New("no root= on the kernel command line")
}

func (r *Resolver) partitions(disk string) ([]Partition, error) {
	ra, c, err := r.open(disk)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return ReadPartitions(ra)
}

func readInt(p string) (int, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// Wait polls Find until the device appears or the timeout passes. Devices of
// virtio and USB disks show up asynchronously after the modules load.
func (r *Resolver) Wait(ctx context.Context, spec RootSpec, timeout time.Duration) (Found, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		f, err := r.Find(spec)
		if err == nil || !errors.Is(err, os.ErrNotExist) {
			return f, err
		}
		select {
		case <-ctx.Done():
			return Found{}, fmt.Errorf("root device %s did not appear within %s (devices: %s)",
				spec, timeout, strings.Join(r.devices(), " "))
		case <-tick.C:
		}
	}
}
