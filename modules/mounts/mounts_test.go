package mounts

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/modules/rootfs/rootfstest"
	"github.com/provision-dev/provision/provision/config"
)

// The image's lines stay byte for byte (comments, spacing, no final
// newline); a previous run's marked lines are replaced, not repeated; the
// new lines are cloud-init's, tab-separated, blanks escaped; mount points
// are made; a second plan has nothing to do.
func TestFstab(t *testing.T) {
	image := "# /etc/fstab: static file system information.\nUUID=abcd  /  btrfs  defaults  0  0\n/dev/old\t/old\tauto\tdefaults,nofail,comment=cloudconfig\t0\t2\nUUID=abcd /var btrfs subvol=/@/var 0 0"
	root := rootfstest.NewRoot(t, map[string]string{"etc/fstab": image})
	cfg := &config.Config{Mounts: &config.Mounts{Entries: []config.MountEntry{
		{Spec: "/dev/vdb", File: "/mnt/data", VfsType: "ext4", Options: "defaults,nofail", Freq: "0", Passno: "2"},
		{Spec: "/dev/sdc", File: "/srv/with space", VfsType: "auto", Options: "defaults", Freq: "0", Passno: "0"},
		{Spec: "192.168.1.2:/export", File: "/mnt/nfs", VfsType: "nfs", Options: "rw", Freq: "0", Passno: "0"},
	}}}
	steps, err := Plan(cfg, root)
	if err != nil {
		t.Fatal(err)
	}
	got := string(rootfstest.PlanText(steps))
	for _, w := range []string{"mounts: create mount point /mnt/data", "mounts: create mount point /srv/with space", "mounts: write /etc/fstab (3 lines added, 1 of a previous run removed"} {
		if !strings.Contains(got, w) {
			t.Errorf("plan lacks %q:\n%s", w, got)
		}
	}
	rootfstest.Apply(t, root, steps)
	b, _ := root.ReadFile("/etc/fstab")
	want := "# /etc/fstab: static file system information.\nUUID=abcd  /  btrfs  defaults  0  0\nUUID=abcd /var btrfs subvol=/@/var 0 0\n" +
		"/dev/vdb\t/mnt/data\text4\tdefaults,nofail,comment=cloudconfig\t0\t2\n" +
		"/dev/sdc\t/srv/with\\040space\tauto\tdefaults,comment=cloudconfig\t0\t0\n" +
		"192.168.1.2:/export\t/mnt/nfs\tnfs\trw,comment=cloudconfig\t0\t0\n"
	if string(b) != want {
		t.Errorf("fstab\n%s\nwant\n%s", b, want)
	}
	for _, d := range []string{"/mnt/data", "/srv/with space", "/mnt/nfs"} {
		if st, err := root.Stat(d); err != nil || !st.IsDir() {
			t.Errorf("mount point %s: %v", d, err)
		}
	}
	if steps, err := Plan(cfg, root); err != nil || len(steps) != 0 {
		t.Errorf("second plan: %v %v", steps, err)
	}
}

// A mount point the image's fstab already mounts is not added again (a
// warning); a previous run's line for it does not count.
func TestImageMountKept(t *testing.T) {
	root := rootfstest.NewRoot(t, map[string]string{"etc/fstab": "UUID=a /data ext4 defaults 0 2\n/dev/x\t/again\tauto\tdefaults,comment=cloudconfig\t0\t2\n", "data/": "", "again/": ""})
	cfg := &config.Config{Mounts: &config.Mounts{Entries: []config.MountEntry{
		{Spec: "/dev/vdb", File: "/data/", VfsType: "auto", Options: "defaults", Freq: "0", Passno: "2"},
		{Spec: "/dev/vdc", File: "/again", VfsType: "auto", Options: "defaults", Freq: "0", Passno: "2"},
	}}}
	steps, err := Plan(cfg, root)
	if err != nil || len(steps) != 2 || steps[0].Action != "not added: warning" || !strings.Contains(steps[0].Detail, "/etc/fstab line 1 already mounts it") {
		t.Fatalf("%v %v", steps, err)
	}
	if out := rootfstest.Apply(t, root, steps); !strings.Contains(out, "[WARN] mounts: /data/") {
		t.Errorf("console %q", out)
	}
	if b, _ := root.ReadFile("/etc/fstab"); string(b) != "UUID=a /data ext4 defaults 0 2\n/dev/vdc\t/again\tauto\tdefaults,comment=cloudconfig\t0\t2\n" {
		t.Errorf("fstab %q", b)
	}
}

// A mount point that is a file (cloud-init's example mounts onto
// /dev/zero) is warned about and left alone, as cloud-init logs it and
// goes on; its fstab line is written.
func TestMountPointNotDir(t *testing.T) {
	root := rootfstest.NewRoot(t, map[string]string{"etc/fstab": "", "srv/blob": "data"})
	cfg := &config.Config{Mounts: &config.Mounts{Entries: []config.MountEntry{
		{Spec: "/dev/vdb", File: "/srv/blob", VfsType: "auto", Options: "defaults", Freq: "0", Passno: "2"},
	}}}
	steps, err := Plan(cfg, root)
	if err != nil || len(steps) != 2 || steps[0].Action != "not created: warning" {
		t.Fatalf("%v %v", steps, err)
	}
	if out := rootfstest.Apply(t, root, steps); !strings.Contains(out, "[WARN] mounts: /srv/blob exists and is not a directory") {
		t.Errorf("console %q", out)
	}
	if b, _ := root.ReadFile("/srv/blob"); string(b) != "data" {
		t.Errorf("/srv/blob changed: %q", b)
	}
	if b, _ := root.ReadFile("/etc/fstab"); !strings.Contains(string(b), "/dev/vdb\t/srv/blob\t") {
		t.Errorf("fstab %q", b)
	}
	// A file that appears only when the run applies (an API mount) too.
	root2 := rootfstest.NewRoot(t, map[string]string{"etc/fstab": ""})
	cfg.Mounts.Entries[0].File = "/dev/zero-ish"
	steps, err = Plan(cfg, root2)
	if err != nil || steps[0].Action != "create mount point" {
		t.Fatalf("%v %v", steps, err)
	}
	if err := root2.WriteFile("/dev/zero-ish", nil, 0o644, rootfs.RootOwner); err != nil {
		t.Fatal(err)
	}
	if out := rootfstest.Apply(t, root2, steps); !strings.Contains(out, "[WARN] mounts: /dev/zero-ish exists") {
		t.Errorf("console %q", out)
	}
}

// An fstab the parser rejects is not appended to.
func TestBadFstab(t *testing.T) {
	root := rootfstest.NewRoot(t, map[string]string{"etc/fstab": "onlyonefield\n"})
	cfg := &config.Config{Mounts: &config.Mounts{Entries: []config.MountEntry{{Spec: "/dev/vdb", File: "none", VfsType: "swap", Options: "sw", Freq: "0", Passno: "0"}}}}
	if _, err := Plan(cfg, root); err == nil || !strings.Contains(err.Error(), "/etc/fstab:1") {
		t.Errorf("got %v", err)
	}
}

func TestSuggestedSize(t *testing.T) {
	const gb = 1 << 30
	for _, c := range []struct{ mem, max, avail, want int64 }{
		{1 * gb, 0, 100 * gb, 1 * gb},              // the memory, under 4 GiB
		{8 * gb, 0, 10 * gb, 10 * gb / 4},          // a quarter of the free space
		{64 * gb, 16 * gb, 100 * gb, 8 * gb},       // sqrt(64) GiB
		{2 * gb, 10 * gb, 5 * gb, 2 * gb},          // maxsize cut to 90% of 5 GiB, still over
		{8 * gb, 3 * gb, 100 * gb, 3 * gb},         // maxsize
		{8 * gb, 10 * gb, 2 * gb, 2 * gb * 9 / 10}, // 90% of the free space
	} {
		if got := suggestedSize(c.mem, c.max, c.avail); got != c.want {
			t.Errorf("suggestedSize(%d, %d, %d) = %d, want %d", c.mem, c.max, c.avail, got, c.want)
		}
	}
}

// On a snapper root the default /swap.img goes to /var (a subvolume of its
// own); without a /var mount it is not made, with a warning; elsewhere it
// goes where asked.
func TestSwapPlacement(t *testing.T) {
	snapper := "UUID=a / btrfs ro 0 0\nUUID=a /.snapshots btrfs subvol=/@/.snapshots 0 0\n"
	for _, c := range []struct{ fstab, want, detail string }{
		{snapper + "UUID=a /var btrfs subvol=/@/var 0 0\n", "/var/lib/swap/swap.img", "placed at /var/lib/swap/swap.img instead of /swap.img"},
		{snapper, "", "the target's fstab mounts no /var"},
		{"UUID=a / ext4 defaults 0 1\n", "/swap.img", "64 MiB, NOCOW"},
	} {
		root := rootfstest.NewRoot(t, map[string]string{"etc/fstab": c.fstab})
		steps, p, err := planSwap(&config.Swap{Filename: "/swap.img", Size: 64 << 20}, root)
		if err != nil || p != c.want || len(steps) != 1 || !strings.Contains(steps[0].Detail, c.detail) {
			t.Errorf("%q: %v %q %v", c.fstab, steps, p, err)
		}
	}
}

// The swap file as mkswap would make it: util-linux's blkid and swaplabel
// read the signature, and the header's version and last page are mkswap's
// for the same size; mode 0600; the fstab line names it.
func TestSwapFile(t *testing.T) {
	root := rootfstest.NewRoot(t, map[string]string{"etc/fstab": "UUID=a / ext4 defaults 0 1\n"})
	cfg := &config.Config{Swap: &config.Swap{Filename: "/swapdir/swap.img", Size: 40<<20 + 123}}
	steps, err := Plan(cfg, root)
	if err != nil || len(steps) != 2 || steps[0].Action != "create swap file" {
		t.Fatalf("%v %v", steps, err)
	}
	rootfstest.Apply(t, root, steps)
	host := filepath.Join(root.Dir, "swapdir/swap.img")
	st, err := os.Stat(host)
	if err != nil || st.Size() != 40<<20 || st.Mode().Perm() != 0o600 {
		t.Fatalf("swap file %v %v", st, err)
	}
	if b, _ := root.ReadFile("/etc/fstab"); !strings.HasSuffix(string(b), "\n/swapdir/swap.img\tnone\tswap\tsw,comment=cloudconfig\t0\t0\n") {
		t.Errorf("fstab %q", b)
	}
	if steps, _ := Plan(cfg, root); len(steps) != 0 {
		t.Errorf("second plan %v", steps)
	}
	ours, _ := os.ReadFile(host)
	if _, err := exec.LookPath("mkswap"); err != nil {
		t.Skip("util-linux's mkswap not installed: the header is not compared")
	}
	ref := filepath.Join(t.TempDir(), "ref")
	if err := os.WriteFile(ref, make([]byte, 40<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkswap", ref).CombinedOutput(); err != nil {
		t.Fatalf("mkswap: %v\n%s", err, out)
	}
	theirs, _ := os.ReadFile(ref)
	ps := os.Getpagesize()
	ne := binary.NativeEndian
	for _, off := range []int{1024, 1028, 1032} { // version, last_page, nr_badpages
		if ne.Uint32(ours[off:]) != ne.Uint32(theirs[off:]) {
			t.Errorf("header field at %d: ours %d, mkswap's %d", off, ne.Uint32(ours[off:]), ne.Uint32(theirs[off:]))
		}
	}
	if !bytes.Equal(ours[ps-10:ps], theirs[ps-10:ps]) || !bytes.Equal(ours[:1024], theirs[:1024]) {
		t.Error("magic or boot block differs from mkswap's")
	}
	out, err := exec.Command("blkid", "-p", "-o", "export", host).Output()
	if err != nil || !strings.Contains(string(out), "TYPE=swap") || !strings.Contains(string(out), "VERSION=1") {
		t.Errorf("blkid: %v\n%s", err, out)
	}
	uuid := ""
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(l, "UUID="); ok {
			uuid = v
		}
	}
	if out, err := exec.Command("swaplabel", host).Output(); err != nil || uuid == "" || !strings.Contains(string(out), "UUID:  "+uuid) {
		t.Errorf("swaplabel: %v %q, blkid's UUID %q", err, out, uuid)
	}
}

// size auto: cloud-init's suggestion from the memory and the free space.
func TestSwapAuto(t *testing.T) {
	memTotal = func() (int64, error) { return 24 << 20, nil }
	defer func() { memTotal = readMemTotal }()
	root := rootfstest.NewRoot(t, nil)
	s := &config.Swap{Filename: "/swap.img", Auto: true}
	steps, _, err := planSwap(s, root)
	if err != nil || len(steps) != 1 || !strings.Contains(steps[0].Detail, "size auto") {
		t.Fatalf("%v %v", steps, err)
	}
	rootfstest.Apply(t, root, steps)
	if st, err := os.Stat(filepath.Join(root.Dir, "swap.img")); err != nil || st.Size() != 24<<20 {
		t.Errorf("%v %v", st, err)
	}
	// Under 1 MiB: nothing, a warning.
	memTotal = func() (int64, error) { return 1000, nil }
	os.Remove(filepath.Join(root.Dir, "swap.img"))
	var console bytes.Buffer
	if err := steps[0].Apply(t.Context(), &modules.Env{Root: root, Console: &console}); err != nil || !strings.Contains(console.String(), "under 1 MiB") || root.Exists("/swap.img") {
		t.Errorf("%v %q", err, console.String())
	}
}

// The swap file is created inside the root only.
func TestSwapConfined(t *testing.T) {
	root := rootfstest.NewRoot(t, map[string]string{"swapdir": "->/../../outside"})
	f, err := root.CreateFile("/swapdir/x", 0o600, rootfs.RootOwner)
	if err == nil {
		f.Close()
		t.Fatal("created through a symlink out of the root")
	}
}
