package initrd

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf16"
)

// mkfs makes a filesystem image with the real tool, unprivileged.
func mkfs(t *testing.T, tool string, size int64, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		t.Skipf("%s not installed: cannot make a %s image to probe", tool, tool)
	}
	img := filepath.Join(t.TempDir(), "fs.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, size); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(tool, append(args, img)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", tool, err, out)
	}
	return img
}

func TestProbeSuperblockRealImages(t *testing.T) {
	const uuid = "0b3a7f1e-1111-4222-8333-444455556666"
	tests := []struct {
		tool, typ, label string
		size             int64
		args             []string
	}{
		{"mkfs.btrfs", "btrfs", "root fs", 128 << 20, []string{"-q", "-L", "root fs", "-U", uuid}},
		{"mkfs.ext4", "ext4", "rootfs", 16 << 20, []string{"-q", "-F", "-L", "rootfs", "-U", uuid}},
		{"mkfs.xfs", "xfs", "xroot", 300 << 20, []string{"-q", "-f", "-L", "xroot", "-m", "uuid=" + uuid}},
	}
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			img := mkfs(t, tt.tool, tt.size, tt.args...)
			f, err := os.Open(img)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			sb, ok, err := ProbeSuperblock(f)
			if err != nil || !ok {
				t.Fatalf("ProbeSuperblock = %v, %v", ok, err)
			}
			if sb.Type != tt.typ || sb.UUID != uuid || sb.Label != tt.label {
				t.Errorf("got %+v, want {%s %s %s}", sb, tt.typ, uuid, tt.label)
			}
		})
	}
}

func TestProbeSuperblockNothing(t *testing.T) {
	for _, b := range [][]byte{nil, make([]byte, 100), make([]byte, 1<<17)} {
		sb, ok, err := ProbeSuperblock(bytes.NewReader(b))
		if ok || err != nil {
			t.Errorf("len %d: got %+v, %v, %v", len(b), sb, ok, err)
		}
	}
}

// guidBytes encodes a GUID string the GPT way (first three fields little-endian).
func guidBytes(t *testing.T, s string) []byte {
	t.Helper()
	h := strings.ReplaceAll(s, "-", "")
	var raw [16]byte
	for i := range raw {
		var v byte
		for _, c := range h[2*i : 2*i+2] {
			v <<= 4
			switch {
			case c >= '0' && c <= '9':
				v |= byte(c - '0')
			default:
				v |= byte(c-'a') + 10
			}
		}
		raw[i] = v
	}
	out := make([]byte, 16)
	binary.LittleEndian.PutUint32(out[0:], binary.BigEndian.Uint32(raw[0:]))
	binary.LittleEndian.PutUint16(out[4:], binary.BigEndian.Uint16(raw[4:]))
	binary.LittleEndian.PutUint16(out[6:], binary.BigEndian.Uint16(raw[6:]))
	copy(out[8:], raw[8:])
	return out
}

// gptDisk builds a 64 KiB disk with a GPT whose entry 1 is empty and
// entries 2 and 3 hold the given partitions.
func gptDisk(t *testing.T, parts map[int][2]string) []byte {
	disk := make([]byte, 64<<10)
	hdr := disk[512:]
	copy(hdr, "EFI PART")
	binary.LittleEndian.PutUint64(hdr[72:], 2)
	binary.LittleEndian.PutUint32(hdr[80:], 128)
	binary.LittleEndian.PutUint32(hdr[84:], 128)
	for n, p := range parts {
		e := disk[1024+(n-1)*128:]
		copy(e[0:], guidBytes(t, "0fc63daf-8483-4772-8e79-3d69d8477de4"))
		copy(e[16:], guidBytes(t, p[0]))
		for i, c := range utf16.Encode([]rune(p[1])) {
			binary.LittleEndian.PutUint16(e[56+2*i:], c)
		}
	}
	return disk
}

func TestReadPartitionsGPT(t *testing.T) {
	disk := gptDisk(t, map[int][2]string{
		2: {"6a3f0c5e-9d1b-4b8e-a1f2-0123456789ab", "p.lxroot"},
		3: {"11111111-2222-3333-4444-555555555555", ""},
	})
	parts, err := ReadPartitions(bytes.NewReader(disk))
	if err != nil {
		t.Fatal(err)
	}
	want := []Partition{
		{2, "6a3f0c5e-9d1b-4b8e-a1f2-0123456789ab", "p.lxroot"},
		{3, "11111111-2222-3333-4444-555555555555", ""},
	}
	if len(parts) != len(want) || parts[0] != want[0] || parts[1] != want[1] {
		t.Errorf("got %+v, want %+v", parts, want)
	}
}

func TestReadPartitionsMBR(t *testing.T) {
	disk := make([]byte, 4096)
	binary.LittleEndian.PutUint32(disk[440:], 0xdeadbeef)
	disk[446+4] = 0x83      // slot 1: Linux
	disk[446+16*2+4] = 0x83 // slot 3
	disk[510], disk[511] = 0x55, 0xaa
	parts, err := ReadPartitions(bytes.NewReader(disk))
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 2 || parts[0].UUID != "deadbeef-01" || parts[1].UUID != "deadbeef-03" || parts[1].Number != 3 {
		t.Errorf("got %+v", parts)
	}
}

func TestReadPartitionsHostileHeader(t *testing.T) {
	disk := make([]byte, 4096)
	copy(disk[512:], "EFI PART")
	binary.LittleEndian.PutUint64(disk[512+72:], 2)
	binary.LittleEndian.PutUint32(disk[512+80:], 1<<30)
	binary.LittleEndian.PutUint32(disk[512+84:], 128)
	if _, err := ReadPartitions(bytes.NewReader(disk)); err == nil {
		t.Error("a header claiming 2^30 entries was accepted")
	}
}

// fakeMachine lays out /sys/class/block and /dev the way the kernel does,
// with image files as devices.
func fakeMachine(t *testing.T, disk []byte, parts map[string][]byte) *Resolver {
	t.Helper()
	base := t.TempDir()
	sys := filepath.Join(base, "sys")
	dev := filepath.Join(base, "dev")
	block := filepath.Join(sys, "class", "block")
	for _, d := range []string{block, dev, filepath.Join(sys, "devices", "vda")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink("../../devices/vda", filepath.Join(block, "vda")))
	must(os.WriteFile(filepath.Join(dev, "vda"), disk, 0o644))
	for name, data := range parts {
		d := filepath.Join(sys, "devices", "vda", name)
		must(os.MkdirAll(d, 0o755))
		must(os.WriteFile(filepath.Join(d, "partition"), []byte(strings.TrimPrefix(name, "vda")+"\n"), 0o644))
		must(os.Symlink("../../devices/vda/"+name, filepath.Join(block, name)))
		must(os.WriteFile(filepath.Join(dev, name), data, 0o644))
	}
	// Devices the resolver must skip without opening.
	must(os.MkdirAll(filepath.Join(block, "ram0"), 0o755))
	return &Resolver{SysBlock: block, Dev: dev}
}

func TestResolverFind(t *testing.T) {
	img := mkfs(t, "mkfs.btrfs", 128<<20, "-q", "-L", "root", "-U", "0b3a7f1e-1111-4222-8333-444455556666")
	fs, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	disk := gptDisk(t, map[int][2]string{2: {"6a3f0c5e-9d1b-4b8e-a1f2-0123456789ab", "p.lxroot"}})
	r := fakeMachine(t, disk, map[string][]byte{"vda2": fs})
	vda2 := filepath.Join(r.Dev, "vda2")
	tests := []struct {
		spec RootSpec
		path string
	}{
		{RootSpec{RootLabel, "root"}, vda2},
		{RootSpec{RootUUID, "0b3a7f1e-1111-4222-8333-444455556666"}, vda2},
		{RootSpec{RootPartUUID, "6a3f0c5e-9d1b-4b8e-a1f2-0123456789ab"}, vda2},
		{RootSpec{RootPartLabel, "p.lxroot"}, vda2},
		{RootSpec{RootPath, "/dev/vda2"}, vda2},
	}
	for _, tt := range tests {
		f, err := r.Find(tt.spec)
		if err != nil || f.Path != tt.path || f.Superblock.Type != "btrfs" {
			t.Errorf("Find(%s) = %+v, %v; want %s (btrfs)", tt.spec, f, err, tt.path)
		}
	}
	for _, spec := range []RootSpec{{RootLabel, "ROOT"}, {RootUUID, "0b3a7f1e-0000-4222-8333-444455556666"}, {RootPartUUID, "deadbeef-02"}, {RootPath, "/dev/vdz"}} {
		if f, err := r.Find(spec); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Find(%s) = %+v, %v; want not found", spec, f, err)
		}
	}
}

func TestResolverWaitTimesOut(t *testing.T) {
	r := fakeMachine(t, make([]byte, 4096), nil)
	_, err := r.Wait(context.Background(), RootSpec{RootLabel, "nowhere"}, 250*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "did not appear") || !strings.Contains(err.Error(), "vda") {
		t.Errorf("Wait error = %v; want a timeout naming the devices seen", err)
	}
}

func FuzzProbeSuperblock(f *testing.F) {
	f.Add(make([]byte, 2048))
	sb := make([]byte, 0x10000+4096)
	copy(sb[0x10040:], "_BHRfS_M")
	f.Add(sb)
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _, _ = ProbeSuperblock(bytes.NewReader(b))
	})
}

func FuzzReadPartitions(f *testing.F) {
	f.Add(make([]byte, 512))
	hdr := make([]byte, 2048)
	copy(hdr[512:], "EFI PART")
	binary.LittleEndian.PutUint64(hdr[512+72:], 2)
	binary.LittleEndian.PutUint32(hdr[512+80:], 4)
	binary.LittleEndian.PutUint32(hdr[512+84:], 128)
	f.Add(hdr)
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ReadPartitions(bytes.NewReader(b))
	})
}
