package blockdev

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf16"
)

// Filesystem type names, spelled as blkid spells them so messages and
// by-label habits carry over.
const (
	TypeVFAT    = "vfat"
	TypeISO9660 = "iso9660"
	TypeExt2    = "ext2"
	TypeExt3    = "ext3"
	TypeExt4    = "ext4"
	TypeBtrfs   = "btrfs"
	TypeXFS     = "xfs"
)

// Probe is what a superblock says about a filesystem.
type Probe struct {
	Type  string // one of the Type constants
	Label string // trimmed of spaces and NULs; "" when the filesystem has none
	// UUID as blkid prints it (and fstab's UUID= names it): the canonical
	// 8-4-4-4-12 form for btrfs, ext and xfs, XXXX-XXXX for vfat; "" for
	// ISO 9660 and filesystems without one.
	UUID string

	// FATBits is 12, 16 or 32 for vfat.
	FATBits int
	// ISOBlockSize is the ISO9660 logical block size from the PVD (2048
	// nearly always, whatever the device's sector size).
	ISOBlockSize int
}

// ErrUnknownFilesystem means no superblock we know was found.
var ErrUnknownFilesystem = errors.New("no known filesystem")

// ProbeReader reads the superblocks at their fixed offsets in r (a device or
// a sub-range of one, size bytes long) and identifies the filesystem. It
// reads at most a few KiB per candidate and never trusts a length field
// without checking it against size.
func ProbeReader(r io.ReaderAt, size int64) (Probe, error) {
	// ISO first: a hybrid ISO also carries an MBR (and sometimes a FAT-looking
	// boot sector) at offset 0, and blkid prefers the ISO too.
	if p, ok := probeISO9660(r, size); ok {
		return p, nil
	}
	if p, ok := probeFAT(r, size); ok {
		return p, nil
	}
	if p, ok := probeExt(r, size); ok {
		return p, nil
	}
	if p, ok := probeBtrfs(r, size); ok {
		return p, nil
	}
	if p, ok := probeXFS(r, size); ok {
		return p, nil
	}
	return Probe{}, ErrUnknownFilesystem
}

// readAt reads exactly len(b) bytes at off, refusing ranges beyond size.
func readAt(r io.ReaderAt, size, off int64, b []byte) bool {
	if off < 0 || off+int64(len(b)) > size {
		return false
	}
	n, err := r.ReadAt(b, off)
	return n == len(b) && (err == nil || errors.Is(err, io.EOF))
}

// cleanLabel trims what filesystems pad labels with.
func cleanLabel(s string) string {
	return strings.TrimRight(strings.TrimLeft(s, " "), " \x00")
}

const (
	isoSystemArea   = 32768 // 16 sectors of 2048 bytes precede the descriptors
	isoDescSize     = 2048
	isoMaxDescCount = 64 // real images have 2–4; a missing terminator must not make us read the whole disk
)

func probeISO9660(r io.ReaderAt, size int64) (Probe, bool) {
	var pvdLabel, jolietLabel string
	var blockSize int
	found := false
	buf := make([]byte, isoDescSize)
	for i := int64(0); i < isoMaxDescCount; i++ {
		if !readAt(r, size, isoSystemArea+i*isoDescSize, buf) {
			break
		}
		if string(buf[1:6]) != "CD001" {
			break
		}
		switch buf[0] {
		case 1: // primary volume descriptor
			if found {
				continue
			}
			found = true
			pvdLabel = cleanLabel(string(buf[40:72]))
			blockSize = int(binary.LittleEndian.Uint16(buf[128:130]))
		case 2: // supplementary: Joliet when the escape sequence names UCS-2
			esc := buf[88:91]
			if esc[0] == '%' && esc[1] == '/' && (esc[2] == '@' || esc[2] == 'C' || esc[2] == 'E') {
				jolietLabel = cleanLabel(decodeUCS2BE(buf[40:72]))
			}
		case 255:
			i = isoMaxDescCount
		}
	}
	if !found {
		return Probe{}, false
	}
	label := pvdLabel
	// Joliet holds the label as typed (case, non-ASCII) but only 16
	// characters; like blkid, keep the PVD's when it is the longer spelling of
	// the same name.
	if jolietLabel != "" && (len(pvdLabel) <= len([]rune(jolietLabel)) || !strings.HasPrefix(strings.ToUpper(pvdLabel), strings.ToUpper(jolietLabel))) {
		label = jolietLabel
	}
	if blockSize != 2048 && blockSize != 4096 && blockSize != 8192 {
		blockSize = 2048
	}
	return Probe{Type: TypeISO9660, Label: label, ISOBlockSize: blockSize}, true
}

func decodeUCS2BE(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		u = append(u, binary.BigEndian.Uint16(b[i:]))
	}
	return string(utf16.Decode(u))
}

// fatGeometry is the part of a FAT boot sector we need to find the tables,
// the root directory and the label, checked for sanity.
type fatGeometry struct {
	bytesPerSector    int64
	sectorsPerCluster int64
	reserved          int64
	fatCount          int64
	rootEntries       int64
	sectorsPerFAT     int64
	totalSectors      int64
	rootCluster       uint32 // FAT32 only
	bits              int
	bootLabel         string
}

func (g *fatGeometry) fatOffset() int64 { return g.reserved * g.bytesPerSector }
func (g *fatGeometry) fatBytes() int64  { return g.sectorsPerFAT * g.bytesPerSector }
func (g *fatGeometry) rootDirOffset() int64 {
	return (g.reserved + g.fatCount*g.sectorsPerFAT) * g.bytesPerSector
}
func (g *fatGeometry) rootDirSectors() int64 {
	return (g.rootEntries*32 + g.bytesPerSector - 1) / g.bytesPerSector
}
func (g *fatGeometry) dataOffset() int64 {
	return g.rootDirOffset() + g.rootDirSectors()*g.bytesPerSector
}
func (g *fatGeometry) clusterBytes() int64 { return g.sectorsPerCluster * g.bytesPerSector }

// clusterCount is the number of data clusters, which (not any string in the
// boot sector) decides FAT12 versus FAT16, as in Microsoft's specification.
func (g *fatGeometry) clusterCount() int64 {
	data := g.totalSectors - (g.reserved + g.fatCount*g.sectorsPerFAT + g.rootDirSectors())
	if data <= 0 {
		return 0
	}
	return data / g.sectorsPerCluster
}

// parseFATBootSector checks the BIOS parameter block the way the kernel and
// blkid do, so an MBR or random data is not taken for FAT.
func parseFATBootSector(bs []byte, size int64) (*fatGeometry, bool) {
	if len(bs) < 512 {
		return nil, false
	}
	if bs[0] != 0xEB && bs[0] != 0xE9 {
		return nil, false
	}
	g := &fatGeometry{
		bytesPerSector:    int64(binary.LittleEndian.Uint16(bs[11:])),
		sectorsPerCluster: int64(bs[13]),
		reserved:          int64(binary.LittleEndian.Uint16(bs[14:])),
		fatCount:          int64(bs[16]),
		rootEntries:       int64(binary.LittleEndian.Uint16(bs[17:])),
		totalSectors:      int64(binary.LittleEndian.Uint16(bs[19:])),
		sectorsPerFAT:     int64(binary.LittleEndian.Uint16(bs[22:])),
	}
	media := bs[21]
	switch g.bytesPerSector {
	case 512, 1024, 2048, 4096:
	default:
		return nil, false
	}
	spc := g.sectorsPerCluster
	if spc == 0 || spc&(spc-1) != 0 {
		return nil, false
	}
	if g.reserved == 0 || g.fatCount == 0 || g.fatCount > 4 {
		return nil, false
	}
	if media != 0xF0 && media < 0xF8 {
		return nil, false
	}
	if g.totalSectors == 0 {
		g.totalSectors = int64(binary.LittleEndian.Uint32(bs[32:]))
	}
	labelOff := 43
	sigOff := 38
	if g.sectorsPerFAT == 0 {
		// FAT32 extended BPB.
		g.sectorsPerFAT = int64(binary.LittleEndian.Uint32(bs[36:]))
		g.rootCluster = binary.LittleEndian.Uint32(bs[44:])
		labelOff, sigOff = 71, 66
		if g.rootEntries != 0 || g.rootCluster < 2 {
			return nil, false
		}
	}
	if g.sectorsPerFAT == 0 || g.totalSectors == 0 {
		return nil, false
	}
	// The tables and root directory must lie inside the device; the FAT size
	// also bounds what we allocate when validating chains.
	if g.totalSectors*g.bytesPerSector > size+g.bytesPerSector*int64(spc) && size > 0 {
		// mkfs.vfat rounds down, so a filesystem claiming more than the
		// device (plus a cluster of slack) is truncated or corrupt.
		return nil, false
	}
	if g.dataOffset() >= size || g.fatBytes() > maxFATBytes {
		return nil, false
	}
	n := g.clusterCount()
	switch {
	case g.rootEntries == 0:
		g.bits = 32
	case n < 4085:
		g.bits = 12
	case n < 65525:
		g.bits = 16
	default:
		return nil, false
	}
	if n == 0 {
		return nil, false
	}
	if bs[sigOff] == 0x29 || bs[sigOff] == 0x28 {
		l := cleanLabel(string(bs[labelOff : labelOff+11]))
		if l != "NO NAME" {
			g.bootLabel = l
		}
	}
	return g, true
}

// maxFATBytes bounds one FAT copy: 32 MiB covers a 256 GiB FAT32 stick with
// 32 KiB clusters; more than that is not a seed and is refused rather than
// loaded into memory.
const maxFATBytes = 32 << 20

func probeFAT(r io.ReaderAt, size int64) (Probe, bool) {
	bs := make([]byte, 512)
	if !readAt(r, size, 0, bs) {
		return Probe{}, false
	}
	g, ok := parseFATBootSector(bs, size)
	if !ok {
		return Probe{}, false
	}
	label := g.bootLabel
	// The root directory's volume-label entry wins, as in blkid: tools that
	// relabel (fatlabel, Windows) update it, and mkfs.vfat writes both.
	if l, found := fatRootDirLabel(r, size, g); found {
		label = l
	}
	// The volume id: in the FAT32 extended boot record at 0x43, at 0x27
	// for FAT12/16 (when the extended signature 0x29 says it is there).
	idOff := 0x27
	if g.bits == 32 {
		idOff = 0x43
	}
	uuid := ""
	if bs[idOff-1] == 0x29 || bs[idOff-1] == 0x28 {
		id := binary.LittleEndian.Uint32(bs[idOff:])
		uuid = fmt.Sprintf("%04X-%04X", id>>16, id&0xffff)
	}
	return Probe{Type: TypeVFAT, Label: label, FATBits: g.bits, UUID: uuid}, true
}

// fatRootDirLabel scans the root directory for the volume-label entry.
func fatRootDirLabel(r io.ReaderAt, size int64, g *fatGeometry) (string, bool) {
	scan := func(b []byte) (string, bool, bool) {
		for i := 0; i+32 <= len(b); i += 32 {
			e := b[i : i+32]
			if e[0] == 0x00 {
				return "", false, true // end of directory
			}
			if e[0] == 0xE5 {
				continue
			}
			attr := e[11]
			if attr&0x0F == 0x0F || attr&0x08 == 0 || attr&0x10 != 0 {
				continue
			}
			name := append([]byte(nil), e[0:11]...)
			if name[0] == 0x05 {
				name[0] = 0xE5
			}
			return cleanLabel(string(name)), true, true
		}
		return "", false, false
	}
	if g.bits != 32 {
		n := g.rootEntries * 32
		if n > 64<<10 {
			n = 64 << 10
		}
		b := make([]byte, n)
		if !readAt(r, size, g.rootDirOffset(), b) {
			return "", false
		}
		l, ok, _ := scan(b)
		return l, ok
	}
	// FAT32: the root directory is a cluster chain; follow at most a few
	// clusters, reading FAT entries one at a time.
	cb := g.clusterBytes()
	if cb > 64<<10 {
		return "", false
	}
	b := make([]byte, cb)
	entry := make([]byte, 4)
	c := g.rootCluster
	for hops := 0; hops < 16; hops++ {
		if c < 2 || int64(c-2) >= g.clusterCount() {
			return "", false
		}
		if !readAt(r, size, g.dataOffset()+int64(c-2)*cb, b) {
			return "", false
		}
		l, ok, end := scan(b)
		if ok || end {
			return l, ok
		}
		if !readAt(r, size, g.fatOffset()+int64(c)*4, entry) {
			return "", false
		}
		c = binary.LittleEndian.Uint32(entry) & 0x0FFFFFFF
		if c >= 0x0FFFFFF8 {
			return "", false
		}
	}
	return "", false
}

func probeExt(r io.ReaderAt, size int64) (Probe, bool) {
	sb := make([]byte, 1024)
	if !readAt(r, size, 1024, sb) {
		return Probe{}, false
	}
	if binary.LittleEndian.Uint16(sb[56:]) != 0xEF53 {
		return Probe{}, false
	}
	compat := binary.LittleEndian.Uint32(sb[92:])
	incompat := binary.LittleEndian.Uint32(sb[96:])
	roCompat := binary.LittleEndian.Uint32(sb[100:])
	typ := TypeExt2
	const (
		compatJournal    = 0x4
		incompatJournal  = 0x8 // an external journal device, not a filesystem
		ext3Incompat     = 0x2 | 0x4
		ext3RoCompat     = 0x1 | 0x2 | 0x4
		ext4OnlyIncompat = ^uint32(ext3Incompat)
		ext4OnlyRoCompat = ^uint32(ext3RoCompat)
	)
	if incompat&incompatJournal != 0 {
		return Probe{}, false
	}
	switch {
	case incompat&ext4OnlyIncompat != 0 || roCompat&ext4OnlyRoCompat != 0:
		typ = TypeExt4
	case compat&compatJournal != 0:
		typ = TypeExt3
	}
	return Probe{Type: typ, Label: cleanLabel(string(sb[120:136])), UUID: formatUUID(sb[104:120])}, true
}

func probeBtrfs(r io.ReaderAt, size int64) (Probe, bool) {
	sb := make([]byte, 0x12b+256)
	if !readAt(r, size, 0x10000, sb) {
		return Probe{}, false
	}
	if string(sb[0x40:0x48]) != "_BHRfS_M" {
		return Probe{}, false
	}
	l := sb[0x12b:]
	if i := bytes.IndexByte(l, 0); i >= 0 {
		l = l[:i]
	}
	return Probe{Type: TypeBtrfs, Label: cleanLabel(string(l)), UUID: formatUUID(sb[0x20:0x30])}, true
}

func probeXFS(r io.ReaderAt, size int64) (Probe, bool) {
	sb := make([]byte, 120)
	if !readAt(r, size, 0, sb) {
		return Probe{}, false
	}
	if string(sb[0:4]) != "XFSB" {
		return Probe{}, false
	}
	return Probe{Type: TypeXFS, Label: cleanLabel(string(sb[108:120])), UUID: formatUUID(sb[32:48])}, true
}

// formatUUID prints 16 bytes in the canonical 8-4-4-4-12 form.
func formatUUID(b []byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
