package image_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provision-dev/provision/sources"
	"github.com/provision-dev/provision/sources/blockdev"
	"github.com/provision-dev/provision/sources/blockdev/blockdevtest"
	"github.com/provision-dev/provision/sources/configdrive"
	"github.com/provision-dev/provision/sources/drive"
	"github.com/provision-dev/provision/sources/fwcfg"
	"github.com/provision-dev/provision/sources/image"
	"github.com/provision-dev/provision/sources/nocloud"
)

func fetch(t *testing.T, path string) ([]sources.Document, error) {
	t.Helper()
	s := &image.Source{Path: path}
	if p := s.Detect(&sources.Facts{}); p != sources.Present {
		t.Fatalf("Detect(%s) = %v", path, p)
	}
	return s.Fetch(context.Background())
}

func TestCloudLocaldsImage(t *testing.T) {
	blockdevtest.NeedTools(t, "cloud-localds")
	dir := t.TempDir()
	in := blockdevtest.WriteTree(t, dir, map[string]string{"ud": "#cloud-config\n", "md": "instance-id: x\n"})
	img := filepath.Join(dir, "seed.iso")
	blockdevtest.Run(t, "cloud-localds", img, filepath.Join(in, "ud"), filepath.Join(in, "md"))
	docs, err := fetch(t, img)
	if err != nil {
		t.Fatal(err)
	}
	want := "nocloud:" + img + "|meta-data|meta-data|instance-id: x\n\n" + "nocloud:" + img + "|user-data|user-data|#cloud-config\n\n"
	if got := blockdevtest.Summary(docs); got != want {
		t.Errorf("documents:\n%s\nwant:\n%s", got, want)
	}
}

// A whole-disk image (MBR) with the stick's filesystem made in place in
// partition 2 by mkfs.vfat --offset.
func TestWholeDiskImage(t *testing.T) {
	blockdevtest.NeedTools(t, "mkfs.vfat", "mcopy")
	dir := t.TempDir()
	disk, offs := blockdevtest.Partitioned(t, filepath.Join(dir, "disk.img"), "dos", 16, []int{4, 8})
	blockdevtest.Run(t, "mkfs.vfat", "-n", "ROOT", "--offset", fmt.Sprint(offs[0]/512), disk, "4096")
	blockdevtest.Run(t, "mkfs.vfat", "-n", "combustion", "--offset", fmt.Sprint(offs[1]/512), disk, "8192")
	blockdevtest.CopyInto(t, disk, offs[1], map[string]string{"combustion/script": "#!/bin/sh\n", "combustion/f": "x"})
	docs, err := fetch(t, disk)
	if err != nil {
		t.Fatal(err)
	}
	want := "combustion:" + disk + "#p2|f|combustion|x\n" + "combustion:" + disk + "#p2|script|combustion|#!/bin/sh\n\n"
	if got := blockdevtest.Summary(docs); got != want {
		t.Errorf("documents:\n%s\nwant:\n%s", got, want)
	}
}

func TestConfigDriveImage(t *testing.T) {
	img := blockdevtest.MakeISO(t, filepath.Join(t.TempDir(), "cd.iso"), "config-2", map[string]string{
		"openstack/latest/meta_data.json": `{"uuid":"u"}`,
	}, "-J", "-r")
	docs, err := fetch(t, img)
	if err != nil || len(docs) != 1 || docs[0].Kind != sources.KindOpenStackMetaData {
		t.Errorf("%v\n%s", err, blockdevtest.Summary(docs))
	}
}

func TestUnknownAndBad(t *testing.T) {
	dir := t.TempDir()
	img := blockdevtest.MakeFAT(t, filepath.Join(dir, "data.img"), blockdevtest.FAT{Label: "DATA", Bits: 12, SizeKiB: 512, Files: map[string]string{"user-data": "x"}})
	_, err := fetch(t, img)
	if !errors.Is(err, sources.ErrNotFound) || !strings.Contains(err.Error(), `"DATA"`) {
		t.Errorf("unknown label: %v", err)
	}
	junk := filepath.Join(dir, "junk.img")
	if err := os.WriteFile(junk, []byte(strings.Repeat("junk", 50000)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := fetch(t, junk); !errors.Is(err, blockdev.ErrUnknownFilesystem) {
		t.Errorf("junk: %v", err)
	}
	if p := (&image.Source{Path: dir}).Detect(&sources.Facts{}); p != sources.Absent {
		t.Errorf("directory: %v", p)
	}
}

// On a workstation an ext4 seed image cannot be read without root, and says so.
func TestExt4ImageNeedsRoot(t *testing.T) {
	blockdevtest.NeedTools(t, "mkfs.ext4")
	dir := t.TempDir()
	src := blockdevtest.WriteTree(t, filepath.Join(dir, "src"), map[string]string{"combustion/script": "#!/bin/sh\n"})
	img := filepath.Join(dir, "ext4.img")
	blockdevtest.Run(t, "mkfs.ext4", "-q", "-L", "combustion", "-d", src, img, "4M")
	docs, err := fetch(t, img)
	if os.Geteuid() != 0 {
		if !errors.Is(err, blockdev.ErrNeedsRoot) || !strings.Contains(err.Error(), "needs root to read") {
			t.Errorf("non-root: %v", err)
		}
		return
	}
	if err != nil || blockdevtest.Summary(docs) != "combustion:"+img+"|script|combustion|#!/bin/sh\n\n" {
		t.Errorf("root: %v\n%s", err, blockdevtest.Summary(docs))
	}
}

func countSockets(tb testing.TB) int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		tb.Skip("no /proc/self/fd")
	}
	n := 0
	for _, e := range entries {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(l, "socket:") {
			n++
		}
	}
	return n
}

// Detection of every local source over 8 disks with no seed on any of them:
// the cost every boot pays when there is nothing to find.
func BenchmarkDetectLocalNoSources(b *testing.B) {
	var disks []blockdevtest.Disk
	for _, n := range []string{"vda", "vdb", "vdc", "vdd", "vde", "vdf", "vdg", "vdh"} {
		disks = append(disks, blockdevtest.Disk{Name: n, SizeBytes: 64 << 20})
	}
	prefix := blockdevtest.FakeSysfs(b, disks)
	env := blockdev.Env{Prefix: prefix}
	srcs := []sources.Source{
		&fwcfg.Source{Prefix: prefix},
		&drive.Source{Env: env},
		&nocloud.Drive{Env: env},
		&configdrive.Source{Env: env},
		&nocloud.SeedDir{Root: filepath.Join(prefix, "sysroot")},
	}
	facts := &sources.Facts{Prefix: prefix}
	before := countSockets(b)
	for b.Loop() {
		for _, s := range srcs {
			if p := s.Detect(facts); p != sources.Absent {
				b.Fatalf("%s: %v", s.Name(), p)
			}
		}
	}
	if after := countSockets(b); after != before {
		b.Fatalf("detection opened sockets: %d -> %d", before, after)
	}
}

// A filesystem carrying a seed label but none of that seed's files is an
// error naming it (a corrupt or wrongly made seed), not "nothing found".
func TestLabelledButEmpty(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		label string
		files map[string]string
		want  string
	}{
		{"cidata", map[string]string{"readme": "x"}, "neither user-data nor meta-data"},
		{"combustion", map[string]string{"script": "#!/bin/sh\n"}, "no combustion/ directory"},
		{"config-2", map[string]string{"latest/meta_data.json": "{}"}, "no openstack/"},
	} {
		img := blockdevtest.MakeFAT(t, filepath.Join(dir, tc.label+".img"), blockdevtest.FAT{Label: tc.label, Bits: 12, SizeKiB: 512, Files: tc.files})
		_, err := fetch(t, img)
		// config-2 has its own message (configdrive.ReadMedium's).
		if err == nil || (tc.label != "config-2" && !errors.Is(err, image.ErrEmptySeed)) || errors.Is(err, sources.ErrNotFound) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), img) {
			t.Errorf("%s: %v", tc.label, err)
		}
	}
}
