package blockdev

import (
	"encoding/binary"
	"fmt"
	"io"
)

// go-diskfs v1.9 resolves paths through the ISO9660 path table (used for
// plain and Joliet-only images; Rock Ridge images walk directories instead)
// with two bugs: after the first component it keeps comparing names with the
// first component, and it numbers records from 0 where the standard numbers
// them from 1. One level deep works; deeper it finds nothing or, for
// "a/b" next to "a/a", the wrong directory.
//
// We correct this on the read side, without touching the medium: the
// backend serves each path table with the parent number of every record
// below the first level set to 0xFFFF, so only first-level lookups can
// succeed through the table and go-diskfs falls back to walking the
// directory records, which it does correctly for the primary tree. (Its
// Joliet fallback decodes names as ASCII, so a Joliet-only image without
// Rock Ridge cannot be read below the first level; a clear error results.)

// maxPathTable bounds the path table go-diskfs allocates from the size in a
// descriptor: a seed has a few directories (about 10 bytes each).
const maxPathTable = 1 << 20

// patch replaces the bytes a reader sees at [off, off+len(data)).
type patch struct {
	off  int64
	data []byte
}

// isoPathTableFixes inspects the volume descriptors and returns the patches
// described above. It fails for descriptors claiming absurd path tables.
func isoPathTableFixes(r io.ReaderAt, size int64) ([]patch, error) {
	var patches []patch
	desc := make([]byte, isoDescSize)
	for i := int64(0); i < isoMaxDescCount; i++ {
		descOff := isoSystemArea + i*isoDescSize
		if !readAt(r, size, descOff, desc) || string(desc[1:6]) != "CD001" || desc[0] == 255 {
			break
		}
		if desc[0] != 1 && desc[0] != 2 {
			continue
		}
		bs := int64(binary.LittleEndian.Uint16(desc[128:130]))
		ptSize := int64(binary.LittleEndian.Uint32(desc[132:136]))
		ptLoc := int64(binary.LittleEndian.Uint32(desc[140:144])) * bs
		if ptSize > maxPathTable || ptLoc+ptSize > size {
			return nil, fmt.Errorf("volume descriptor %d: path table of %d bytes at %d does not fit the image", i, ptSize, ptLoc)
		}
		if bs == 0 || ptSize < 10 {
			continue
		}
		table := make([]byte, ptSize)
		if !readAt(r, size, ptLoc, table) {
			continue
		}
		patched := false
		for off := int64(0); off+8 <= ptSize; {
			n := int64(table[off])
			if n == 0 {
				break
			}
			if off > 0 && binary.LittleEndian.Uint16(table[off+6:]) != 1 {
				binary.LittleEndian.PutUint16(table[off+6:], 0xFFFF)
				patched = true
			}
			off += 8 + n + n%2
		}
		if patched {
			patches = append(patches, patch{off: ptLoc, data: table})
		}
	}
	return patches, nil
}

// applyPatches overlays patches on p, which was read at off.
func applyPatches(patches []patch, p []byte, off int64) {
	end := off + int64(len(p))
	for _, pt := range patches {
		pEnd := pt.off + int64(len(pt.data))
		if pt.off >= end || pEnd <= off {
			continue
		}
		lo, hi := max(off, pt.off), min(end, pEnd)
		copy(p[lo-off:hi-off], pt.data[lo-pt.off:hi-pt.off])
	}
}
