package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// These run without PROVISION_E2E: they check tier B's pieces that need no VM.

func TestParseJournal(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "tierb", "journal.txt"))
	if err != nil {
		t.Fatal(err)
	}
	es := ParseJournal(string(b))
	tests := []struct {
		key  string
		mono float64
	}{
		{"Mounted sysroot.mount", 9.712233},
		{"Starting provision.service", 9.801650},
		{"[ OK ] transaction: committed", 13.161211},
		{"Finished provision.service", 13.905121},
		{"Starting initrd-switch-root.service", 17.270011},
		{"E2E-BOOTED", 52.106875},
	}
	for _, tc := range tests {
		i := FirstIndex(es, tc.key)
		if i < 0 {
			t.Errorf("%q: not found", tc.key)
			continue
		}
		if es[i].Mono != tc.mono {
			t.Errorf("%q: at %f, want %f", tc.key, es[i].Mono, tc.mono)
		}
	}
	if i := FirstIndex(es, "-- Boot"); i >= 0 {
		t.Errorf("the boot separator was parsed as an entry: %q", es[i].Text)
	}
	if i := FirstIndex(es, "no such thing"); i != -1 {
		t.Errorf("FirstIndex of a missing key = %d", i)
	}
}

func FuzzParseJournal(f *testing.F) {
	f.Add("[    9.712233] tierb systemd[1]: Mounted sysroot.mount - /sysroot.\n-- Boot 1 --\n")
	f.Add("[99999999999999999999999.1] x\n[ .] y\n[1.5]\n")
	f.Fuzz(func(t *testing.T, s string) {
		for _, e := range ParseJournal(s) {
			if e.Mono < 0 || strings.Contains(e.Text, "\n") {
				t.Fatalf("bad entry %+v", e)
			}
		}
	})
}

func TestTierBArgs(t *testing.T) {
	vm := TierBVM{Kernel: "/k", Initrd: "/i", Disk: &TierBDisk{Path: "/d.img", UUID: "u-1"}, Seeds: []string{"/s.iso"}, Cmdline: []string{"x=1"}}
	args := strings.Join(vm.Args(), " ")
	for _, want := range []string{
		"-accel tcg", "-machine q35", "-cpu max", "-nodefaults", "-serial stdio", "-no-reboot",
		"root=UUID=u-1", " ro ", "modprobe.blacklist=kvm,kvm_amd,kvm_intel",
		"systemd.mask=serial-getty@ttyS0.service", "x=1",
		"file=/d.img,if=virtio,format=raw", "file=/s.iso,if=virtio,format=raw,readonly=on",
	} {
		if !strings.Contains(args, want) {
			t.Errorf("qemu args lack %q:\n%s", want, args)
		}
	}
	fstab := tierBFstab("u-1")
	for _, want := range []string{"UUID=u-1 / btrfs", "UUID=u-1 /var btrfs subvol=/@/var,", "UUID=u-1 /home btrfs subvol=/@/home "} {
		if !strings.Contains(fstab, want) {
			t.Errorf("fstab lacks %q:\n%s", want, fstab)
		}
	}
}
