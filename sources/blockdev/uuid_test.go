package blockdev

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestProbeUUID compares the probed UUID with what the real mkfs tools were
// told to write (the form fstab's UUID= uses, as blkid prints it).
func TestProbeUUID(t *testing.T) {
	for _, c := range []struct {
		tool string
		args []string
		size int64
		want string
	}{
		{"mkfs.btrfs", []string{"-q", "-U", "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"}, 128 << 20, "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"},
		{"mkfs.ext4", []string{"-q", "-F", "-U", "11111111-2222-3333-4444-555555555555"}, 16 << 20, "11111111-2222-3333-4444-555555555555"},
		{"mkfs.vfat", []string{"-F", "32", "-i", "1A2B3C4D"}, 64 << 20, "1A2B-3C4D"},
		{"mkfs.vfat", []string{"-F", "16", "-i", "00ab0c0d"}, 16 << 20, "00AB-0C0D"},
	} {
		t.Run(c.tool+c.args[1], func(t *testing.T) {
			if _, err := exec.LookPath(c.tool); err != nil {
				t.Skipf("%s not installed", c.tool)
			}
			img := filepath.Join(t.TempDir(), "img")
			if err := os.WriteFile(img, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(img, c.size); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(c.tool, append(c.args, img)...).CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", c.tool, err, out)
			}
			p, err := ProbeFile(img, 0, c.size)
			if err != nil {
				t.Fatal(err)
			}
			if p.UUID != c.want {
				t.Errorf("UUID %q, want %q", p.UUID, c.want)
			}
		})
	}
}
