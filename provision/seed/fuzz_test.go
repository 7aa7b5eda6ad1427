package seed

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provision-dev/provision/sources/blockdev"
)

// FuzzFAT writes layouts with arbitrary names and contents as FAT images
// and reads them back with our own reader: a name is either refused as
// input or comes back with its content, and nothing panics.
func FuzzFAT(f *testing.F) {
	f.Add("script", "a/b-c.txt", []byte("#!/bin/sh\n"), 3)
	f.Add("Script", "script", []byte("x"), 1)
	f.Add("dir/u n.txt", "dir/x", []byte{0, 1, 2}, 700)
	f.Add("a.b.c", "LONGNAME-LONGNAME.longext", []byte("y"), 0)
	f.Fuzz(func(t *testing.T, n1, n2 string, data []byte, copies int) {
		copies = min(max(copies, 1), 2000)
		if len(data) == 0 {
			data = []byte{'\n'} // empty files: see TestEmptyFileReadBack
		}
		big := []byte(strings.Repeat(string(data), copies))
		l := &Layout{Label: "combustion", Filesystem: VFAT, Files: []File{
			{Name: "combustion/" + n1, Data: data, Mode: 0o644},
			{Name: "combustion/" + n2, Data: big, Mode: 0o644},
		}}
		if n1 == n2 {
			l.Files = l.Files[:1]
		}
		if strings.ContainsRune(n1+n2, '\x00') {
			return // no filesystem holds NUL; the inputs come from file names
		}
		if err := checkFATNames(l.Files); err != nil {
			if !errors.Is(err, ErrInput) {
				t.Fatalf("name check: %v", err)
			}
			return
		}
		// A file where a directory must go (a and a/b) is refused too.
		if strings.HasPrefix(strings.ToLower(n2), strings.ToLower(n1)+"/") || strings.HasPrefix(strings.ToLower(n1), strings.ToLower(n2)+"/") {
			return
		}
		img := filepath.Join(t.TempDir(), "f.img")
		if err := Write(l, img); err != nil {
			if errors.Is(err, ErrInput) {
				return // names FAT (or go-diskfs) cannot hold apart
			}
			t.Fatalf("write %q, %q: %v", n1, n2, err)
		}
		m, err := blockdev.Env{}.OpenImage(context.Background(), img)
		if err != nil {
			t.Fatalf("read back: %v", err)
		}
		defer m.Close()
		for _, file := range l.Files {
			// One read of the recorded size: Medium.ReadFile over-reads
			// FAT files (TestFATMultiClusterReadBack); this checks the
			// writer, that test the reader.
			fh, err := m.Open(file.Name)
			if err != nil {
				t.Fatalf("open %q: %v", file.Name, err)
			}
			st, err := fh.Stat()
			if err != nil {
				t.Fatal(err)
			}
			got := make([]byte, st.Size())
			_, err = io.ReadFull(fh, got)
			fh.Close()
			if err != nil {
				t.Fatalf("read back %q: %v", file.Name, err)
			}
			if string(got) != string(file.Data) {
				t.Fatalf("%q: read %d bytes, wrote %d", file.Name, len(got), len(file.Data))
			}
		}
	})
}
