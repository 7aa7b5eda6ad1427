package blockdev_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provision-dev/provision/sources/blockdev"
	"github.com/provision-dev/provision/sources/blockdev/blockdevtest"
	"github.com/provision-dev/provision/sources/drive"
)

// siblings is a Combustion tree of n files next to the script. The names
// are 8.3 ones: mcopy takes minutes to make thousands of long names.
func siblings(n int) map[string]string {
	files := map[string]string{"combustion/script": "#!/bin/sh\necho hi\n"}
	for i := range n {
		files[fmt.Sprintf("combustion/f%04d.cfg", i)] = fmt.Sprintf("content %d\n", i)
	}
	return files
}

// Reading a medium is linear: each directory is read from the bytes once
// and the bytes about once, however many siblings a file has. go-diskfs
// resolves each path from the root and re-parses the parent directory, so
// 3,000 siblings took 71 s (ISO) and 140 s (FAT32) before.
func TestManySiblingsReadOnce(t *testing.T) {
	const n = 3000
	files := siblings(n)
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		make func() string
	}{
		{"iso-rock-joliet", func() string {
			return blockdevtest.MakeISO(t, filepath.Join(dir, "c.iso"), "combustion", files, "-J", "-r")
		}},
		{"iso-plain", func() string {
			return blockdevtest.MakeISO(t, filepath.Join(dir, "p.iso"), "combustion", files,
				"-l", "-allow-lowercase", "-allow-multidot", "-relaxed-filenames", "-iso-level", "4")
		}},
		{"fat32", func() string {
			return blockdevtest.MakeFAT(t, filepath.Join(dir, "c.img"),
				blockdevtest.FAT{Label: "combustion", Bits: 32, SizeKiB: 65536, Files: files})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := tc.make()
			m := openOnly(t, img)
			start := time.Now()
			docs, ok, err := drive.ReadMedium(m, m.Name, 0)
			took := time.Since(start)
			if err != nil || !ok {
				t.Fatalf("ReadMedium: %v (combustion/ found: %v)", err, ok)
			}
			if len(docs) != n+1 {
				t.Fatalf("%d documents, want %d", len(docs), n+1)
			}
			for _, d := range docs {
				want := files["combustion/"+d.Origin.File]
				if string(d.Data) != want {
					t.Fatalf("%s = %q, want %q", d.Origin.File, d.Data, want)
				}
			}
			// ".", "combustion" (and "ignition", absent, needs only ".").
			if got := blockdev.DirReads(m); got > 2 {
				t.Errorf("%d directory reads, want 2", got)
			}
			if got, size := blockdev.BytesRead(m), fileSize(t, img); got > 2*size {
				t.Errorf("read %d bytes of a %d-byte medium: something is read again", got, size)
			}
			t.Logf("%d files in %s, %d bytes read of %d", n, took.Round(time.Millisecond), blockdev.BytesRead(m), fileSize(t, img))
		})
	}
}

// Names resolve without case on FAT, as on the kernel's vfat.
func TestFATLookupIgnoresCase(t *testing.T) {
	img := blockdevtest.MakeFAT(t, filepath.Join(t.TempDir(), "f.img"),
		blockdevtest.FAT{Label: "cidata", Bits: 12, SizeKiB: 1440, Files: map[string]string{"User-Data": "u", "sub/Deep.TXT": "d"}})
	m := openOnly(t, img)
	for name, want := range map[string]string{"user-data": "u", "USER-DATA": "u", "SUB/deep.txt": "d"} {
		if b, err := m.ReadFile(name); err != nil || string(b) != want {
			t.Errorf("%s = %q, %v", name, b, err)
		}
	}
	if _, err := m.ReadFile("sub/none"); err == nil || !strings.Contains(err.Error(), "not exist") {
		t.Errorf("absent file: %v", err)
	}
}

// Sibling directories are bounded: past 256, the medium is refused at once
// with the limit named (each ISO directory is found from the root, so a
// listing of thousands would take minutes); under it, every file is read.
func TestSiblingDirectoriesLimit(t *testing.T) {
	for _, tc := range []struct {
		dirs int
		fail bool
	}{{200, false}, {300, true}} {
		files := map[string]string{"combustion/script": "#!/bin/sh\n"}
		for i := 0; i < tc.dirs; i++ {
			files[fmt.Sprintf("combustion/d%04d/f.cfg", i)] = fmt.Sprintf("c %d\n", i)
		}
		img := blockdevtest.MakeISO(t, filepath.Join(t.TempDir(), "c.iso"), "combustion", files, "-J", "-r")
		m := openOnly(t, img)
		docs, ok, err := drive.ReadMedium(m, m.Name, 0)
		if tc.fail {
			if err == nil || !strings.Contains(err.Error(), "more than 256 directories below combustion") {
				t.Errorf("%d directories: %v, want the limit named", tc.dirs, err)
			}
			if got := blockdev.DirReads(m); got > 258 {
				t.Errorf("%d directories read before giving up", got)
			}
			continue
		}
		if err != nil || !ok || len(docs) != tc.dirs+1 {
			t.Errorf("%d directories: %d documents, %v", tc.dirs, len(docs), err)
		}
	}
}
