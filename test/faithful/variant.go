package faithful

import "fmt"

// Variant names one of the openSUSE layouts of microos-reality.md §7.1.
type Variant string

// The variants.
const (
	// A is MicroOS from 2025 on and SL/Leap Micro 6.2 with GRUB: /etc is a
	// subvolume nested in the root snapshot, bind-mounted by fstab.
	A Variant = "A"
	// B is SLE/Leap Micro 5.4-6.1: /etc is an overlay whose upper layer
	// lives in /var/lib/overlay/<N>/etc.
	B Variant = "B"
	// C is MicroOS kvm-and-xen-sdboot: nested /etc, systemd-boot entries
	// made by sdbootutil on an ESP.
	C Variant = "C"
	// D is Leap Micro 5.2/5.3: as B, with SELinux permissive.
	D Variant = "D"
	// E is the Raspberry Pi image: MBR, vfat p1 of type 0x0c, btrfs p2
	// mounted noatime,compress=lzo, no quotas, nested /etc.
	E Variant = "E"
	// F is old MicroOS: overlay /etc as B, /var a separate btrfs partition.
	F Variant = "F"
)

// Variants lists every variant, in order.
func Variants() []Variant { return []Variant{A, B, C, D, E, F} }

// traits is what a variant's layout is made of.
type traits struct {
	nestedEtc      bool     // /etc is a nested subvolume (else an overlay)
	quotas         bool     // btrfs quota enable + qgroup 1/0
	table          string   // "gpt" or "dos"
	esp            bool     // a vfat ESP as p1, mounted at /boot/efi
	sdboot         bool     // systemd-boot entries (else GRUB files)
	grubDirs       []string // the boot/grub2/<arch> subvolumes
	writable       bool     // @/boot/writable
	varFS          bool     // /var on its own btrfs partition instead of @/var
	mountOpts      string   // fstab options of the btrfs lines before subvol=
	permissiveOnly bool     // enforcing is lowered to permissive
}

var x86Grub = []string{"boot/grub2/i386-pc", "boot/grub2/x86_64-efi"}

func traitsOf(v Variant) (traits, error) {
	t := traits{quotas: true, table: "gpt", grubDirs: x86Grub, writable: true, mountOpts: "defaults"}
	switch v {
	case A:
		t.nestedEtc = true
	case B:
	case C:
		t.nestedEtc, t.esp, t.sdboot, t.grubDirs, t.writable = true, true, true, nil, false
	case D:
		t.permissiveOnly = true
	case E:
		t.nestedEtc, t.esp, t.quotas, t.table = true, true, false, "dos"
		t.grubDirs, t.mountOpts = []string{"boot/grub2/arm64-efi"}, "noatime,compress=lzo"
	case F:
		t.varFS = true
	default:
		return t, fmt.Errorf("faithful: unknown variant %q (want one of %v)", v, Variants())
	}
	return t, nil
}

// siblings are the subvolumes next to the snapshots under @ (the
// snapshot keeps an empty directory for each), in creation order.
func (t traits) siblings() []string {
	s := []string{"home", "root", "opt", "srv", "usr/local"}
	if !t.varFS {
		s = append(s, "var")
	}
	if t.writable {
		s = append(s, "boot/writable")
	}
	return append(s, t.grubDirs...)
}

// mountPoints are the directories of the snapshot that something is
// mounted on; all of them are empty in the snapshot.
func (t traits) mountPoints() []string {
	mp := append([]string{".snapshots", "boot/efi"}, t.siblings()...)
	if t.varFS {
		mp = append(mp, "var")
	}
	return mp
}
