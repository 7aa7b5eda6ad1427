package chroot

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func FuzzParseFstab(f *testing.F) {
	if data, err := os.ReadFile("../../modules/fstab/testdata/fstab.microos"); err == nil {
		f.Add(data)
	}
	f.Add([]byte("UUID=x / btrfs defaults 0 0\n"))
	f.Add([]byte(`a\040b /x\1 none bind`))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := ParseFstab("fuzz", data)
		if err != nil {
			return
		}
		for _, e := range entries {
			if e.Line <= 0 || e.Spec == "" && e.File == "" {
				t.Fatalf("bad entry %+v", e)
			}
			_, _, _ = mountOptions(e.Options)
		}
		// Planning over a resolver with no devices must not panic either.
		_, _ = PlanFstab(entries, rootFS{FSType: "btrfs", Source: "/dev/null"}, &DeviceResolver{Dev: "/nonexistent", Sys: "/nonexistent"}, true, nil, nil)
	})
}

func TestMountOptions(t *testing.T) {
	flags, data, bind := mountOptions([]string{"defaults", "noatime", "subvol=/@/var", "x-initrd.mount", "nofail", "comment=x", "compress=zstd:1", "ro", "rw", "nosuid"})
	if flags != unix.MS_NOATIME|unix.MS_NOSUID || data != "subvol=/@/var,compress=zstd:1" || bind {
		t.Fatalf("got %#x %q %v", flags, data, bind)
	}
	if _, _, bind := mountOptions([]string{"rbind"}); !bind {
		t.Fatal("rbind not seen")
	}
}

func TestUdevEncode(t *testing.T) {
	for in, want := range map[string]string{
		"combustion": "combustion",
		"my data":    `my\x20data`,
		"a/b":        `a\x2fb`,
		"Ärger":      "Ärger",
		"bad\xff":    `bad\xff`,
	} {
		if got := udevEncode(in); got != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
}

// fakeSystem builds a /dev and /sys with one btrfs filesystem on vda2 and
// udev links for an ext4 filesystem on vdb.
func fakeSystem(t *testing.T) *DeviceResolver {
	t.Helper()
	dir := t.TempDir()
	dev, sys := filepath.Join(dir, "dev"), filepath.Join(dir, "sys")
	mk := func(p string) {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, s string) {
		mk(filepath.Dir(p))
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"vda2", "vdb", "vdc1"} {
		write(filepath.Join(dev, d), "")
	}
	mk(filepath.Join(dev, "disk/by-label"))
	os.Symlink("../../vdb", filepath.Join(dev, `disk/by-label/my\x20data`))
	mk(filepath.Join(dev, "disk/by-uuid"))
	os.Symlink("../../vdb", filepath.Join(dev, "disk/by-uuid/1111-2222"))
	mk(filepath.Join(sys, "fs/btrfs/2a1c3b4d-0000-4000-8000-000000000001/devices/vda2"))
	write(filepath.Join(sys, "fs/btrfs/2a1c3b4d-0000-4000-8000-000000000001/label"), "ROOT\n")
	write(filepath.Join(sys, "class/block/vdc1/uevent"), "MAJOR=252\nDEVNAME=vdc1\nPARTNAME=data\n")
	return &DeviceResolver{Dev: dev, Sys: sys}
}

func TestResolve(t *testing.T) {
	r := fakeSystem(t)
	for spec, want := range map[string]string{
		"UUID=2A1C3B4D-0000-4000-8000-000000000001": "vda2", // via sysfs, no udev link
		"LABEL=ROOT":     "vda2",
		"LABEL=my data":  "vdb",
		"UUID=1111-2222": "vdb",
		"PARTLABEL=data": "vdc1",
		"/dev/vdb":       "vdb",
		`LABEL="ROOT"`:   "vda2",
	} {
		got, err := r.Resolve(spec)
		if err != nil || filepath.Base(got) != want {
			t.Errorf("%s: got %q, %v; want %s", spec, got, err, want)
		}
	}
	for _, spec := range []string{"UUID=nope", "LABEL=../x", "PARTUUID=abc", "UUID="} {
		if _, err := r.Resolve(spec); err == nil {
			t.Errorf("%s: want error", spec)
		}
	}
	for _, spec := range []string{"tmpfs", "none", "server:/export", "/srv/data"} {
		if _, err := r.Resolve(spec); err == nil || !strings.Contains(err.Error(), ErrNotDevice.Error()) {
			t.Errorf("%s: got %v, want ErrNotDevice", spec, err)
		}
	}
}

func TestPlanFstab(t *testing.T) {
	r := fakeSystem(t)
	data, err := os.ReadFile("../../modules/fstab/testdata/fstab.microos")
	if err != nil {
		t.Fatal(err)
	}
	entries, err := ParseFstab("fstab", data)
	if err != nil {
		t.Fatal(err)
	}
	// The root device as mountinfo names it.
	root := r.rootFS(mountInfo{Source: filepath.Join(r.Dev, "vda2"), FSType: "btrfs"})
	if root.UUID != "2a1c3b4d-0000-4000-8000-000000000001" || root.Label != "ROOT" {
		t.Fatalf("root fs %+v", root)
	}
	var logs []string
	planned, err := PlanFstab(entries, root, r, false, nil, func(f string, a ...any) { logs = append(logs, f) })
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range planned {
		got = append(got, strings.Join([]string{p.Target, filepath.Base(p.Source), p.FSType, p.Data}, " "))
	}
	want := []string{
		"/var vda2 btrfs subvol=/@/var",
		"/home vda2 btrfs subvol=/@/home",
		"/root vda2 btrfs subvol=/@/root",
		"/srv vdb ext4 ",
		"/opt tmpfs tmpfs size=10m",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("planned:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, p := range planned {
		if !p.Outside {
			t.Errorf("%s not marked outside the snapshot", p.Target)
		}
	}
	if len(logs) == 0 {
		t.Errorf("skipped /etc overlay not logged")
	}
}

func TestPlanFstabFailures(t *testing.T) {
	r := fakeSystem(t)
	root := r.rootFS(mountInfo{Source: filepath.Join(r.Dev, "vda2"), FSType: "btrfs"})
	for _, tc := range []struct{ fstab, want string }{
		{"UUID=dead-beef /home ext4 defaults\n", "/etc/fstab:1: /home: UUID=dead-beef: no such device"},
		{"tmpfs /opt\n", `/etc/fstab:1: /opt: filesystem type "auto"`},
	} {
		entries, err := ParseFstab("fstab", []byte(tc.fstab))
		if err != nil {
			t.Fatal(err)
		}
		_, err = PlanFstab(entries, root, r, false, nil, nil)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.fstab, err, tc.want)
		}
		// The same entry with nofail is skipped.
		entries[0].Options = append(entries[0].Options, "nofail")
		planned, err := PlanFstab(entries, root, r, false, nil, nil)
		if err != nil || len(planned) != 0 {
			t.Errorf("%q with nofail: got %v, %v", tc.fstab, planned, err)
		}
	}
	// noauto is skipped unless x-initrd.mount; other mount points are ignored.
	entries, _ := ParseFstab("fstab", []byte("LABEL=ROOT /home btrfs subvol=@/home,noauto\nLABEL=ROOT /usr btrfs subvol=@/usr,noauto,x-initrd.mount\nLABEL=ROOT /data btrfs subvol=@/data\n/srv /mnt/srv none bind,x-initrd.mount\n"))
	planned, err := PlanFstab(entries, root, r, false, nil, nil)
	if err != nil || len(planned) != 2 || planned[0].Target != "/usr" || planned[1].FSType != "bind-tree" || planned[1].Outside {
		t.Fatalf("got %+v, %v", planned, err)
	}
}

func TestHoldsAny(t *testing.T) {
	for _, c := range []struct {
		point string
		paths []string
		want  bool
	}{
		{"/var", []string{"/var/lib/provision/instance-id"}, true},
		{"/var", []string{"/var"}, true},
		{"/var", []string{"/variable/x"}, false},
		{"/var/lib", []string{"/var"}, false},
		{"/", []string{"/etc/hostname"}, true},
		{"/home", []string{"/etc/x", "/home/alice/.ssh"}, true},
		{"/home", nil, false},
	} {
		if got := holdsAny(c.point, c.paths); got != c.want {
			t.Errorf("holdsAny(%q, %q) = %v, want %v", c.point, c.paths, got, c.want)
		}
	}
}
