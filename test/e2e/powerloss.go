package e2e

// Power-loss replay: a run inside the VM writes through the kernel's
// dm-log-writes target, which records every write that reached the disk,
// in the order it reached it, with the FLUSH and FUA requests between them
// (Documentation/admin-guide/device-mapper/log-writes.rst). Replaying a
// prefix of the log that ends at a flush or FUA entry onto the disk as it
// was before the boot gives the disk a power cut at that moment would have
// left (xfstests' replay-log does the same), without the page cache a
// killed process keeps.

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Flags of a log entry (dm-log-writes.c).
const (
	LogFlush    = 1 << 0
	LogFUA      = 1 << 1
	LogDiscard  = 1 << 2
	LogMark     = 1 << 3
	LogMetadata = 1 << 4
)

const (
	writeLogMagic   = 0x6a736677736872
	writeLogVersion = 1
	logEntryHeader  = 32 // struct log_write_entry
)

// LogEntry is one entry of a dm-log-writes log. Sector and Sectors count
// the log's sectors (its super's sectorsize, the data device's logical
// block size).
type LogEntry struct {
	Index   int
	Sector  uint64
	Sectors uint64
	Flags   uint64
	Mark    string // a MARK entry's text
	dataAt  int64  // where the written data starts in the log
}

// Checkpoint reports whether a power cut right after the entry is one the
// replay checks: a flush completed (everything before it is on the disk)
// or a FUA write reached the medium.
func (e LogEntry) Checkpoint() bool { return e.Flags&(LogFlush|LogFUA) != 0 }

func (e LogEntry) String() string {
	var f []string
	for _, n := range []struct {
		bit  uint64
		name string
	}{{LogFlush, "FLUSH"}, {LogFUA, "FUA"}, {LogDiscard, "DISCARD"}, {LogMark, "MARK"}, {LogMetadata, "META"}} {
		if e.Flags&n.bit != 0 {
			f = append(f, n.name)
		}
	}
	s := fmt.Sprintf("entry %d [%s] sector %d +%d", e.Index, strings.Join(f, "|"), e.Sector, e.Sectors)
	if e.Mark != "" {
		s += fmt.Sprintf(" mark %q", e.Mark)
	}
	return s
}

// WriteLog is a parsed log; the data stays in the log device's image.
type WriteLog struct {
	SectorSize int64
	Entries    []LogEntry
	r          io.ReaderAt
}

// ReadWriteLog parses the log device image r of size bytes. Every entry and
// its data must lie inside it: a log that ran out of space or was never
// finished (the target removed) is an error, not a shorter replay.
func ReadWriteLog(r io.ReaderAt, size int64) (*WriteLog, error) {
	var sb [28]byte
	if _, err := r.ReadAt(sb[:], 0); err != nil {
		return nil, fmt.Errorf("write log: reading the super block: %w", err)
	}
	le := binary.LittleEndian
	if m := le.Uint64(sb[0:]); m != writeLogMagic {
		return nil, fmt.Errorf("write log: magic %#x, want %#x (not a dm-log-writes log)", m, writeLogMagic)
	}
	if v := le.Uint64(sb[8:]); v != writeLogVersion {
		return nil, fmt.Errorf("write log: version %d, want %d", v, writeLogVersion)
	}
	n := le.Uint64(sb[16:])
	ss := int64(le.Uint32(sb[24:]))
	if ss < 512 || ss > 1<<16 || ss&(ss-1) != 0 {
		return nil, fmt.Errorf("write log: sector size %d: want a power of two from 512 to 65536", ss)
	}
	// Each entry takes a sector at least: a count beyond that is corrupt.
	if n > uint64(size/ss) {
		return nil, fmt.Errorf("write log: %d entries cannot fit in %d bytes", n, size)
	}
	l := &WriteLog{SectorSize: ss, r: r, Entries: make([]LogEntry, 0, n)}
	hdr := make([]byte, ss)
	pos := ss
	for i := 0; uint64(i) < n; i++ {
		if pos > size-ss {
			return nil, fmt.Errorf("write log: entry %d at byte %d: beyond the log's end (%d bytes)", i, pos, size)
		}
		if _, err := r.ReadAt(hdr, pos); err != nil {
			return nil, fmt.Errorf("write log: entry %d at byte %d: %w", i, pos, err)
		}
		e := LogEntry{Index: i, Sector: le.Uint64(hdr[0:]), Sectors: le.Uint64(hdr[8:]), Flags: le.Uint64(hdr[16:])}
		dataLen := le.Uint64(hdr[24:])
		pos += ss
		if e.Flags&LogMark != 0 {
			if dataLen > uint64(ss-logEntryHeader) {
				return nil, fmt.Errorf("write log: entry %d: mark of %d bytes in a %d-byte sector", i, dataLen, ss)
			}
			e.Mark = string(hdr[logEntryHeader : logEntryHeader+dataLen])
		}
		if e.Flags&LogDiscard == 0 {
			if e.Sectors > uint64(size/ss) {
				return nil, fmt.Errorf("write log: entry %d: %d sectors of data cannot fit in the log", i, e.Sectors)
			}
			span := int64(e.Sectors) * ss
			if span > size-pos {
				return nil, fmt.Errorf("write log: entry %d: %d bytes of data at byte %d run past the log's end (%d bytes)", i, span, pos, size)
			}
			e.dataAt = pos
			pos += span
		}
		l.Entries = append(l.Entries, e)
	}
	return l, nil
}

// Apply performs the entry on dst, the data device whose first byte is at
// offset in dst (a partition of a whole-disk image). A discard punches a
// hole: what a discarded range reads back as is undefined, zeros are one
// answer a disk may give.
func (l *WriteLog) Apply(e LogEntry, dst *os.File, offset int64) error {
	if e.Sectors == 0 || e.Flags&LogMark != 0 {
		return nil
	}
	if e.Sector > uint64(1<<62)/uint64(l.SectorSize) || e.Sectors > uint64(1<<62)/uint64(l.SectorSize) {
		return fmt.Errorf("%v: out of range", e)
	}
	at := offset + int64(e.Sector)*l.SectorSize
	n := int64(e.Sectors) * l.SectorSize
	if e.Flags&LogDiscard != 0 {
		if err := unix.Fallocate(int(dst.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, at, n); err != nil {
			if _, werr := dst.WriteAt(make([]byte, n), at); werr != nil {
				return fmt.Errorf("%v: %w", e, errors.Join(err, werr))
			}
		}
		return nil
	}
	if _, err := io.Copy(&offsetWriter{f: dst, at: at}, io.NewSectionReader(l.r, e.dataAt, n)); err != nil {
		return fmt.Errorf("%v: %w", e, err)
	}
	return nil
}

type offsetWriter struct {
	f  *os.File
	at int64
}

func (w *offsetWriter) Write(p []byte) (int, error) {
	n, err := w.f.WriteAt(p, w.at)
	w.at += int64(n)
	return n, err
}

// copySparse copies src to dst (replaced) reading only the data extents
// (SEEK_DATA/SEEK_HOLE), so a 512 MiB image holding 40 MiB costs 40 MiB.
func copySparse(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	err = copyExtents(in, out, st.Size())
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("copying %s to %s: %w", src, dst, err)
	}
	return nil
}

func copyExtents(in, out *os.File, size int64) error {
	if err := out.Truncate(size); err != nil {
		return err
	}
	fd := int(in.Fd())
	for pos := int64(0); pos < size; {
		start, err := unix.Seek(fd, pos, unix.SEEK_DATA)
		if errors.Is(err, syscall.ENXIO) {
			return nil // only a hole is left
		}
		if err != nil {
			return err
		}
		end, err := unix.Seek(fd, start, unix.SEEK_HOLE)
		if err != nil {
			return err
		}
		if _, err := io.Copy(&offsetWriter{f: out, at: start}, io.NewSectionReader(in, start, end-start)); err != nil {
			return err
		}
		pos = end
	}
	return nil
}

// fileSum is the SHA-256 of a whole file.
func fileSum(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return fmt.Sprintf("%x", h.Sum(nil)), nil
}

// inspectTree reads the top level mounted at top as the judges need it:
// its subvolumes and default, and the picture of its whole tree.
func inspectTree(top string) (*Inspection, map[string]string, error) {
	in := &Inspection{Top: top}
	if err := in.load(); err != nil {
		return nil, nil, err
	}
	d, err := treeDigest(top)
	if err != nil {
		return nil, nil, err
	}
	return in, d, nil
}

// treeDigest pictures a tree for comparison: per path below dir, its type
// and mode, owner, and for a regular file its size and SHA-256, for a
// symlink its target. Times are left out: a read may change atime.
func treeDigest(dir string) (map[string]string, error) {
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		st := info.Sys().(*syscall.Stat_t)
		v := fmt.Sprintf("%v %d:%d", info.Mode(), st.Uid, st.Gid)
		switch {
		case info.Mode().IsRegular():
			sum, err := fileSum(p)
			if err != nil {
				return err
			}
			v += fmt.Sprintf(" %d %s", info.Size(), sum)
		case info.Mode()&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			v += " -> " + l
		}
		out[rel] = v
		return nil
	})
	return out, err
}

// subDigest is the part of a top-level digest below prefix, relative to it.
func subDigest(top map[string]string, prefix string) map[string]string {
	out := map[string]string{}
	for p, v := range top {
		switch {
		case p == prefix:
			out["."] = v
		case strings.HasPrefix(p, prefix+"/"):
			out[strings.TrimPrefix(p, prefix+"/")] = v
		}
	}
	return out
}

// digestDiff lists what changed from a to b, sorted, at most max lines.
func digestDiff(a, b map[string]string, max int) []string {
	var d []string
	for k, v := range a {
		if w, ok := b[k]; !ok {
			d = append(d, "removed "+k)
		} else if v != w {
			d = append(d, "changed "+k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			d = append(d, "added "+k)
		}
	}
	sort.Strings(d)
	if len(d) > max {
		d = append(d[:max], fmt.Sprintf("... %d more", len(d)-max))
	}
	return d
}

// digestChanges lists what was added or changed from a to b with b's
// picture of it (the file's size and a short hash), and what was removed,
// sorted, at most max lines.
func digestChanges(a, b map[string]string, max int) []string {
	short := func(v string) string {
		f := strings.Fields(v)
		if len(f) == 4 && len(f[3]) == 64 {
			f[3] = f[3][:12]
		}
		return strings.Join(f, " ")
	}
	var d []string
	for _, line := range digestDiff(a, b, 1<<30) {
		kind, p, _ := strings.Cut(line, " ")
		if kind != "removed" {
			line += " (" + short(b[p]) + ")"
		}
		d = append(d, line)
	}
	if len(d) > max {
		d = append(d[:max], fmt.Sprintf("... %d more", len(d)-max))
	}
	return d
}

// digestSum condenses a digest into one comparable string.
func digestSum(d map[string]string) string {
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%s\x00%s\x00", k, d[k])
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}
