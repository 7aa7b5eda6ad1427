package blockdev_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provision-dev/provision/sources/blockdev"
	"github.com/provision-dev/provision/sources/blockdev/blockdevtest"
)

var combustionFiles = map[string]string{
	"combustion/script":          "#!/bin/sh\n# combustion: network\necho hi\n",
	"combustion/ssh/key.pub":     "ssh-ed25519 AAAA test\n",
	"combustion/welcome":         "hello\n",
	"ignition/config.ign":        `{"ignition":{"version":"3.4.0"}}`,
	"combustion/Mixed Case.long": "long name\n",
}

// readAll walks a medium and returns every regular file's content.
func readAll(t *testing.T, m *blockdev.Medium) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := m.Walk(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		b, err := m.ReadFile(p)
		if err != nil {
			return err
		}
		got[p] = string(b)
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", m, err)
	}
	return got
}

func sameFiles(t *testing.T, got, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("file %q = %q, want %q", k, got[k], v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected file %q", k)
		}
	}
}

func openOnly(t *testing.T, path string) *blockdev.Medium {
	t.Helper()
	vols, err := blockdev.ScanImage(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(vols) != 1 {
		t.Fatalf("ScanImage found %d volumes, want 1: %+v", len(vols), vols)
	}
	m, err := blockdev.Env{}.Open(context.Background(), vols[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func TestFATImages(t *testing.T) {
	for _, tc := range []struct {
		name    string
		bits    int
		sizeKiB int64
		label   string
	}{
		{"fat12-2MiB", 12, 2048, "combustion"},
		{"fat16-32MiB", 16, 32 << 10, "COMBUSTION"},
		{"fat32-64MiB", 32, 64 << 10, "ignition"},
		{"fat12-nolabel", 12, 1440, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := blockdevtest.MakeFAT(t, filepath.Join(t.TempDir(), "fat.img"), blockdevtest.FAT{
				Label: tc.label, Bits: tc.bits, SizeKiB: tc.sizeKiB, Files: combustionFiles,
			})
			m := openOnly(t, img)
			if m.Type != blockdev.TypeVFAT || m.FATBits != tc.bits || m.Label != tc.label {
				t.Errorf("probe = %s/%d %q, want vfat/%d %q", m.Type, m.FATBits, m.Label, tc.bits, tc.label)
			}
			sameFiles(t, readAll(t, m), combustionFiles)
			if _, err := m.ReadFile("combustion/missing"); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("missing file: err = %v, want ErrNotExist", err)
			}
			if _, err := m.ReadDir("nodir"); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("missing dir: err = %v, want ErrNotExist", err)
			}
		})
	}
}

// Labels live in two places on FAT; blkid (and so /dev/disk/by-label)
// prefers the root-directory entry. Patch each one with the other tool's
// help and check we agree.
func TestFATLabelPlaces(t *testing.T) {
	blockdevtest.NeedTools(t, "mlabel")
	dir := t.TempDir()
	// mkfs writes both; mlabel -N keeps the serial; mlabel rewrites both too,
	// so patch the boot sector by hand for the "only one place" cases.
	bootOnly := blockdevtest.MakeFAT(t, filepath.Join(dir, "a.img"), blockdevtest.FAT{Label: "cidata", Bits: 12, SizeKiB: 1024})
	removeRootLabel(t, bootOnly)
	rootWins := blockdevtest.MakeFAT(t, filepath.Join(dir, "b.img"), blockdevtest.FAT{Label: "cidata", Bits: 32, SizeKiB: 40 << 10})
	patchBootLabel(t, rootWins, 71, "OTHERLABEL ")
	noName := blockdevtest.MakeFAT(t, filepath.Join(dir, "c.img"), blockdevtest.FAT{Bits: 16, SizeKiB: 16 << 10})
	for _, tc := range []struct{ img, want string }{
		{bootOnly, "cidata"},
		{rootWins, "cidata"},
		{noName, ""},
	} {
		p, err := blockdev.ProbeFile(tc.img, 0, fileSize(t, tc.img))
		if err != nil {
			t.Fatal(err)
		}
		if p.Label != tc.want {
			t.Errorf("%s: label %q, want %q", filepath.Base(tc.img), p.Label, tc.want)
		}
	}
}

func fileSize(t *testing.T, p string) int64 {
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

func patchBootLabel(t *testing.T, img string, off int64, label string) {
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte(label), off); err != nil {
		t.Fatal(err)
	}
}

// removeRootLabel marks the root directory's volume-label entry deleted
// (FAT12/16: the root directory follows the FATs).
func removeRootLabel(t *testing.T, img string) {
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	bps := int(b[11]) | int(b[12])<<8
	rsv := int(b[14]) | int(b[15])<<8
	spf := int(b[22]) | int(b[23])<<8
	root := (rsv + int(b[16])*spf) * bps
	for i := root; i < root+512; i += 32 {
		if b[i+11]&0x08 != 0 && b[i+11] != 0x0F {
			b[i] = 0xE5
			if err := os.WriteFile(img, b, 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatal("no label entry in root directory")
}

func TestISOImages(t *testing.T) {
	files := map[string]string{
		"user-data":                            "#cloud-config\nhostname: x\n",
		"meta-data":                            "instance-id: i-1\n",
		"openstack/latest/meta_data.json":      `{"uuid":"u"}`,
		"openstack/2012-08-10/user_data":       "old",
		"deep/a/b/c/d/file-with-long-name.txt": "deep",
	}
	for _, tc := range []struct {
		name, volid, label string
		flags              []string
	}{
		{"rock", "CIDATA", "CIDATA", []string{"-r"}},
		{"plain-iso9660", "CIDATA", "CIDATA", []string{"-l", "-allow-lowercase", "-allow-multidot", "-relaxed-filenames", "-iso-level", "4"}},
		{"joliet-rock", "cidata", "cidata", []string{"-J", "-r"}},
		{"rock-only", "config-2", "config-2", []string{"-R"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := blockdevtest.MakeISO(t, filepath.Join(t.TempDir(), "seed.iso"), tc.volid, files, tc.flags...)
			m := openOnly(t, img)
			if m.Type != blockdev.TypeISO9660 || m.Label != tc.label || m.ISOBlockSize != 2048 {
				t.Errorf("probe = %s %q bs=%d", m.Type, m.Label, m.ISOBlockSize)
			}
			sameFiles(t, readAll(t, m), files)
		})
	}
}

// go-diskfs cannot resolve Joliet paths two levels deep; the first level
// works (NoCloud needs no more) and deeper reads fail loudly, not as "absent".
func TestJolietOnly(t *testing.T) {
	img := blockdevtest.MakeISO(t, filepath.Join(t.TempDir(), "j.iso"), "config-2", map[string]string{
		"user-data": "u", "Mixed-Case Name.json": "m", "openstack/latest/meta_data.json": "{}",
	}, "-J")
	m := openOnly(t, img)
	if m.Label != "config-2" {
		t.Errorf("label %q", m.Label)
	}
	for name, want := range map[string]string{"user-data": "u", "Mixed-Case Name.json": "m"} {
		if b, err := m.ReadFile(name); err != nil || string(b) != want {
			t.Errorf("%s = %q, %v", name, b, err)
		}
	}
	if e, err := m.ReadDir("openstack"); err != nil || len(e) != 1 || e[0].Name() != "latest" {
		t.Errorf("openstack/ = %v, %v", e, err)
	}
	_, err := m.ReadFile("openstack/latest/meta_data.json")
	if !errors.Is(err, blockdev.ErrJolietDepth) {
		t.Errorf("deep read: %v, want ErrJolietDepth", err)
	}
}

func TestCloudLocalds(t *testing.T) {
	blockdevtest.NeedTools(t, "cloud-localds")
	dir := t.TempDir()
	ud := blockdevtest.WriteTree(t, dir, map[string]string{
		"ud":  "#cloud-config\npassword: x\n",
		"md":  "instance-id: iid-local01\nlocal-hostname: h\n",
		"net": "version: 2\nethernets: {}\n",
	})
	for _, format := range []string{"iso", "vfat"} {
		t.Run(format, func(t *testing.T) {
			img := filepath.Join(dir, "seed-"+format+".img")
			args := []string{"--network-config", filepath.Join(ud, "net")}
			if format == "vfat" {
				args = append(args, "-f", "vfat")
			}
			args = append(args, img, filepath.Join(ud, "ud"), filepath.Join(ud, "md"))
			blockdevtest.Run(t, "cloud-localds", args...)
			m := openOnly(t, img)
			if m.Label != "cidata" {
				t.Errorf("label %q", m.Label)
			}
			got := readAll(t, m)
			want := map[string]string{
				"user-data":      "#cloud-config\npassword: x\n",
				"meta-data":      "instance-id: iid-local01\nlocal-hostname: h\n",
				"network-config": "version: 2\nethernets: {}\n",
			}
			sameFiles(t, got, want)
		})
	}
}

func TestPartitionedImages(t *testing.T) {
	for _, table := range []string{"dos", "gpt"} {
		t.Run(table, func(t *testing.T) {
			dir := t.TempDir()
			disk, offs := blockdevtest.Partitioned(t, filepath.Join(dir, "disk.img"), table, 12, []int{2, 8})
			// Partition 1: an unlabelled FAT made in place with --offset.
			blockdevtest.Run(t, "mkfs.vfat", "--offset", fmt.Sprint(offs[0]/512), disk, "2048")
			// Partition 2: the seed, built apart and copied in (dd conv=notrunc).
			part := blockdevtest.MakeFAT(t, filepath.Join(dir, "p2.img"), blockdevtest.FAT{Label: "combustion", Bits: 12, SizeKiB: 8 << 10, Files: combustionFiles})
			blockdevtest.DDInto(t, part, disk, offs[1])
			vols, err := blockdev.ScanImage(disk)
			if err != nil {
				t.Fatal(err)
			}
			if len(vols) != 2 {
				t.Fatalf("got %d volumes: %+v", len(vols), vols)
			}
			v := blockdev.SelectByLabel(vols, []string{"combustion"})
			if len(v) != 1 || v[0].Name != disk+"#p2" || v[0].Offset != offs[1] {
				t.Fatalf("select: %+v", v)
			}
			m, err := blockdev.Env{}.Open(context.Background(), v[0])
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			sameFiles(t, readAll(t, m), combustionFiles)
		})
	}
}

func TestOtherFilesystemsProbe(t *testing.T) {
	for _, tc := range []struct {
		tool, typ string
		mib       int64
		args      []string
	}{
		{"mkfs.ext4", blockdev.TypeExt4, 8, []string{"-q", "-L", "combustion"}},
		{"mkfs.ext2", blockdev.TypeExt2, 8, []string{"-q", "-L", "combustion"}},
		{"mkfs.ext3", blockdev.TypeExt3, 8, []string{"-q", "-L", "combustion"}},
		{"mkfs.btrfs", blockdev.TypeBtrfs, 128, []string{"-q", "-L", "combustion"}},
		{"mkfs.xfs", blockdev.TypeXFS, 320, []string{"-q", "-L", "combustion"}},
	} {
		t.Run(tc.tool, func(t *testing.T) {
			blockdevtest.NeedTools(t, tc.tool)
			img := filepath.Join(t.TempDir(), "fs.img")
			if err := os.WriteFile(img, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(img, tc.mib<<20); err != nil {
				t.Fatal(err)
			}
			blockdevtest.Run(t, tc.tool, append(tc.args, img)...)
			p, err := blockdev.ProbeFile(img, 0, tc.mib<<20)
			if err != nil {
				t.Fatal(err)
			}
			if p.Type != tc.typ || p.Label != "combustion" {
				t.Errorf("probe = %s %q, want %s combustion", p.Type, p.Label, tc.typ)
			}
		})
	}
}

// An ext4 medium is read through a read-only kernel mount of a loop device.
func TestExt4ThroughLoopMount(t *testing.T) {
	blockdevtest.NeedTools(t, "mkfs.ext4")
	dir := t.TempDir()
	src := blockdevtest.WriteTree(t, filepath.Join(dir, "src"), combustionFiles)
	img := filepath.Join(dir, "ext4.img")
	blockdevtest.Run(t, "mkfs.ext4", "-q", "-L", "combustion", "-d", src, img, "8M")
	vols, err := blockdev.ScanImage(img)
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		_, err := blockdev.Env{}.Open(context.Background(), vols[0])
		if !errors.Is(err, blockdev.ErrNeedsRoot) {
			t.Fatalf("unprivileged open: %v, want ErrNeedsRoot", err)
		}
		t.Skip("needs root for the loop mount; checked the needs-root error instead")
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		t.Skipf("no loop devices: %v", err)
	}
	m, err := blockdev.Env{}.Open(context.Background(), vols[0])
	if err != nil {
		t.Fatal(err)
	}
	got := readAll(t, m)
	delete(got, "lost+found")
	sameFiles(t, got, combustionFiles)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestFakeSysfsEnumerateAndFind(t *testing.T) {
	dir := t.TempDir()
	seed := blockdevtest.MakeFAT(t, filepath.Join(dir, "seed.img"), blockdevtest.FAT{Label: "cidata", Bits: 12, SizeKiB: 1024, Files: map[string]string{"user-data": "u", "meta-data": "m"}})
	disk, offs := blockdevtest.Partitioned(t, filepath.Join(dir, "disk.img"), "gpt", 8, []int{1, 2})
	blockdevtest.DDInto(t, seed, disk, offs[1])
	disks := []blockdevtest.Disk{
		{Name: "vda", Image: disk, Partitions: [][2]int64{{offs[0], 1 << 20}, {offs[1], 2 << 20}}},
		{Name: "vdb"}, {Name: "vdc"}, {Name: "vdd"}, {Name: "vde"}, {Name: "vdf"}, {Name: "vdg"},
		{Name: "vdh", Image: seed},
		{Name: "loop0"},
	}
	prefix := blockdevtest.FakeSysfs(t, disks)
	// An unused loop device has size 0 in sysfs and must not be listed.
	if err := os.WriteFile(filepath.Join(prefix, "sys/devices/virtual/block/loop0/size"), []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	devs, err := blockdev.Enumerate(prefix)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range devs {
		names = append(names, d.Name)
	}
	if got, want := strings.Join(names, " "), "vda vda1 vda2 vdb vdc vdd vde vdf vdg vdh"; got != want {
		t.Errorf("order = %s, want %s", got, want)
	}
	if devs[2].Parent != "vda" || devs[2].Partition != 2 || devs[2].Start != offs[1] || devs[2].Path != "/dev/vda2" || devs[2].LogicalBlockSize != 512 {
		t.Errorf("vda2 = %+v", devs[2])
	}
	m, err := blockdev.FindByLabel(context.Background(), blockdev.Env{Prefix: prefix}, []string{"CIDATA", "cidata"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Name != "/dev/vda2" {
		t.Errorf("found %s, want the first in sysfs order, /dev/vda2", m.Name)
	}
	if b, err := m.ReadFile("user-data"); err != nil || string(b) != "u" {
		t.Errorf("user-data = %q, %v", b, err)
	}
	vols, err := blockdev.FindAllByLabel(context.Background(), blockdev.Env{Prefix: prefix}, []string{"cidata"}, 0)
	if err != nil || len(vols) != 2 || vols[1].Name != "/dev/vdh" {
		t.Errorf("FindAllByLabel = %+v, %v", vols, err)
	}
	if _, err := blockdev.FindByLabel(context.Background(), blockdev.Env{Prefix: prefix}, []string{"config-2"}, 0); !errors.Is(err, blockdev.ErrNoDevice) {
		t.Errorf("absent label: %v", err)
	}
}

// With a timeout the search rescans until the device appears.
func TestFindByLabelWaits(t *testing.T) {
	dir := t.TempDir()
	seed := blockdevtest.MakeFAT(t, filepath.Join(dir, "seed.img"), blockdevtest.FAT{Label: "combustion", Bits: 12, SizeKiB: 1024})
	prefix := blockdevtest.FakeSysfs(t, []blockdevtest.Disk{{Name: "sda"}})
	env := blockdev.Env{Prefix: prefix, PollInterval: 1}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		m, err := blockdev.FindByLabel(ctx, env, []string{"combustion"}, 1<<62)
		if err == nil {
			m.Close()
		}
		done <- err
	}()
	// Plug the stick in.
	more := blockdevtest.FakeSysfs(t, []blockdevtest.Disk{{Name: "sdb", Image: seed}})
	for _, p := range []string{"dev/sdb", "sys/devices/virtual/block/sdb"} {
		if err := os.Rename(filepath.Join(more, p), filepath.Join(prefix, p)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("../../devices/virtual/block/sdb", filepath.Join(prefix, "sys/class/block/sdb")); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// And a cancelled context ends the wait.
	ctx2, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if _, err := blockdev.FindByLabel(ctx2, env, []string{"nothing"}, 1<<62); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled wait: %v", err)
	}
}

// A shared Scan probes the devices once for every source of a detection;
// a search that finds nothing in it looks again at once, without waiting,
// and sees a device that appeared since.
func TestSharedScan(t *testing.T) {
	dir := t.TempDir()
	seed := blockdevtest.MakeFAT(t, filepath.Join(dir, "seed.img"), blockdevtest.FAT{Label: "combustion", Bits: 12, SizeKiB: 1024})
	prefix := blockdevtest.FakeSysfs(t, []blockdevtest.Disk{{Name: "sda", Image: seed}})
	env := blockdev.Env{Prefix: prefix, Scan: &blockdev.Scan{}}
	first, err := blockdev.ScanDevices(env)
	if err != nil || !blockdev.HasLabel(first, "combustion") {
		t.Fatalf("first scan = %+v, %v", first, err)
	}
	// The stick's filesystem changes its label: a new probe would see it,
	// the shared scan does not probe again.
	relabelled := blockdevtest.MakeFAT(t, filepath.Join(dir, "other.img"), blockdevtest.FAT{Label: "ignition", Bits: 12, SizeKiB: 1024})
	b, err := os.ReadFile(relabelled)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(seed, b, 0o644); err != nil {
		t.Fatal(err)
	}
	again, err := blockdev.ScanDevices(env)
	if err != nil || !blockdev.HasLabel(again, "combustion") || blockdev.HasLabel(again, "ignition") {
		t.Errorf("second scan of the shared Env = %+v, %v: want the first scan's volumes", again, err)
	}
	if fresh, err := blockdev.ScanDevices(blockdev.Env{Prefix: prefix}); err != nil || !blockdev.HasLabel(fresh, "ignition") {
		t.Errorf("an Env without a Scan = %+v, %v: want a new probe", fresh, err)
	}
	// The search for the new label: not in the shared scan, found by the
	// search's own scan, with no timeout to wait in.
	vols, err := blockdev.FindAllByLabel(context.Background(), env, []string{"ignition"}, 0)
	if err != nil || len(vols) != 1 || vols[0].Name != "/dev/sda" {
		t.Errorf("FindAllByLabel(ignition) = %+v, %v", vols, err)
	}
	if _, err := blockdev.FindAllByLabel(context.Background(), env, []string{"nothing"}, 0); !errors.Is(err, blockdev.ErrNoDevice) {
		t.Errorf("absent label: %v", err)
	}
}

// Corrupt media end in errors, never panics or hangs.
func TestCorruptImages(t *testing.T) {
	dir := t.TempDir()
	fat := blockdevtest.MakeFAT(t, filepath.Join(dir, "fat.img"), blockdevtest.FAT{Label: "combustion", Bits: 12, SizeKiB: 2048, Files: combustionFiles})
	fat32 := blockdevtest.MakeFAT(t, filepath.Join(dir, "fat32.img"), blockdevtest.FAT{Label: "combustion", Bits: 32, SizeKiB: 40 << 10, Files: combustionFiles})
	iso := blockdevtest.MakeISO(t, filepath.Join(dir, "seed.iso"), "cidata", map[string]string{"user-data": "u", "meta-data": "m", "a/b/c": "x"}, "-J", "-r")
	orig := map[string][]byte{}
	for _, p := range []string{fat, fat32, iso} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		orig[p] = b
	}
	type mutation struct {
		name    string
		img     string
		mutate  func(b []byte) []byte
		mustErr bool
	}
	rng := rand.New(rand.NewPCG(1, 2))
	noise := func(off, n int) func([]byte) []byte {
		return func(b []byte) []byte {
			for i := off; i < off+n && i < len(b); i++ {
				b[i] = byte(rng.IntN(256))
			}
			return b
		}
	}
	// FAT12 on 2 MiB: 1 reserved sector, FATs at 512, root dir after them.
	muts := []mutation{
		{"fat-truncated", fat, func(b []byte) []byte { return b[:4096] }, true},
		{"fat-boot-noise", fat, noise(11, 40), false},
		{"fat-table-noise", fat, noise(512, 3000), false},
		{"fat-rootdir-noise", fat, noise(512+2*3*512, 1024), false},
		{"fat-chain-loop", fat, func(b []byte) []byte {
			// cluster 2 -> 3 -> 2
			b[512+3], b[512+4] = 0x03, 0x20
			return b
		}, true},
		{"fat32-truncated", fat32, func(b []byte) []byte { return b[:1<<20] }, true},
		{"fat32-fat-noise", fat32, noise(32*512, 8192), false},
		{"iso-truncated", iso, func(b []byte) []byte { return b[:32768+2048*3] }, true},
		{"iso-pvd-noise", iso, noise(32768+80, 200), false},
		{"iso-dir-noise", iso, func(b []byte) []byte {
			for off := 32768 + 2048*3; off < len(b); off += 2048 {
				noise(off, 300)(b)
			}
			return b
		}, false},
	}
	for i := 0; i < 30; i++ {
		img := []string{fat, fat32, iso}[i%3]
		off := rng.IntN(min(len(orig[img]), 256<<10))
		muts = append(muts, mutation{fmt.Sprintf("random-%d", i), img, noise(off, 1+rng.IntN(4096)), false})
	}
	for _, mu := range muts {
		t.Run(mu.name, func(t *testing.T) {
			b := mu.mutate(append([]byte(nil), orig[mu.img]...))
			p := filepath.Join(t.TempDir(), "bad.img")
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			err := readEverything(p)
			if mu.mustErr && err == nil {
				t.Errorf("no error for %s", mu.name)
			}
		})
	}
}

// readEverything opens every volume in an image and reads every file.
func readEverything(path string) error {
	vols, err := blockdev.ScanImage(path)
	if err != nil {
		return err
	}
	var errs []error
	for _, v := range vols {
		m, err := blockdev.Env{MaxFileSize: 1 << 20}.Open(context.Background(), v)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, m.Walk(".", func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() {
				_, err = m.ReadFile(p)
			}
			return err
		}))
		m.Close()
	}
	return errors.Join(errs...)
}

func TestFileSizeCap(t *testing.T) {
	img := blockdevtest.MakeISO(t, filepath.Join(t.TempDir(), "big.iso"), "cidata", map[string]string{"user-data": strings.Repeat("x", 5000)}, "-r")
	vols, err := blockdev.ScanImage(img)
	if err != nil {
		t.Fatal(err)
	}
	m, err := blockdev.Env{MaxFileSize: 4096}.Open(context.Background(), vols[0])
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.ReadFile("user-data"); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("oversized read: %v", err)
	}
}

func BenchmarkScanDevices8(b *testing.B) {
	var disks []blockdevtest.Disk
	for i := range 8 {
		disks = append(disks, blockdevtest.Disk{Name: fmt.Sprintf("sd%c", 'a'+i), SizeBytes: 64 << 20})
	}
	env := blockdev.Env{Prefix: blockdevtest.FakeSysfs(b, disks)}
	for b.Loop() {
		vols, err := blockdev.ScanDevices(env)
		if err != nil || len(vols) != 0 {
			b.Fatal(vols, err)
		}
	}
}
