package blockdev

import (
	"encoding/binary"
	"fmt"
	"io"
)

// checkFATChains reads the first FAT and refuses a table in which some
// cluster chain loops back on itself. go-diskfs follows chains without a
// bound, so a looping chain (a classic corruption, or a hostile stick) would
// otherwise grow a slice until memory runs out. The check is linear in the
// number of clusters.
func checkFATChains(r io.ReaderAt, size int64, g *fatGeometry) error {
	raw := make([]byte, g.fatBytes())
	if !readAt(r, size, g.fatOffset(), raw) {
		return fmt.Errorf("FAT at byte %d (%d bytes) lies outside the device", g.fatOffset(), len(raw))
	}
	var count uint32
	var value func(i uint32) uint32
	var isEOC func(v uint32) bool
	switch g.bits {
	case 12:
		count = uint32(len(raw) * 2 / 3)
		value = func(i uint32) uint32 {
			off := i * 3 / 2
			if int(off)+1 >= len(raw) {
				return 0
			}
			w := uint32(raw[off]) | uint32(raw[off+1])<<8
			if i%2 == 0 {
				return w & 0xFFF
			}
			return w >> 4
		}
		isEOC = func(v uint32) bool { return v >= 0xFF8 && v <= 0xFFF }
	case 16:
		count = uint32(len(raw) / 2)
		value = func(i uint32) uint32 { return uint32(binary.LittleEndian.Uint16(raw[i*2:])) }
		isEOC = func(v uint32) bool { return v >= 0xFFF8 }
	default:
		count = uint32(len(raw) / 4)
		// go-diskfs compares all 32 bits, so do the same: a value with the
		// reserved top bits set is "not end of chain" there.
		value = func(i uint32) uint32 { return binary.LittleEndian.Uint32(raw[i*4:]) }
		isEOC = func(v uint32) bool { return v&0xFFFFFF8 == 0xFFFFFF8 }
	}
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
