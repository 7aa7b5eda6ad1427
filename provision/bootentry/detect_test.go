package bootentry

import (
	"errors"
	"github.com/provision-dev/provision/modules/fstab"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/provision-dev/provision/modules/rootfs"
)

func TestDetectSystemdBoot(t *testing.T) {
	root := copyTree(t, "target-sdboot")
	l, err := Detect(root)
	if err != nil {
		t.Fatal(err)
	}
	want := Loader{
		Type:       SystemdBoot,
		EntryToken: "opensuse-microos",
		Tries:      "3",
		ESPMount:   "/boot/efi",
		ESPSpec:    "UUID=1A2B-3C4D",
		RootSpec:   "UUID=5d1f3b0c-8a8e-4b0e-9d43-1c2f3e4a5b6c",
		OSName:     "opensuse",
	}
	if l == nil || *l != want {
		t.Fatalf("Detect = %+v\nwant %+v", l, want)
	}
	if got, w := Describe(l), "systemd-boot: entries on /boot/efi (UUID=1A2B-3C4D), token opensuse-microos, boot counting +3, default in /boot/efi/loader/loader.conf"; got != w {
		t.Errorf("Describe = %q\nwant %q", got, w)
	}
	l.EFIVars = "/sys/firmware/efi/efivars"
	if got := Describe(l); !strings.HasSuffix(got, " and LoaderEntryDefault if set") {
		t.Errorf("Describe = %q", got)
	}
	if got := Describe(nil); !strings.Contains(got, "btrfs default subvolume") {
		t.Errorf("Describe(nil) = %q", got)
	}
}

func TestDetectVariants(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  map[string]string // files to (over)write
		rm    []string
		check func(t *testing.T, l *Loader, err error)
	}{
		{name: "grub2 is not BLS", edit: map[string]string{"etc/sysconfig/bootloader": "LOADER_TYPE=grub2-efi\n"},
			check: wantNil},
		{name: "no sysconfig, no sdbootutil", rm: []string{"etc/sysconfig/bootloader"}, check: wantNil},
		{name: "no sysconfig, sdbootutil and systemd-boot installed", rm: []string{"etc/sysconfig/bootloader"},
			edit: map[string]string{
				"usr/bin/sdbootutil":                           "#!/bin/sh\n",
				"usr/lib/systemd/boot/efi/systemd-bootx64.efi": "MZ",
			},
			check: wantType(SystemdBoot)},
		{name: "no sysconfig, sdbootutil and grub BLS installed", rm: []string{"etc/sysconfig/bootloader"},
			edit: map[string]string{
				"usr/bin/sdbootutil":                           "#!/bin/sh\n",
				"usr/lib/systemd/boot/efi/systemd-bootx64.efi": "MZ",
				"usr/share/grub2/x86_64-efi/grubbls.efi":       "MZ",
			},
			check: wantType(Grub2BLS)},
		{name: "grub2-bls with single quotes", edit: map[string]string{"etc/sysconfig/bootloader": "LOADER_TYPE='grub2-bls' # set by the installer\n"},
			check: wantType(Grub2BLS)},
		{name: "token from os-release ID", rm: []string{"etc/kernel/entry-token"},
			check: func(t *testing.T, l *Loader, err error) {
				if err != nil || l.EntryToken != "opensuse-microos" {
					t.Errorf("l=%+v err=%v", l, err)
				}
			}},
		{name: "token from IMAGE_ID before ID", rm: []string{"etc/kernel/entry-token"},
			edit: map[string]string{"usr/lib/os-release": "NAME=openSUSE\nID=opensuse\nIMAGE_ID=\"microos-sdboot\"\n"},
			check: func(t *testing.T, l *Loader, err error) {
				if err != nil || l.EntryToken != "microos-sdboot" {
					t.Errorf("l=%+v err=%v", l, err)
				}
			}},
		{name: "token from machine-id first", rm: []string{"etc/kernel/entry-token"},
			edit: map[string]string{"etc/machine-id": "0123456789abcdef0123456789abcdef\n"},
			check: func(t *testing.T, l *Loader, err error) {
				if err != nil || l.EntryToken != "0123456789abcdef0123456789abcdef" {
					t.Errorf("l=%+v err=%v", l, err)
				}
			}},
		{name: "tries not a number is ignored", edit: map[string]string{"etc/kernel/tries": "three\n"},
			check: func(t *testing.T, l *Loader, err error) {
				if err != nil || l.Tries != "" {
					t.Errorf("l=%+v err=%v", l, err)
				}
			}},
		{name: "no tries", rm: []string{"etc/kernel/tries"},
			check: func(t *testing.T, l *Loader, err error) {
				if err != nil || l.Tries != "" {
					t.Errorf("l=%+v err=%v", l, err)
				}
			}},
		{name: "ESP at /efi, /boot/efi not vfat", edit: map[string]string{"etc/fstab": "UUID=R / btrfs ro 0 0\nUUID=X /boot/efi ext4 defaults 0 0\nUUID=E\t/efi/ vfat umask=0077 0 2\n"},
			check: func(t *testing.T, l *Loader, err error) {
				if err != nil || l.ESPMount != "/efi" || l.ESPSpec != "UUID=E" || l.RootSpec != "UUID=R" {
					t.Errorf("l=%+v err=%v", l, err)
				}
			}},
		{name: "XBOOTLDR /boot wins over /efi", edit: map[string]string{"etc/fstab": "UUID=E /efi vfat defaults 0 0\nPARTLABEL=xbootldr /boot vfat defaults 0 0\n"},
			check: func(t *testing.T, l *Loader, err error) {
				if err != nil || l.ESPMount != "/boot" || l.ESPSpec != "PARTLABEL=xbootldr" {
					t.Errorf("l=%+v err=%v", l, err)
				}
			}},
		{name: "no ESP", edit: map[string]string{"etc/fstab": "UUID=R / btrfs ro 0 0\n"},
			check: func(t *testing.T, l *Loader, err error) {
				if !errors.Is(err, ErrNoESP) || !strings.Contains(err.Error(), "etc/fstab") {
					t.Errorf("l=%+v err=%v", l, err)
				}
			}},
		{name: "token with path traversal", edit: map[string]string{"etc/kernel/entry-token": "../../../etc/passwd\n"},
			check: func(t *testing.T, l *Loader, err error) {
				if err == nil || !strings.Contains(err.Error(), "etc/kernel/entry-token:1: entry token") {
					t.Errorf("l=%+v err=%v", l, err)
				}
			}},
		{name: "broken fstab line", edit: map[string]string{"etc/fstab": "UUID=R / btrfs ro 0 0\nlonely\n"},
			check: func(t *testing.T, l *Loader, err error) {
				if err == nil || !strings.Contains(err.Error(), "etc/fstab:2:") {
					t.Errorf("l=%+v err=%v", l, err)
				}
			}},
		{name: "huge sysconfig", edit: map[string]string{"etc/sysconfig/bootloader": strings.Repeat("#", maxTargetFile+1)},
			check: func(t *testing.T, l *Loader, err error) {
				if err == nil || !strings.Contains(err.Error(), "bootloader: larger than") {
					t.Errorf("l=%+v err=%v", l, err)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := copyTree(t, "target-sdboot")
			for _, p := range tc.rm {
				if err := os.Remove(filepath.Join(root, p)); err != nil {
					t.Fatal(err)
				}
			}
			writeFiles(t, root, tc.edit)
			l, err := Detect(root)
			tc.check(t, l, err)
		})
	}
}

func wantNil(t *testing.T, l *Loader, err error) {
	if l != nil || err != nil {
		t.Errorf("Detect = %+v, %v; want nil, nil", l, err)
	}
}

func wantType(typ string) func(*testing.T, *Loader, error) {
	return func(t *testing.T, l *Loader, err error) {
		if err != nil || l == nil || l.Type != typ {
			t.Errorf("Detect = %+v, %v; want type %s", l, err, typ)
		}
	}
}

// Absolute symlinks in the target are resolved inside the target, never on
// the host; relative ones that climb out are refused.
func TestDetectSymlinksStayInRoot(t *testing.T) {
	root := copyTree(t, "target-sdboot")
	tok := filepath.Join(root, "etc/kernel/entry-token")
	os.Remove(tok)
	writeFiles(t, root, map[string]string{"usr/share/token": "from-inside\n"})
	if err := os.Symlink("/usr/share/token", tok); err != nil {
		t.Fatal(err)
	}
	l, err := Detect(root)
	if err != nil || l.EntryToken != "from-inside" {
		t.Fatalf("l=%+v err=%v", l, err)
	}

	os.Remove(tok)
	outside := filepath.Join(filepath.Dir(root), "outside-token")
	writeFiles(t, filepath.Dir(root), map[string]string{"outside-token": "from-outside\n"})
	if err := os.Symlink("../../../outside-token", tok); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tok); err != nil {
		t.Fatalf("test setup: %s does not reach %s: %v", tok, outside, err)
	}
	l, err = Detect(root)
	if !errors.Is(err, rootfs.ErrEscape) {
		t.Fatalf("escaping symlink: l=%+v err=%v, want ErrEscape", l, err)
	}
}

// A FIFO planted where a file is expected must not hang Detect.
func TestDetectFIFO(t *testing.T) {
	root := copyTree(t, "target-sdboot")
	p := filepath.Join(root, "etc/kernel/tries")
	os.Remove(p)
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	if _, err := Detect(root); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("err = %v", err)
	}
}

func TestParseShellVars(t *testing.T) {
	vars, err := parseShellVars("f", []byte("A=1\nexport B=\"two words\"\nC='x y'\nD=\"esc \\\" \\$x\"\nE=plain # comment\n# F=no\nnot an assignment\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"A": "1", "B": "two words", "C": "x y", "D": `esc " $x`, "E": "plain"}
	for k, v := range want {
		if vars[k] != v {
			t.Errorf("%s = %q, want %q", k, vars[k], v)
		}
	}
	if _, ok := vars["F"]; ok {
		t.Error("commented assignment read")
	}
	if _, err := parseShellVars("f", []byte("OK=1\nA=\"open\n")); err == nil || !strings.HasPrefix(err.Error(), "f:2:") {
		t.Errorf("err = %v", err)
	}
}

func TestUnescapeOctal(t *testing.T) {
	tab, err := fstab.Parse("fstab", []byte("LABEL=EFI\\040SYSTEM /boot/efi vfat defaults 0 0\n"))
	if err != nil || tab[0].Spec != "LABEL=EFI SYSTEM" {
		t.Errorf("%+v %v", tab, err)
	}
}
