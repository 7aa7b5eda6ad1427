package etcmodel

import (
	"strings"
	"testing"
)

const overlayLine = "overlay /etc overlay defaults,lowerdir=/sysroot/etc,upperdir=/sysroot/var/lib/overlay/1/etc,workdir=/sysroot/var/lib/overlay/work-etc,x-systemd.requires-mounts-for=/var,x-systemd.requires-mounts-for=/sysroot/var,x-initrd.mount 0 0"

func TestDetect(t *testing.T) {
	for _, c := range []struct {
		name, fstab string
		kind        Kind
		line        int
		err         string
	}{
		{"plain", "UUID=x / btrfs ro 0 0\n", Directory, 0, ""},
		{"none", "", Directory, 0, ""},
		{"nested", "UUID=x / btrfs ro 0 0\n# comment\n/etc /etc none bind,x-initrd.mount 0 0\n", Subvolume, 3, ""},
		{"nested slash", "/etc/ /etc/ none bind 0 0\n", Subvolume, 1, ""},
		{"overlay", "UUID=x / btrfs ro 0 0\n" + overlayLine + "\n", Overlay, 2, ""},
		{"bind elsewhere", "/srv/etc /etc none bind 0 0\n", "", 0, "bind-mounted from /srv/etc"},
		{"own fs", "UUID=y /etc ext4 defaults 0 0\n", "", 0, "separate ext4 filesystem"},
		{"overlay without upper", "overlay /etc overlay lowerdir=/sysroot/etc 0 0\n", "", 0, "without lowerdir, upperdir and workdir"},
		{"relative layer", "overlay /etc overlay lowerdir=etc,upperdir=/u/var/lib/overlay/1/etc,workdir=/w 0 0\n", "", 0, "not a clean absolute path"},
		{"bad fstab", "/dev/sda\n", "", 0, "/etc/fstab:1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, err := Detect("/etc/fstab", []byte(c.fstab))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Kind != c.kind || m.Line != c.line {
				t.Errorf("got %s line %d, want %s line %d", m.Kind, m.Line, c.kind, c.line)
			}
		})
	}
}

func TestNextOverlay(t *testing.T) {
	m, err := Detect("fstab", []byte(overlayLine+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := m.NextOverlay(2)
	if err != nil {
		t.Fatal(err)
	}
	// What transactional-update 4 writes for snapshot 2 of a first-boot image.
	want := "overlay /etc overlay defaults,lowerdir=/sysroot/var/lib/overlay/1/etc:/sysroot/etc,upperdir=/sysroot/var/lib/overlay/2/etc,workdir=/sysroot/var/lib/overlay/2/work-etc,x-systemd.requires-mounts-for=/var,x-systemd.requires-mounts-for=/sysroot/var,x-initrd.mount 0 0"
	if got := n.FstabLine(); got != want {
		t.Errorf("line\n got %s\nwant %s", got, want)
	}
	n3, err := n.NextOverlay(3)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(n3.Lower, ":"); got != "/sysroot/var/lib/overlay/2/etc:/sysroot/var/lib/overlay/1/etc:/sysroot/etc" {
		t.Errorf("stack %s", got)
	}
	if _, err := n.NextOverlay(1); err == nil {
		t.Error("reusing a lower layer's number was accepted")
	}
	long := m
	for i := 0; i < 200; i++ {
		long.Lower = append(long.Lower, "/sysroot/var/lib/overlay/999999/etc")
	}
	if _, err := long.NextOverlay(5); err == nil || !strings.Contains(err.Error(), "page limit") {
		t.Errorf("over-long lowerdir: %v", err)
	}
	odd, _ := Detect("fstab", []byte("overlay /etc overlay lowerdir=/sysroot/etc,upperdir=/sysroot/srv/up,workdir=/sysroot/srv/work 0 0\n"))
	if _, err := odd.NextOverlay(2); err == nil {
		t.Error("an upper layer outside /var/lib/overlay was accepted")
	}
}

func TestRewriteKeepsOtherLines(t *testing.T) {
	in := "# header\nUUID=x / btrfs ro 0 0\n" + overlayLine + "\nUUID=x /home btrfs subvol=@/home 0 0"
	out, err := Rewrite([]byte(in), 3, "NEW")
	if err != nil {
		t.Fatal(err)
	}
	if want := "# header\nUUID=x / btrfs ro 0 0\nNEW\nUUID=x /home btrfs subvol=@/home 0 0"; string(out) != want {
		t.Errorf("got %q", out)
	}
	if _, err := Rewrite([]byte(in), 9, "x"); err == nil {
		t.Error("line 9 of a 4-line file rewritten")
	}
}

func TestInTree(t *testing.T) {
	for in, want := range map[string]string{
		"/sysroot/var/lib/overlay/1/etc": "/var/lib/overlay/1/etc",
		"/sysroot":                       "/",
		"/var/lib/overlay/1/etc":         "/var/lib/overlay/1/etc",
		"/sysrootx/etc":                  "/sysrootx/etc",
	} {
		if got := InTree(in); got != want {
			t.Errorf("InTree(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzDetect(f *testing.F) {
	f.Add(overlayLine + "\n")
	f.Add("/etc /etc none bind,x-initrd.mount 0 0\n")
	f.Fuzz(func(t *testing.T, s string) {
		m, err := Detect("fstab", []byte(s))
		if err != nil || m.Kind != Overlay {
			return
		}
		n, err := m.NextOverlay(7)
		if err != nil {
			return
		}
		back, err := Detect("fstab", []byte(n.FstabLine()+"\n"))
		if err != nil {
			t.Fatalf("rendered line does not parse: %v\n%s", err, n.FstabLine())
		}
		if back.Upper != n.Upper || strings.Join(back.Lower, ":") != strings.Join(n.Lower, ":") {
			t.Fatalf("round trip changed the layers: %+v vs %+v", back, n)
		}
	})
}
