// Package blockdevtest builds seed media with the real tools (mkfs.vfat,
// mcopy, genisoimage, cloud-localds, sfdisk) and fake sysfs trees, for the
// tests of the local sources. Tests skip with the reason when a tool is
// missing.
package blockdevtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// NeedTools skips the test unless every named program is on PATH.
func NeedTools(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (apt-get install dosfstools mtools genisoimage cloud-image-utils fdisk e2fsprogs)", tool)
		}
	}
}

// NeedRoot skips the test unless it runs as root.
func NeedRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("needs root: %s", why)
	}
}

// Run runs a command and fails the test with its output when it fails.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// WriteTree writes files (slash paths relative to dir) and returns dir.
func WriteTree(t testing.TB, dir string, files map[string]string) string {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// FAT describes a FAT image to build with mkfs.vfat and mcopy.
type FAT struct {
	Label   string
	Bits    int   // 12, 16, 32 or 0 to let mkfs.vfat choose
	SizeKiB int64 // image size
	Files   map[string]string
}

// MakeFAT builds the image at path (created) and returns path.
func MakeFAT(t testing.TB, path string, spec FAT) string {
	t.Helper()
	NeedTools(t, "mkfs.vfat", "mcopy")
	args := []string{"-C"}
	if spec.Label != "" {
		args = append(args, "-n", spec.Label)
	}
	if spec.Bits != 0 {
		args = append(args, "-F", fmt.Sprint(spec.Bits))
	}
	args = append(args, path, fmt.Sprint(spec.SizeKiB))
	Run(t, "mkfs.vfat", args...)
	CopyInto(t, path, 0, spec.Files)
	return path
}

// CopyInto puts files into the FAT filesystem at byte offset off of image
// with mcopy -s (directories created as needed).
func CopyInto(t testing.TB, image string, off int64, files map[string]string) {
	t.Helper()
	if len(files) == 0 {
		return
	}
	src := WriteTree(t, t.TempDir(), files)
	img := image
	if off != 0 {
		img = fmt.Sprintf("%s@@%d", image, off)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		Run(t, "mcopy", "-s", "-i", img, filepath.Join(src, e.Name()), "::/")
	}
}

// MakeISO runs genisoimage over files with the given volume id and extra
// flags (e.g. "-J", "-r") and returns the image path.
func MakeISO(t testing.TB, path, volid string, files map[string]string, flags ...string) string {
	t.Helper()
	NeedTools(t, "genisoimage")
	src := WriteTree(t, t.TempDir(), files)
	args := append([]string{"-quiet", "-o", path, "-V", volid}, flags...)
	args = append(args, src)
	Run(t, "genisoimage", args...)
	return path
}

// Partitioned builds a whole-disk image of sizeMiB with an MBR ("dos") or
// GPT table holding parts (sizes in MiB, starting at 1 MiB, back to back)
// and returns the image path and each partition's byte offset.
func Partitioned(t testing.TB, path, label string, sizeMiB int, partsMiB []int) (string, []int64) {
	t.Helper()
	NeedTools(t, "sfdisk")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(int64(sizeMiB) << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var script strings.Builder
	fmt.Fprintf(&script, "label: %s\n", label)
	var offs []int64
	start := int64(2048)
	for _, mib := range partsMiB {
		fmt.Fprintf(&script, "start=%d, size=%d, type=%s\n", start, mib*2048, map[string]string{"dos": "c", "gpt": "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"}[label])
		offs = append(offs, start*512)
		start += int64(mib) * 2048
	}
	cmd := exec.Command("sfdisk", "--no-reread", "--no-tell-kernel", "-q", path)
	cmd.Stdin = strings.NewReader(script.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	return path, offs
}

// DDInto copies the whole of src into dst at byte offset off without
// truncating dst (dd conv=notrunc).
func DDInto(t testing.TB, src, dst string, off int64) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(dst, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// Disk is one fake block device: its kernel name, the image whose bytes
// stand in for the device node, and optional partitions (start and size in
// bytes) listed in sysfs as <name><n>.
type Disk struct {
	Name       string
	Image      string // hard-linked (or copied) to <prefix>/dev/<name>; "" gives a zero-filled device
	SizeBytes  int64  // used when Image is ""
	Partitions [][2]int64
}

// FakeSysfs builds <prefix>/sys/class/block and <prefix>/dev the way the
// kernel lays them out (class entries are symlinks into /sys/devices, a
// partition's directory sits inside its disk's) and returns the prefix.
// Partition device nodes are files holding a copy of the partition's bytes.
func FakeSysfs(t testing.TB, disks []Disk) string {
	t.Helper()
	prefix := t.TempDir()
	class := filepath.Join(prefix, "sys/class/block")
	devices := filepath.Join(prefix, "sys/devices/virtual/block")
	devDir := filepath.Join(prefix, "dev")
	for _, d := range []string{class, devices, devDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range disks {
		node := filepath.Join(devDir, d.Name)
		var size int64
		if d.Image != "" {
			if err := os.Link(d.Image, node); err != nil {
				b, err := os.ReadFile(d.Image)
				if err != nil {
					t.Fatal(err)
				}
				write(node, string(b))
			}
			st, err := os.Stat(node)
			if err != nil {
				t.Fatal(err)
			}
			size = st.Size()
		} else {
			size = d.SizeBytes
			if size == 0 {
				size = 1 << 20
			}
			f, err := os.Create(node)
			if err != nil {
				t.Fatal(err)
			}
			_ = f.Truncate(size)
			f.Close()
		}
		dd := filepath.Join(devices, d.Name)
		if err := os.MkdirAll(filepath.Join(dd, "queue"), 0o755); err != nil {
			t.Fatal(err)
		}
		write(filepath.Join(dd, "size"), fmt.Sprintf("%d\n", size/512))
		write(filepath.Join(dd, "queue/logical_block_size"), "512\n")
		write(filepath.Join(dd, "uevent"), fmt.Sprintf("MAJOR=254\nMINOR=0\nDEVNAME=%s\nDEVTYPE=disk\n", d.Name))
		if err := os.Symlink("../../devices/virtual/block/"+d.Name, filepath.Join(class, d.Name)); err != nil {
			t.Fatal(err)
		}
		for i, p := range d.Partitions {
			pn := fmt.Sprintf("%s%d", d.Name, i+1)
			if last := d.Name[len(d.Name)-1]; last >= '0' && last <= '9' {
				pn = fmt.Sprintf("%sp%d", d.Name, i+1)
			}
			pd := filepath.Join(dd, pn)
			if err := os.MkdirAll(pd, 0o755); err != nil {
				t.Fatal(err)
			}
			write(filepath.Join(pd, "size"), fmt.Sprintf("%d\n", p[1]/512))
			write(filepath.Join(pd, "start"), fmt.Sprintf("%d\n", p[0]/512))
			write(filepath.Join(pd, "partition"), fmt.Sprintf("%d\n", i+1))
			write(filepath.Join(pd, "uevent"), fmt.Sprintf("DEVNAME=%s\nDEVTYPE=partition\n", pn))
			if err := os.Symlink("../../devices/virtual/block/"+d.Name+"/"+pn, filepath.Join(class, pn)); err != nil {
				t.Fatal(err)
			}
			src, err := os.Open(node)
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, p[1])
			_, _ = src.ReadAt(buf, p[0])
			src.Close()
			write(filepath.Join(devDir, pn), string(buf))
		}
	}
	return prefix
}
