package e2e

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// logBuilder writes a dm-log-writes log as the kernel target lays it out:
// the super in sector 0, then per entry a header sector and its data.
type logBuilder struct {
	ss      int
	buf     bytes.Buffer
	entries uint64
}

func newLogBuilder(ss int) *logBuilder {
	b := &logBuilder{ss: ss}
	b.buf.Write(make([]byte, ss))
	return b
}

func (b *logBuilder) entry(sector, sectors, flags uint64, mark string, data []byte) {
	hdr := make([]byte, b.ss)
	le := binary.LittleEndian
	le.PutUint64(hdr[0:], sector)
	le.PutUint64(hdr[8:], sectors)
	le.PutUint64(hdr[16:], flags)
	le.PutUint64(hdr[24:], uint64(len(mark)))
	copy(hdr[32:], mark)
	b.buf.Write(hdr)
	b.buf.Write(data)
	b.entries++
}

func (b *logBuilder) bytes(entries uint64) []byte {
	out := bytes.Clone(b.buf.Bytes())
	le := binary.LittleEndian
	le.PutUint64(out[0:], writeLogMagic)
	le.PutUint64(out[8:], writeLogVersion)
	le.PutUint64(out[16:], entries)
	le.PutUint32(out[24:], uint32(b.ss))
	return out
}

func fill(c byte, n int) []byte { return bytes.Repeat([]byte{c}, n) }

func TestWriteLogParseAndReplay(t *testing.T) {
	b := newLogBuilder(512)
	b.entry(2, 2, 0, "", fill('a', 1024))
	b.entry(0, 0, LogMark, "run-start", nil)
	b.entry(0, 0, LogFlush, "", nil)
	b.entry(6, 1, LogFUA|LogMetadata, "", fill('s', 512))
	b.entry(2, 1, LogDiscard, "", nil)
	b.entry(7, 1, 0, "", fill('z', 512))
	data := b.bytes(b.entries)
	l, err := ReadWriteLog(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Entries) != 6 || l.SectorSize != 512 {
		t.Fatalf("parsed %d entries of sector size %d, want 6 of 512", len(l.Entries), l.SectorSize)
	}
	if l.Entries[1].Mark != "run-start" {
		t.Errorf("mark %q", l.Entries[1].Mark)
	}
	var points []int
	for _, e := range l.Entries {
		if e.Checkpoint() {
			points = append(points, e.Index)
		}
	}
	if len(points) != 2 || points[0] != 2 || points[1] != 3 {
		t.Errorf("checkpoints %v, want the flush (2) and the FUA write (3)", points)
	}
	if s := l.Entries[3].String(); !strings.Contains(s, "FUA|META") {
		t.Errorf("String() = %q", s)
	}

	// Replayed onto a partition that starts 1 KiB into the image.
	img := filepath.Join(t.TempDir(), "disk")
	if err := os.WriteFile(img, fill('.', 1024+8*512), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, e := range l.Entries {
		if err := l.Apply(e, f, 1024); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	want := append(fill('.', 1024+2*512), fill(0, 512)...) // sector 2 written, then discarded
	want = append(want, fill('a', 512)...)
	want = append(want, fill('.', 2*512)...)
	want = append(want, fill('s', 512)...)
	want = append(want, fill('z', 512)...)
	if !bytes.Equal(got, want) {
		t.Errorf("replayed image differs from the writes:\n got %q\nwant %q", got, want)
	}

	// The copy keeps holes and data.
	dup := img + ".copy"
	if err := copySparse(img, dup); err != nil {
		t.Fatal(err)
	}
	if a, b := mustSum(t, img), mustSum(t, dup); a != b {
		t.Errorf("sparse copy differs: %s vs %s", a, b)
	}
}

func mustSum(t *testing.T, p string) string {
	t.Helper()
	s, err := fileSum(p)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestWriteLogRejects(t *testing.T) {
	b := newLogBuilder(512)
	b.entry(0, 2, 0, "", fill('a', 1024))
	good := b.bytes(1)
	for name, c := range map[string]struct {
		data []byte
		want string
	}{
		"not a log":     {make([]byte, 4096), "magic"},
		"short":         {good[:20], "super block"},
		"data past end": {good[:len(good)-1], "past the log's end"},
		"more entries":  {b.bytes(2), "beyond the log's end"},
		"entry count":   {b.bytes(1 << 40), "cannot fit"},
		"version": {func() []byte {
			d := bytes.Clone(good)
			d[8] = 2
			return d
		}(), "version 2"},
		"sector size": {func() []byte {
			d := bytes.Clone(good)
			binary.LittleEndian.PutUint32(d[24:], 1000)
			return d
		}(), "sector size 1000"},
	} {
		_, err := ReadWriteLog(bytes.NewReader(c.data), int64(len(c.data)))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one saying %q", name, err, c.want)
		}
	}
}

// FuzzReadWriteLog: no log image panics the parser, and what it accepts
// lies inside the image.
func FuzzReadWriteLog(f *testing.F) {
	b := newLogBuilder(512)
	b.entry(2, 1, LogFUA, "", fill('a', 512))
	b.entry(0, 0, LogMark, "m", nil)
	b.entry(0, 0, LogFlush, "", nil)
	b.entry(1, 8, LogDiscard, "", nil)
	f.Add(b.bytes(b.entries))
	f.Add(b.bytes(b.entries + 1))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := ReadWriteLog(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		for _, e := range l.Entries {
			if e.Flags&LogDiscard == 0 && e.dataAt+int64(e.Sectors)*l.SectorSize > int64(len(data)) {
				t.Fatalf("%v: data beyond the image", e)
			}
		}
	})
}
