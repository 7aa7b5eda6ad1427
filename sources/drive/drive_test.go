package drive_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/provision-dev/provision/sources"
	"github.com/provision-dev/provision/sources/blockdev"
	"github.com/provision-dev/provision/sources/blockdev/blockdevtest"
	"github.com/provision-dev/provision/sources/drive"
)

var stick = map[string]string{
	"combustion/script":         "#!/bin/bash\n# combustion: network\necho root:x | chpasswd\n",
	"combustion/ssh/authorized": "ssh-ed25519 AAAA a@b\n",
	"combustion/welcome":        "Welcome\n",
	"ignition/config.ign":       `{"ignition":{"version":"3.4.0"}}`,
	"README.txt":                "not config",
}

const wantStick = `combustion:/dev/sdb|script|combustion|#!/bin/bash
# combustion: network
echo root:x | chpasswd

combustion:/dev/sdb|ssh/authorized|combustion|ssh-ed25519 AAAA a@b

combustion:/dev/sdb|welcome|combustion|Welcome

ignition:/dev/sdb|ignition/config.ign|ignition|{"ignition":{"version":"3.4.0"}}
`

func TestFATSticks(t *testing.T) {
	for _, tc := range []struct {
		name    string
		bits    int
		sizeKiB int64
		label   string
	}{
		{"fat12", 12, 2048, "combustion"},
		{"fat32", 32, 64 << 10, "COMBUSTION"},
		{"ignition-label", 12, 2048, "ignition"},
		{"install-label", 16, 16 << 10, "INSTALL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := blockdevtest.MakeFAT(t, filepath.Join(t.TempDir(), "stick.img"), blockdevtest.FAT{Label: tc.label, Bits: tc.bits, SizeKiB: tc.sizeKiB, Files: stick})
			prefix := blockdevtest.FakeSysfs(t, []blockdevtest.Disk{{Name: "sda"}, {Name: "sdb", Image: img}})
			s := &drive.Source{Env: blockdev.Env{Prefix: prefix}}
			if p := s.Detect(&sources.Facts{}); p != sources.Present {
				t.Fatalf("Detect = %v", p)
			}
			docs, err := s.Fetch(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if got := blockdevtest.Summary(docs); got != wantStick {
				t.Errorf("documents:\n%s\nwant:\n%s", got, wantStick)
			}
		})
	}
}

// Like combustion: labels are tried in order and the first filesystem that
// HAS a combustion/ directory wins; a combustion-labelled stick without one
// is passed over.
func TestLabelOrderAndFallbacks(t *testing.T) {
	dir := t.TempDir()
	empty := blockdevtest.MakeFAT(t, filepath.Join(dir, "empty.img"), blockdevtest.FAT{Label: "combustion", Bits: 12, SizeKiB: 1024, Files: map[string]string{"other/x": "x"}})
	ign := blockdevtest.MakeFAT(t, filepath.Join(dir, "ign.img"), blockdevtest.FAT{Label: "IGNITION", Bits: 12, SizeKiB: 1024, Files: map[string]string{"ignition/config.ign": "{}"}})
	install := blockdevtest.MakeISO(t, filepath.Join(dir, "install.iso"), "INSTALL", map[string]string{"combustion/script": "from install"}, "-J", "-r")
	lower := blockdevtest.MakeFAT(t, filepath.Join(dir, "lower.img"), blockdevtest.FAT{Label: "ignition", Bits: 12, SizeKiB: 1024, Files: map[string]string{"combustion/script": "from ignition"}})

	run := func(disks ...blockdevtest.Disk) ([]sources.Document, error) {
		prefix := blockdevtest.FakeSysfs(t, disks)
		return (&drive.Source{Env: blockdev.Env{Prefix: prefix}}).Fetch(context.Background())
	}
	// "install" comes before nothing; "ignition" (with combustion/) beats it
	// even though sr0 sorts first.
	docs, err := run(blockdevtest.Disk{Name: "sda", Image: empty}, blockdevtest.Disk{Name: "sdb", Image: install}, blockdevtest.Disk{Name: "sdc", Image: lower})
	if err != nil {
		t.Fatal(err)
	}
	if got := blockdevtest.Summary(docs); got != "combustion:/dev/sdc|script|combustion|from ignition\n" {
		t.Errorf("got %s", got)
	}
	docs, err = run(blockdevtest.Disk{Name: "sda", Image: empty}, blockdevtest.Disk{Name: "sdb", Image: install})
	if err != nil || blockdevtest.Summary(docs) != "combustion:/dev/sdb|script|combustion|from install\n" {
		t.Errorf("install fallback: %v\n%s", err, blockdevtest.Summary(docs))
	}
	// No combustion/ anywhere: an Ignition disk still gives its config.
	docs, err = run(blockdevtest.Disk{Name: "sda", Image: empty}, blockdevtest.Disk{Name: "sdb", Image: ign})
	if err != nil || blockdevtest.Summary(docs) != "ignition:/dev/sdb|ignition/config.ign|ignition|{}\n" {
		t.Errorf("ignition only: %v\n%s", err, blockdevtest.Summary(docs))
	}
	_, err = run(blockdevtest.Disk{Name: "sda", Image: empty})
	if !errors.Is(err, sources.ErrNotFound) {
		t.Errorf("no combustion dir: %v", err)
	}
}

// An ext4 stick (combustion's README makes one with mkfs.ext4 + e2label) is
// mounted read-only by the kernel; as non-root that is a clear error.
func TestExt4Stick(t *testing.T) {
	blockdevtest.NeedTools(t, "mkfs.ext4")
	dir := t.TempDir()
	src := blockdevtest.WriteTree(t, filepath.Join(dir, "src"), stick)
	img := filepath.Join(dir, "ext4.img")
	blockdevtest.Run(t, "mkfs.ext4", "-q", "-L", "ignition", "-d", src, img, "8M")
	prefix := blockdevtest.FakeSysfs(t, []blockdevtest.Disk{{Name: "sdb", Image: img}})
	s := &drive.Source{Env: blockdev.Env{Prefix: prefix}}
	docs, err := s.Fetch(context.Background())
	if os.Geteuid() != 0 {
		if !errors.Is(err, blockdev.ErrNeedsRoot) {
			t.Fatalf("non-root: %v, want ErrNeedsRoot", err)
		}
		t.Skip("needs root for the loop mount; checked the needs-root error instead")
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		t.Skipf("no loop devices: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if got := blockdevtest.Summary(docs); got != wantStick {
		t.Errorf("documents:\n%s\nwant:\n%s", got, wantStick)
	}
}

func TestDetectWithoutDrive(t *testing.T) {
	prefix := blockdevtest.FakeSysfs(t, []blockdevtest.Disk{{Name: "sda"}})
	s := &drive.Source{Env: blockdev.Env{Prefix: prefix}}
	if p := s.Detect(&sources.Facts{}); p != sources.Absent {
		t.Errorf("Detect = %v", p)
	}
	if p := s.Detect(&sources.Facts{Cmdline: []string{"provision.device_timeout=5"}}); p != sources.Maybe {
		t.Errorf("with device timeout: %v", p)
	}
}
