package faithful

import (
	"fmt"
	"sort"
	"strings"
)

// EtcBindLine is the /etc line of the nested-subvolume variants (A, C, E).
const EtcBindLine = "/etc /etc none bind,x-initrd.mount 0 0"

// EtcOverlayLine is the /etc line of the overlay variants (B, D, F) as the
// image build writes it for snapshot 1.
const EtcOverlayLine = "overlay /etc overlay defaults,lowerdir=/sysroot/etc,upperdir=/sysroot/var/lib/overlay/1/etc," +
	"workdir=/sysroot/var/lib/overlay/work-etc,x-systemd.requires-mounts-for=/var," +
	"x-systemd.requires-mounts-for=/sysroot/var,x-initrd.mount 0 0"

// fstabText is snapshot 1's /etc/fstab (microos-reality.md §1.2): the root
// line, then every other mount sorted by path depth and then by name, then
// the /etc line.
func fstabText(t traits, d *Disk) string {
	type entry struct{ src, mp, typ, opts string }
	var es []entry
	vol := func(mp, subvol string) {
		opts := t.mountOpts + ",subvol=" + subvol
		if mp == "/var" || mp == "/root" {
			opts += ",x-initrd.mount"
		}
		es = append(es, entry{"UUID=" + d.UUID, mp, "btrfs", opts})
	}
	vol("/.snapshots", "@/.snapshots")
	for _, s := range t.siblings() {
		vol("/"+s, "@/"+s)
	}
	if t.varFS {
		es = append(es, entry{"UUID=" + d.VarUUID, "/var", "btrfs", "defaults,x-initrd.mount"})
	}
	if t.esp {
		es = append(es, entry{"UUID=" + d.ESPUUID, "/boot/efi", "vfat", "defaults"})
	}
	sort.SliceStable(es, func(i, j int) bool {
		di, dj := strings.Count(es[i].mp, "/"), strings.Count(es[j].mp, "/")
		if di != dj {
			return di < dj
		}
		return es[i].mp < es[j].mp
	})
	rootOpts := "ro"
	if t.mountOpts != "defaults" {
		rootOpts = t.mountOpts + ",ro"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "UUID=%s / btrfs %s 0 0\n", d.UUID, rootOpts)
	for _, e := range es {
		fmt.Fprintf(&b, "%s %s %s %s 0 0\n", e.src, e.mp, e.typ, e.opts)
	}
	if t.nestedEtc {
		b.WriteString(EtcBindLine + "\n")
	} else {
		b.WriteString(EtcOverlayLine + "\n")
	}
	return b.String()
}
