package blockdev_test

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"testing"

	"github.com/provision-dev/provision/sources/blockdev"
	"github.com/provision-dev/provision/sources/blockdev/blockdevtest"
	"github.com/provision-dev/provision/sources/drive"
)

// A medium stops being read once the context it was opened with is done:
// SIGTERM during a medium of thousands of files ends the read at the next
// file, not after the last one. The count of file reads is the test.
func TestReadStopsWhenCancelled(t *testing.T) {
	const n, stopAfter = 500, 10
	files := siblings(n)
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		make func() string
	}{
		{"iso", func() string {
			return blockdevtest.MakeISO(t, filepath.Join(dir, "c.iso"), "combustion", files, "-J", "-r")
		}},
		{"fat32", func() string {
			return blockdevtest.MakeFAT(t, filepath.Join(dir, "c.img"),
				blockdevtest.FAT{Label: "combustion", Bits: 32, SizeKiB: 65536, Files: files})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := tc.make()
			vols, err := blockdev.ScanImage(img)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			m, err := blockdev.Env{}.Open(ctx, vols[0])
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			reads := 0
			blockdev.OnRead(m, func() {
				if reads++; reads == stopAfter {
					cancel()
				}
			})
			docs, _, err := drive.ReadMedium(m, m.Name, 0)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("ReadMedium after cancel: %d documents, err %v; want context.Canceled", len(docs), err)
			}
			if reads != stopAfter {
				t.Errorf("%d files read, want %d: the read went on after the cancel", reads, stopAfter)
			}
			// Everything else on the medium now refuses too.
			if _, err := m.ReadDir("."); !errors.Is(err, context.Canceled) {
				t.Errorf("ReadDir after cancel: %v", err)
			}
			if err := m.Walk(".", func(string, fs.DirEntry, error) error { return nil }); !errors.Is(err, context.Canceled) {
				t.Errorf("Walk after cancel: %v", err)
			}
		})
	}
}

// A context done before the drive is read reads nothing.
func TestFromVolumesCancelledBefore(t *testing.T) {
	img := blockdevtest.MakeFAT(t, filepath.Join(t.TempDir(), "c.img"),
		blockdevtest.FAT{Label: "combustion", Bits: 12, SizeKiB: 1440, Files: siblings(5)})
	vols, err := blockdev.ScanImage(img)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	docs, err := drive.FromVolumes(ctx, blockdev.Env{}, vols)
	if !errors.Is(err, context.Canceled) || len(docs) != 0 {
		t.Fatalf("FromVolumes with a cancelled context: %d documents, %v", len(docs), err)
	}
}
