package blockdev

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// seedImages returns small real images to start fuzzing from, made with the
// real tools when they are installed.
func seedImages(f *testing.F) [][]byte { return seedImagesT(f) }

func seedImagesT(f testing.TB) [][]byte {
	dir := f.TempDir()
	var out [][]byte
	src := filepath.Join(dir, "src")
	_ = os.MkdirAll(filepath.Join(src, "combustion/sub"), 0o755)
	_ = os.WriteFile(filepath.Join(src, "combustion/script"), []byte("#!/bin/sh\n"), 0o644)
	_ = os.WriteFile(filepath.Join(src, "combustion/sub/f"), []byte("x"), 0o644)
	cmds := [][]string{
		{"mkfs.vfat", "-C", "-n", "combustion", filepath.Join(dir, "fat.img"), "200"},
		{"mcopy", "-s", "-i", filepath.Join(dir, "fat.img"), filepath.Join(src, "combustion"), "::/"},
		{"genisoimage", "-quiet", "-J", "-r", "-V", "cidata", "-o", filepath.Join(dir, "iso.img"), src},
	}
	for _, c := range cmds {
		if _, err := exec.LookPath(c[0]); err != nil {
			continue
		}
		_ = exec.Command(c[0], c[1:]...).Run()
	}
	for _, n := range []string{"fat.img", "iso.img"} {
		if b, err := os.ReadFile(filepath.Join(dir, n)); err == nil {
			out = append(out, b)
		}
	}
	return out
}

// FuzzProbe feeds arbitrary bytes to the superblock probes and the
// partition-table parser: they must never panic, whatever the lengths say.
func FuzzProbe(f *testing.F) {
	for _, b := range seedImages(f) {
		f.Add(b[:min(len(b), 96<<10)])
	}
	f.Add(make([]byte, 70000))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		p, err := ProbeReader(r, int64(len(data)))
		if err == nil && p.Type == "" {
			t.Fatal("probe succeeded without a type")
		}
		_ = ReadPartitions(r, int64(len(data)))
	})
}

// FuzzMedium opens arbitrary bytes as FAT or ISO9660 and reads everything:
// errors are fine, panics and hangs are not.
func FuzzMedium(f *testing.F) {
	for _, b := range seedImages(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		size := int64(len(data))
		p, err := ProbeReader(bytes.NewReader(data), size)
		if err != nil || (p.Type != TypeVFAT && p.Type != TypeISO9660) {
			return
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			m := &Medium{Volume: Volume{Name: "fuzz", Size: size, Probe: p}, maxSize: 1 << 20}
			if err := m.openDirect(bytes.NewReader(data)); err != nil {
				return
			}
			_ = m.Walk(".", func(path string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					_, _ = m.ReadFile(path)
				}
				return nil
			})
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("reading the medium did not finish in 10 s")
		}
	})
}
