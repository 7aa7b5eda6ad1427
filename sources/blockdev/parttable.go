package blockdev

import (
	"bytes"
	"encoding/binary"
	"io"
)

// Partition is one entry of an MBR or GPT partition table, in bytes.
type Partition struct {
	Number int
	Start  int64
	Size   int64
}

const (
	maxGPTEntries = 256 // the usual table size; more is not a real disk
	maxLogical    = 64  // bound on the extended-partition chain
)

// ReadPartitions parses the partition table at the start of r (an image file
// or a whole disk): GPT when a protective MBR points to one, else MBR with
// logical partitions numbered from 5 as Linux does. Entries that do not fit
// inside size are dropped. No table yields no partitions and no error: the
// caller probes the whole device instead.
func ReadPartitions(r io.ReaderAt, size int64) []Partition {
	mbr := make([]byte, 512)
	if !readAt(r, size, 0, mbr) || mbr[510] != 0x55 || mbr[511] != 0xAA {
		return nil
	}
	for i := 0; i < 4; i++ {
		if mbr[446+i*16+4] == 0xEE {
			for _, ss := range []int64{512, 4096} {
				if parts, ok := readGPT(r, size, ss); ok {
					return parts
				}
			}
			return nil
		}
	}
	var parts []Partition
	for i := 0; i < 4; i++ {
		e := mbr[446+i*16 : 446+i*16+16]
		if e[0] != 0 && e[0] != 0x80 {
			return nil // a FAT boot sector or garbage, not a partition table
		}
		typ := e[4]
		start := int64(binary.LittleEndian.Uint32(e[8:])) * 512
		n := int64(binary.LittleEndian.Uint32(e[12:])) * 512
		if typ == 0 || n == 0 {
			continue
		}
		if typ == 0x05 || typ == 0x0F || typ == 0x85 {
			parts = append(parts, readLogical(r, size, start)...)
			continue
		}
		if start > 0 && start+n <= size {
			parts = append(parts, Partition{Number: i + 1, Start: start, Size: n})
		}
	}
	return parts
}

// readLogical follows the chain of extended boot records; offsets of the
// next link are relative to the start of the extended partition.
func readLogical(r io.ReaderAt, size, extStart int64) []Partition {
	var parts []Partition
	ebr := make([]byte, 512)
	cur := extStart
	for num := 5; num < 5+maxLogical; num++ {
		if !readAt(r, size, cur, ebr) || ebr[510] != 0x55 || ebr[511] != 0xAA {
			break
		}
		e := ebr[446:462]
		start := cur + int64(binary.LittleEndian.Uint32(e[8:]))*512
		n := int64(binary.LittleEndian.Uint32(e[12:])) * 512
		if e[4] != 0 && n > 0 && start+n <= size {
			parts = append(parts, Partition{Number: num, Start: start, Size: n})
		}
		next := ebr[462:478]
		rel := int64(binary.LittleEndian.Uint32(next[8:])) * 512
		if next[4] == 0 || rel == 0 {
			break
		}
		if nc := extStart + rel; nc > cur {
			cur = nc
		} else {
			break // a link backwards would loop
		}
	}
	return parts
}

func readGPT(r io.ReaderAt, size, sectorSize int64) ([]Partition, bool) {
	hdr := make([]byte, 92)
	if !readAt(r, size, sectorSize, hdr) || !bytes.Equal(hdr[0:8], []byte("EFI PART")) {
		return nil, false
	}
	entriesLBA := int64(binary.LittleEndian.Uint64(hdr[72:]))
	count := int64(binary.LittleEndian.Uint32(hdr[80:]))
	entrySize := int64(binary.LittleEndian.Uint32(hdr[84:]))
	if entrySize < 128 || entrySize > 4096 || count <= 0 {
		return nil, false
	}
	count = min(count, maxGPTEntries)
	if entriesLBA <= 0 || entriesLBA > size/sectorSize {
		return nil, false
	}
	table := make([]byte, count*entrySize)
	if !readAt(r, size, entriesLBA*sectorSize, table) {
		return nil, false
	}
	var parts []Partition
	zero := make([]byte, 16)
	for i := int64(0); i < count; i++ {
		e := table[i*entrySize : (i+1)*entrySize]
		if bytes.Equal(e[0:16], zero) {
			continue
		}
		first := int64(binary.LittleEndian.Uint64(e[32:]))
		last := int64(binary.LittleEndian.Uint64(e[40:]))
		if first <= 0 || last < first || last >= size/sectorSize {
			continue
		}
		parts = append(parts, Partition{Number: int(i) + 1, Start: first * sectorSize, Size: (last - first + 1) * sectorSize})
	}
	return parts, true
}
