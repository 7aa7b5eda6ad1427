package blockdev

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"
	"unicode/utf16"
)

// fatReader reads FAT12/16/32 directories and files straight from the
// bytes. go-diskfs resolves every Open from the root directory down and
// re-parses each directory on the way (compiling a regexp per entry), so
// reading the n files of one directory through it costs n² entry parses:
// minutes for a few thousand files. Here a directory is parsed once, by
// Medium's listing cache, and a file is read from the first cluster its
// entry names.
type fatReader struct {
	st  *rangeStorage
	g   *fatGeometry
	fat *fatTable
}

// maxFATDirBytes is the largest directory FAT allows: 65536 entries of 32
// bytes. A longer chain is corrupt.
const maxFATDirBytes = 65536 * 32

// fatEntry is one directory entry: it is its own fs.FileInfo and fs.DirEntry.
type fatEntry struct {
	name    string
	dir     bool
	size    int64
	cluster uint32
	mtime   time.Time
}

func (e *fatEntry) Name() string { return e.name }
func (e *fatEntry) Size() int64  { return e.size }
func (e *fatEntry) Mode() fs.FileMode {
	if e.dir {
		return fs.ModeDir | 0o555
	}
	return 0o444
}
func (e *fatEntry) ModTime() time.Time         { return e.mtime }
func (e *fatEntry) IsDir() bool                { return e.dir }
func (e *fatEntry) Sys() any                   { return nil }
func (e *fatEntry) Type() fs.FileMode          { return e.Mode().Type() }
func (e *fatEntry) Info() (fs.FileInfo, error) { return e, nil }

// readDir lists the directory whose entry is self (nil: the root).
func (r *fatReader) readDir(_ string, self fs.FileInfo) ([]fs.DirEntry, error) {
	var raw []byte
	switch e, _ := self.(*fatEntry); {
	case e == nil && r.g.bits != 32:
		// FAT12/16 keep the root in a fixed region before the data.
		raw = make([]byte, r.g.rootEntries*32)
		if err := r.st.readExact(raw, r.g.rootDirOffset()); err != nil {
			return nil, fmt.Errorf("root directory: %w", err)
		}
	case e == nil:
		var err error
		if raw, err = r.readChain(r.g.rootCluster, maxFATDirBytes, false); err != nil {
			return nil, fmt.Errorf("root directory: %w", err)
		}
	default:
		var err error
		if raw, err = r.readChain(e.cluster, maxFATDirBytes, false); err != nil {
			return nil, err
		}
	}
	return parseFATDir(raw, r.g.bits == 32), nil
}

// readFile reads the content of the file whose entry is fi.
func (r *fatReader) readFile(fi fs.FileInfo) ([]byte, error) {
	e, ok := fi.(*fatEntry)
	if !ok {
		return nil, errors.New("not a FAT directory entry")
	}
	return r.readChain(e.cluster, e.size, true)
}

// readChain reads the cluster chain starting at first: exactly want bytes
// when exact (a file: a chain shorter than its size is an error), else the
// whole chain up to want bytes (a directory).
func (r *fatReader) readChain(first uint32, want int64, exact bool) ([]byte, error) {
	cb := r.g.clusterBytes()
	if cb <= 0 {
		return nil, errors.New("cluster size is 0")
	}
	var out []byte
	for c := first; int64(len(out)) < want; {
		if c < 2 || c >= r.fat.count {
			return nil, fmt.Errorf("cluster chain from %d reaches invalid cluster %d after %d bytes", first, c, len(out))
		}
		n := min(cb, want-int64(len(out)))
		buf := make([]byte, n)
		if err := r.st.readExact(buf, r.g.dataOffset()+int64(c-2)*cb); err != nil {
			return nil, fmt.Errorf("cluster %d: %w", c, err)
		}
		out = append(out, buf...)
		next := r.fat.value(c)
		if r.fat.isEOC(next) {
			break
		}
		c = next
	}
	if exact && int64(len(out)) < want {
		return nil, fmt.Errorf("cluster chain from %d ends after %d of %d bytes", first, len(out), want)
	}
	return out, nil
}

// parseFATDir decodes the 32-byte entries of a directory: long names
// (checked against their short entry's checksum, as the kernel does), 8.3
// names with the NT lower-case flags, without deleted entries, volume
// labels, "." and "..".
func parseFATDir(b []byte, fat32 bool) []fs.DirEntry {
	var out []fs.DirEntry
	var lfn []uint16
	var lfnSum byte
	for i := 0; i+32 <= len(b); i += 32 {
		d := b[i : i+32]
		if d[0] == 0 {
			break // no entries after this one
		}
		if d[0] == 0xE5 {
			lfn = nil
			continue
		}
		if d[11] == 0x0F {
			if d[0]&0x40 != 0 {
				lfn, lfnSum = nil, d[13]
			}
			lfn = append(lfnChars(d), lfn...)
			continue
		}
		long := lfn
		lfn = nil
		if d[11]&0x08 != 0 {
			continue // volume label
		}
		short := shortName(d)
		if short == "" || short == "." || short == ".." {
			continue
		}
		name := short
		if len(long) > 0 && lfnSum == shortNameSum(d[:11]) {
			name = string(utf16.Decode(long))
		}
		hi := uint32(0)
		if fat32 { // FAT12/16 keep other things in the high word
			hi = uint32(binary.LittleEndian.Uint16(d[20:22]))
		}
		out = append(out, &fatEntry{
			name:    name,
			dir:     d[11]&0x10 != 0,
			size:    int64(binary.LittleEndian.Uint32(d[28:32])),
			cluster: hi<<16 | uint32(binary.LittleEndian.Uint16(d[26:28])),
			mtime:   fatTime(binary.LittleEndian.Uint16(d[24:26]), binary.LittleEndian.Uint16(d[22:24])),
		})
	}
	return out
}

// lfnChars returns the 13 UCS-2 characters of a long-name entry up to the
// terminating 0.
func lfnChars(d []byte) []uint16 {
	var cs []uint16
	for _, r := range [][2]int{{1, 11}, {14, 26}, {28, 32}} {
		for j := r[0]; j < r[1]; j += 2 {
			c := binary.LittleEndian.Uint16(d[j:])
			if c == 0 {
				return cs
			}
			cs = append(cs, c)
		}
	}
	return cs
}

func shortName(d []byte) string {
	base := []byte(strings.TrimRight(string(d[0:8]), " "))
	if len(base) > 0 && base[0] == 0x05 {
		base[0] = 0xE5 // a name really starting with 0xE5
	}
	ext := strings.TrimRight(string(d[8:11]), " ")
	if d[12]&0x08 != 0 {
		base = []byte(strings.ToLower(string(base)))
	}
	if d[12]&0x10 != 0 {
		ext = strings.ToLower(ext)
	}
	if ext == "" {
		return string(base)
	}
	return string(base) + "." + ext
}

func shortNameSum(n []byte) byte {
	var sum byte
	for _, c := range n {
		sum = (sum>>1 | sum<<7) + c
	}
	return sum
}

func fatTime(date, tm uint16) time.Time {
	return time.Date(1980+int(date>>9), time.Month(date>>5&0x0F), int(date&0x1F),
		int(tm>>11), int(tm>>5&0x3F), int(tm&0x1F)*2, 0, time.UTC)
}
