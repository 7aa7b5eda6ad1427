package blockdev

import (
	"encoding/binary"
	"fmt"
	"io"
)

// fatTable is the first FAT of a volume, as read once when it is opened:
// checkFATChains vets it and the directory and file readers follow it.
type fatTable struct {
	raw   []byte
	bits  int
	count uint32 // entries in the table
}

func readFATTable(r io.ReaderAt, size int64, g *fatGeometry) (*fatTable, error) {
	raw := make([]byte, g.fatBytes())
	if !readAt(r, size, g.fatOffset(), raw) {
		return nil, fmt.Errorf("FAT at byte %d (%d bytes) lies outside the device", g.fatOffset(), len(raw))
	}
	t := &fatTable{raw: raw, bits: g.bits}
	switch g.bits {
	case 12:
		t.count = uint32(len(raw) * 2 / 3)
	case 16:
		t.count = uint32(len(raw) / 2)
	default:
		t.count = uint32(len(raw) / 4)
	}
	return t, nil
}

// value is the table entry of cluster i: the next cluster of its chain.
func (t *fatTable) value(i uint32) uint32 {
	switch t.bits {
	case 12:
		off := i * 3 / 2
		if int(off)+1 >= len(t.raw) {
			return 0
		}
		w := uint32(t.raw[off]) | uint32(t.raw[off+1])<<8
		if i%2 == 0 {
			return w & 0xFFF
		}
		return w >> 4
	case 16:
		return uint32(binary.LittleEndian.Uint16(t.raw[i*2:]))
	default:
		// go-diskfs compares all 32 bits, so do the same: a value with the
		// reserved top bits set is "not end of chain" there.
		return binary.LittleEndian.Uint32(t.raw[i*4:])
	}
}

func (t *fatTable) isEOC(v uint32) bool {
	switch t.bits {
	case 12:
		return v >= 0xFF8 && v <= 0xFFF
	case 16:
		return v >= 0xFFF8
	default:
		return v&0xFFFFFF8 == 0xFFFFFF8
	}
}

// checkFATChains refuses a table in which some cluster chain loops back on
// itself. go-diskfs follows chains without a bound, and so would our
// readers, so a looping chain (a classic corruption, or a hostile stick)
// would otherwise grow a slice until memory runs out. The check is linear
// in the number of clusters.
func checkFATChains(t *fatTable) error {
	count, value, isEOC := t.count, t.value, t.isEOC
	const (
		unseen = iota
		onPath
		done
	)
	state := make([]uint8, count)
	path := make([]uint32, 0, 64)
	for start := uint32(2); start < count; start++ {
		if state[start] != unseen {
			continue
		}
		path = path[:0]
		c := start
		for {
			if state[c] == done {
				break
			}
			if state[c] == onPath {
				return fmt.Errorf("corrupt FAT: cluster chain through cluster %d loops", c)
			}
			state[c] = onPath
			path = append(path, c)
			v := value(c)
			if isEOC(v) || v < 2 || v >= count {
				break
			}
			c = v
		}
		for _, p := range path {
			state[p] = done
		}
	}
	return nil
}
