// Package disk grows a partition to the end of the free space behind it
// and the filesystem in it, as cloud-init's growpart and resize_rootfs do
// with cloud-utils' growpart script: the partition table (GPT or MBR) is
// edited here, the kernel is told with the BLKPG ioctl, and btrfs grows
// online with its resize ioctl. No external program is needed, which the
// initrd does not have.
package disk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// Device is what the table code reads and writes: a disk or an image.
type Device interface {
	io.ReaderAt
	io.WriterAt
}

// Growth is what growing found or did.
type Growth struct {
	Table      string // "gpt" or "dos"
	Partition  int    // 1-based
	SectorSize int64
	Start      int64 // sectors
	OldEnd     int64 // last sector, inclusive
	NewEnd     int64 // last sector, inclusive; == OldEnd when nothing changes
	// NoChange says why the partition stays as it is (growpart's
	// NOCHANGE); "" when it grows.
	NoChange string
}

// Changed reports whether the partition grows.
func (g Growth) Changed() bool { return g.NoChange == "" }

// Added is the size the partition gains, in bytes.
func (g Growth) Added() int64 { return (g.NewEnd - g.OldEnd) * g.SectorSize }

// String is growpart's CHANGED/NOCHANGE line.
func (g Growth) String() string {
	if !g.Changed() {
		return "NOCHANGE: " + g.NoChange
	}
	return fmt.Sprintf("CHANGED: partition=%d start=%d old: size=%d end=%d new: size=%d end=%d",
		g.Partition, g.Start, g.OldEnd-g.Start+1, g.OldEnd, g.NewEnd-g.Start+1, g.NewEnd)
}

// fudge is growpart's: a partition that would grow by less than 1 MiB
// is left alone, so a rerun after growing is a no-op.
const fudge = 1 << 20

// gptTailSectors is what growpart keeps free at the end of any disk: the
// backup GPT (header and a 128-entry array at 512 bytes a sector), so an
// MBR disk can be converted later without shrinking the partition.
const gptTailSectors = 33

// mbrMax512 is the MBR limit in 512-byte sectors (2 TiB): a 32-bit size.
const mbrMax512 = 1 << 32

// ErrNotGrowable marks a partition that cannot be grown in place by
// design (an extended or logical MBR partition, no table at all), as
// opposed to a read or write failure.
var ErrNotGrowable = errors.New("cannot be grown")

// Grow grows partition part (1-based, the kernel's number) of the disk dev
// of size bytes and sector size ss to the end of the free space behind
// it, the way growpart computes it: the start stays, the end goes to the
// sector before the next partition's start or before the disk's last 33
// sectors. With dryRun nothing is written. A GPT's backup header and
// entries move to the disk's new end, as sfdisk writes them.
func Grow(dev Device, size, ss int64, part int, dryRun bool) (Growth, error) {
	if ss < 512 || ss&(ss-1) != 0 {
		return Growth{}, fmt.Errorf("sector size %d is not a power of two of at least 512", ss)
	}
	if size < 4*ss {
		return Growth{}, fmt.Errorf("%d bytes is too small for a partition table", size)
	}
	mbr := make([]byte, 512)
	if _, err := dev.ReadAt(mbr, 0); err != nil {
		return Growth{}, fmt.Errorf("reading the MBR: %w", err)
	}
	if mbr[510] != 0x55 || mbr[511] != 0xAA {
		return Growth{}, fmt.Errorf("no partition table (no MBR signature): %w", ErrNotGrowable)
	}
	for i := 0; i < 4; i++ {
		if mbr[446+16*i+4] == 0xEE {
			return growGPT(dev, size, ss, part, mbr, dryRun)
		}
	}
	return growMBR(dev, size, ss, part, mbr, dryRun)
}

// maxEnd is growpart's end: the sector before the nearest start at or
// after the partition's end (the disk's end when there is none).
func maxEnd(end, sectors int64, starts []int64) int64 {
	lim := sectors
	for _, s := range starts {
		if s >= end && s < lim {
			lim = s
		}
	}
	return lim - 1
}

// decide fills in the new end or why there is none.
func decide(g *Growth, max int64) {
	g.NewEnd = g.OldEnd
	switch {
	case max < g.OldEnd:
		g.NoChange = fmt.Sprintf("partition %d ends past the usable end of the disk (sector %d > %d)", g.Partition, g.OldEnd, max)
	case max == g.OldEnd:
		g.NoChange = fmt.Sprintf("partition %d is size %d. it cannot be grown", g.Partition, g.OldEnd-g.Start+1)
	case g.OldEnd+fudge/g.SectorSize > max:
		g.NoChange = fmt.Sprintf("partition %d could only be grown by %d [fudge=%d]", g.Partition, max-g.OldEnd, fudge/g.SectorSize)
	default:
		g.NewEnd = max
	}
}

func growMBR(dev Device, size, ss int64, part int, mbr []byte, dryRun bool) (Growth, error) {
	g := Growth{Table: "dos", Partition: part, SectorSize: ss}
	if part > 4 {
		return g, fmt.Errorf("partition %d is a logical partition of an MBR extended partition: %w (growpart moves no extended partition's end either)", part, ErrNotGrowable)
	}
	if part < 1 {
		return g, fmt.Errorf("partition %d: no such partition", part)
	}
	e := mbr[446+16*(part-1):][:16]
	typ := e[4]
	if typ == 0 {
		return g, fmt.Errorf("partition %d: no such partition", part)
	}
	if typ == 0x05 || typ == 0x0f || typ == 0x85 {
		return g, fmt.Errorf("partition %d is an MBR extended partition: %w", part, ErrNotGrowable)
	}
	g.Start = int64(binary.LittleEndian.Uint32(e[8:]))
	n := int64(binary.LittleEndian.Uint32(e[12:]))
	if g.Start == 0 || n == 0 {
		return g, fmt.Errorf("partition %d: start %d, %d sectors: not a partition", part, g.Start, n)
	}
	g.OldEnd = g.Start + n - 1
	var starts []int64
	for i := 0; i < 4; i++ {
		o := mbr[446+16*i:][:16]
		if i != part-1 && o[4] != 0 {
			starts = append(starts, int64(binary.LittleEndian.Uint32(o[8:])))
		}
	}
	sectors := size / ss
	max := maxEnd(g.OldEnd, sectors, starts)
	// The 32-bit size and start limit an MBR to 2^32 sectors of 512
	// bytes; the rest of a larger disk stays unused (growpart warns).
	if lim := int64(mbrMax512) * (ss / 512); max > lim {
		max = lim
	}
	if max > sectors-gptTailSectors {
		max = sectors - gptTailSectors - 1
	}
	if max-g.Start+1 > 0xFFFFFFFF {
		max = g.Start + 0xFFFFFFFF - 1
	}
	decide(&g, max)
	if !g.Changed() || dryRun {
		return g, nil
	}
	binary.LittleEndian.PutUint32(e[12:], uint32(g.NewEnd-g.Start+1))
	copy(e[5:8], chs(g.NewEnd))
	if _, err := dev.WriteAt(mbr, 0); err != nil {
		return g, fmt.Errorf("writing the MBR: %w", err)
	}
	return g, nil
}

// chs is the CHS address of lba in the geometry fdisk assumes (255 heads,
// 63 sectors a track), or the all-ones "use the LBA" value past it.
func chs(lba int64) []byte {
	const heads, spt = 255, 63
	c := lba / (heads * spt)
	if c > 1023 {
		return []byte{0xFE, 0xFF, 0xFF}
	}
	h := (lba / spt) % heads
	s := lba%spt + 1
	return []byte{byte(h), byte(s) | byte((c>>2)&0xC0), byte(c)}
}

// gptHeader field offsets (UEFI 2.x, 5.3.2).
const (
	hdrCRC       = 16
	hdrMyLBA     = 24
	hdrAltLBA    = 32
	hdrFirstLBA  = 40
	hdrLastLBA   = 48
	hdrEntryLBA  = 72
	hdrEntries   = 80
	hdrEntrySize = 84
	hdrArrayCRC  = 88
)

func growGPT(dev Device, size, ss int64, part int, pmbr []byte, dryRun bool) (Growth, error) {
	g := Growth{Table: "gpt", Partition: part, SectorSize: ss}
	sectors := size / ss
	hdr := make([]byte, ss)
	if _, err := dev.ReadAt(hdr, ss); err != nil {
		return g, fmt.Errorf("reading the GPT header: %w", err)
	}
	if !bytes.Equal(hdr[:8], []byte("EFI PART")) {
		return g, errors.New("protective MBR but no GPT header at LBA 1")
	}
	hsize := binary.LittleEndian.Uint32(hdr[12:])
	if hsize < 92 || int64(hsize) > ss {
		return g, fmt.Errorf("GPT header size %d is invalid", hsize)
	}
	want := binary.LittleEndian.Uint32(hdr[hdrCRC:])
	if headerCRC(hdr[:hsize]) != want {
		return g, errors.New("the primary GPT header's CRC32 does not match (a damaged table is not grown)")
	}
	count := int64(binary.LittleEndian.Uint32(hdr[hdrEntries:]))
	esize := int64(binary.LittleEndian.Uint32(hdr[hdrEntrySize:]))
	// The array is 16 KiB by convention; a larger one than 1 MiB is no
	// table a tool made.
	if esize < 128 || esize%8 != 0 || esize > 4096 || count < 1 || count*esize > 1<<20 {
		return g, fmt.Errorf("GPT entry array of %d entries of %d bytes is invalid", count, esize)
	}
	entryLBA := int64(binary.LittleEndian.Uint64(hdr[hdrEntryLBA:]))
	arraySectors := (count*esize + ss - 1) / ss
	if entryLBA < 2 || entryLBA+arraySectors > sectors {
		return g, fmt.Errorf("GPT entry array at LBA %d lies outside the disk", entryLBA)
	}
	array := make([]byte, arraySectors*ss)
	if _, err := dev.ReadAt(array, entryLBA*ss); err != nil {
		return g, fmt.Errorf("reading the GPT entries: %w", err)
	}
	if crc32.ChecksumIEEE(array[:count*esize]) != binary.LittleEndian.Uint32(hdr[hdrArrayCRC:]) {
		return g, errors.New("the GPT entry array's CRC32 does not match (a damaged table is not grown)")
	}
	if part < 1 || int64(part) > count {
		return g, fmt.Errorf("partition %d: no such partition (the table has %d entries)", part, count)
	}
	entry := array[int64(part-1)*esize:][:esize]
	if isZero(entry[:16]) {
		return g, fmt.Errorf("partition %d: no such partition", part)
	}
	g.Start = int64(binary.LittleEndian.Uint64(entry[32:]))
	g.OldEnd = int64(binary.LittleEndian.Uint64(entry[40:]))
	if g.Start < 1 || g.OldEnd < g.Start {
		return g, fmt.Errorf("partition %d: sectors %d to %d: not a partition", part, g.Start, g.OldEnd)
	}
	var starts []int64
	for i := int64(0); i < count; i++ {
		o := array[i*esize:][:esize]
		if i != int64(part-1) && !isZero(o[:16]) {
			starts = append(starts, int64(binary.LittleEndian.Uint64(o[32:])))
		}
	}
	// The backup array and header take the disk's last sectors; the last
	// usable sector is the one before them, as sfdisk computes it.
	newLast := sectors - 1 - arraySectors - 1
	max := maxEnd(g.OldEnd, sectors, starts)
	if max > sectors-gptTailSectors {
		max = sectors - gptTailSectors - 1
	}
	if max > newLast {
		max = newLast
	}
	decide(&g, max)
	if !g.Changed() || dryRun {
		return g, nil
	}
	binary.LittleEndian.PutUint64(entry[40:], uint64(g.NewEnd))
	arrayCRC := crc32.ChecksumIEEE(array[:count*esize])

	binary.LittleEndian.PutUint64(hdr[hdrAltLBA:], uint64(sectors-1))
	binary.LittleEndian.PutUint64(hdr[hdrLastLBA:], uint64(newLast))
	binary.LittleEndian.PutUint32(hdr[hdrArrayCRC:], arrayCRC)
	binary.LittleEndian.PutUint32(hdr[hdrCRC:], headerCRC(hdr[:hsize]))

	backup := bytes.Clone(hdr)
	backupArray := newLast + 1
	binary.LittleEndian.PutUint64(backup[hdrMyLBA:], uint64(sectors-1))
	binary.LittleEndian.PutUint64(backup[hdrAltLBA:], 1)
	binary.LittleEndian.PutUint64(backup[hdrEntryLBA:], uint64(backupArray))
	binary.LittleEndian.PutUint32(backup[hdrCRC:], headerCRC(backup[:hsize]))

	// Backup first, primary last: until the primary is written, the old
	// table is what a reader trusts (the primary is read first).
	if _, err := dev.WriteAt(array, backupArray*ss); err != nil {
		return g, fmt.Errorf("writing the backup GPT entries: %w", err)
	}
	if _, err := dev.WriteAt(backup, (sectors-1)*ss); err != nil {
		return g, fmt.Errorf("writing the backup GPT header: %w", err)
	}
	if _, err := dev.WriteAt(array, entryLBA*ss); err != nil {
		return g, fmt.Errorf("writing the GPT entries: %w", err)
	}
	if _, err := dev.WriteAt(hdr, ss); err != nil {
		return g, fmt.Errorf("writing the GPT header: %w", err)
	}
	// The protective MBR covers the whole disk, up to what 32 bits hold.
	for i := 0; i < 4; i++ {
		e := pmbr[446+16*i:][:16]
		if e[4] == 0xEE {
			n := sectors - 1
			if n > 0xFFFFFFFF {
				n = 0xFFFFFFFF
			}
			binary.LittleEndian.PutUint32(e[12:], uint32(n))
			// sfdisk's choice, which UEFI allows: "not representable".
			copy(e[5:8], []byte{0xFF, 0xFF, 0xFF})
		}
	}
	if _, err := dev.WriteAt(pmbr, 0); err != nil {
		return g, fmt.Errorf("writing the protective MBR: %w", err)
	}
	return g, nil
}

// headerCRC is the header's CRC32 computed with its own field zeroed.
func headerCRC(h []byte) uint32 {
	c := bytes.Clone(h)
	binary.LittleEndian.PutUint32(c[hdrCRC:], 0)
	return crc32.ChecksumIEEE(c)
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
