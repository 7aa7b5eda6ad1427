package e2e

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Layout is how the root filesystem's subvolumes are arranged.
type Layout int

const (
	// Plain: the root is the top-level subvolume (id 5), made with
	// mkfs.btrfs --rootdir without any mount.
	Plain Layout = iota
	// Snapper: MicroOS's layout: @, @/.snapshots, the root in
	// @/.snapshots/1/snapshot as default subvolume, and @/var, @/home,
	// @/root as separate subvolumes mounted from fstab.
	Snapper
)

// RootOptions describe a root disk.
type RootOptions struct {
	Layout Layout
	// Extra files merged over the base root (paths without leading /).
	Extra Tree
}

// RootLabel and the per-disk UUID are how tests' cmdlines name the root.
const RootLabel = "root"

// markerFile is written by the root's init on every boot into the root it
// booted, so the disk says which subvolume came up.
const markerFile = "e2e-booted"

// rootInit is the test root's /sbin/init. It does what systemd would do for
// the test's purposes: mount fstab (so /var is the @/var subvolume),
// initialise /etc/machine-id on first boot (that ends "first boot"), then
// records the boot on the disk and powers off.
const rootInit = `#!/bin/sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc 2>/dev/null
mount -t sysfs sysfs /sys 2>/dev/null
mount -a 2>&1 | sed 's/^/e2e-init: /'
if [ ! -s /etc/machine-id ] || grep -q uninitialized /etc/machine-id; then
	tr -d '-' < /proc/sys/kernel/random/uuid > /etc/machine-id
fi
n=$(cat /var/lib/e2e/boots 2>/dev/null || echo 0)
n=$((n + 1))
mkdir -p /var/lib/e2e
echo "$n" > /var/lib/e2e/boots
echo "E2E-BOOTED boot=$n"
echo "E2E-CMDLINE $(cat /proc/cmdline)"
grep -E ' / | /var ' /proc/mounts | sed 's/^/E2E-MOUNT /'
echo "$n" >> /` + markerFile + `
sync
echo E2E-POWEROFF
poweroff -f
`

func baseRoot(busybox []byte, applets []string, fsUUID string, layout Layout) Tree {
	t := Tree{
		"bin/busybox": {Mode: 0o755, Data: busybox},
		"sbin/init":   {Mode: 0o755, Data: []byte(rootInit)},
		"etc/passwd": {Mode: 0o644, Data: []byte("root:x:0:0:root:/root:/bin/sh\n" +
			"messagebus:x:100:101::/nonexistent:/usr/sbin/nologin\n" +
			"nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")},
		"etc/shadow": {Mode: 0o640, Data: []byte("root:*:19000:0:99999:7:::\n" +
			"messagebus:!:19000::::::\n" +
			"nobody:*:19000:0:99999:7:::\n")},
		"etc/group":   {Mode: 0o644, Data: []byte("root:x:0:\nshadow:x:42:\nwheel:x:10:\nmessagebus:x:101:\nusers:x:100:\nnogroup:x:65534:\n")},
		"etc/gshadow": {Mode: 0o640, Data: []byte("root:*::\nshadow:*::\nwheel:*::\nmessagebus:!::\nusers:*::\nnogroup:*::\n")},
		"etc/login.defs": {Mode: 0o644, Data: []byte("UID_MIN 1000\nUID_MAX 60000\nSYS_UID_MIN 100\nSYS_UID_MAX 999\n" +
			"GID_MIN 1000\nGID_MAX 60000\nSYS_GID_MIN 100\nSYS_GID_MAX 999\nUMASK 022\nHOME_MODE 0700\n" +
			// As Debian, openSUSE and Fedora ship it: useradd makes a
			// user-private group.
			"USERGROUPS_ENAB yes\n")},
		"etc/skel/.profile": {Mode: 0o644, Data: []byte("# e2e skel\n")},
		"etc/hostname":      {Mode: 0o644, Data: []byte("localhost\n")},
		"etc/os-release":    {Mode: 0o644, Data: []byte("NAME=\"provision e2e\"\nID=e2e\nVERSION_ID=1\n")},
		"etc/ssh":           {Mode: os.ModeDir | 0o755},
		"root":              {Mode: os.ModeDir | 0o700},
		"home":              {Mode: os.ModeDir | 0o755},
		"tmp":               {Mode: os.ModeDir | 0o1777},
		"var/log":           {Mode: os.ModeDir | 0o755},
		"var/lib":           {Mode: os.ModeDir | 0o755},
		"proc":              {Mode: os.ModeDir | 0o755},
		"sys":               {Mode: os.ModeDir | 0o755},
		"dev":               {Mode: os.ModeDir | 0o755},
		"run":               {Mode: os.ModeDir | 0o755},
		"usr/bin":           {Mode: os.ModeDir | 0o755},
		"usr/sbin":          {Mode: os.ModeDir | 0o755},
	}
	for _, a := range applets {
		if a == "init" || a == "busybox" {
			continue
		}
		t["bin/"+a] = TreeEntry{Link: "busybox"}
	}
	if layout == Plain {
		t["etc/fstab"] = TreeEntry{Mode: 0o644, Data: []byte("UUID=" + fsUUID + " / btrfs defaults 0 0\n")}
	}
	if layout == Snapper {
		t["etc/fstab"] = TreeEntry{Mode: 0o644, Data: []byte(fmt.Sprintf(
			"UUID=%[1]s / btrfs defaults 0 0\n"+
				"UUID=%[1]s /.snapshots btrfs subvol=/@/.snapshots 0 0\n"+
				"UUID=%[1]s /var btrfs subvol=/@/var,x-initrd.mount 0 0\n"+
				"UUID=%[1]s /home btrfs subvol=/@/home 0 0\n"+
				"UUID=%[1]s /root btrfs subvol=/@/root 0 0\n", fsUUID))}
		t[".snapshots"] = TreeEntry{Mode: os.ModeDir | 0o750}
		t["etc/snapper/configs/root"] = TreeEntry{Mode: 0o640, Data: []byte("SUBVOLUME=\"/\"\nFSTYPE=\"btrfs\"\nNUMBER_CLEANUP=\"yes\"\n")}
		t["etc/sysconfig/snapper"] = TreeEntry{Mode: 0o644, Data: []byte("SNAPPER_CONFIGS=\"root\"\n")}
	}
	return t
}

// WriteDir materialises the tree below dir (parents, modes, symlinks).
func (t Tree) WriteDir(dir string) error {
	for p, e := range t {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		switch {
		case e.Link != "":
			_ = os.Remove(full)
			if err := os.Symlink(e.Link, full); err != nil {
				return err
			}
		case e.Mode.IsDir():
			if err := os.MkdirAll(full, e.Mode.Perm()); err != nil {
				return err
			}
			if err := os.Chmod(full, e.Mode.Perm()|(e.Mode&os.ModeSticky)); err != nil {
				return err
			}
		default:
			if err := os.WriteFile(full, e.Data, e.Mode.Perm()); err != nil {
				return err
			}
			if err := os.Chmod(full, e.Mode.Perm()); err != nil {
				return err
			}
		}
	}
	return nil
}

func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// RootDisk is a btrfs root image. UUID is fresh per disk so that the host
// kernel never sees two images with one fsid.
type RootDisk struct {
	Path   string
	UUID   string
	Layout Layout
}

// BuildRoot makes a 512 MiB sparse btrfs image in dir, with every applet
// the busybox at busyboxPath lists (so it must run on this host).
func BuildRoot(dir, busyboxPath string, opts RootOptions) (*RootDisk, error) {
	list, err := run("", busyboxPath, "--list")
	if err != nil {
		return nil, err
	}
	return BuildRootFor(dir, busyboxPath, strings.Fields(list), opts)
}

// BuildRootFor makes a root disk like BuildRoot, for a busybox the host may
// not be able to run (tier C's other architecture): the applets are named,
// not listed by busybox itself.
func BuildRootFor(dir, busyboxPath string, applets []string, opts RootOptions) (*RootDisk, error) {
	bb, err := os.ReadFile(busyboxPath)
	if err != nil {
		return nil, err
	}
	d := &RootDisk{Path: filepath.Join(dir, "root.img"), UUID: newUUID(), Layout: opts.Layout}
	t := baseRoot(bb, applets, d.UUID, opts.Layout)
	for p, e := range opts.Extra {
		t[p] = e
	}
	stage := filepath.Join(dir, "root-stage")
	if err := t.WriteDir(stage); err != nil {
		return nil, err
	}
	defer os.RemoveAll(stage)
	if err := os.WriteFile(d.Path, nil, 0o644); err != nil {
		return nil, err
	}
	if err := os.Truncate(d.Path, 512<<20); err != nil {
		return nil, err
	}
	if opts.Layout == Plain {
		_, err := run("", "mkfs.btrfs", "-q", "-L", RootLabel, "-U", d.UUID, "--rootdir", stage, d.Path)
		return d, err
	}
	if _, err := run("", "mkfs.btrfs", "-q", "-L", RootLabel, "-U", d.UUID, d.Path); err != nil {
		return nil, err
	}
	mnt := filepath.Join(dir, "root-mnt")
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		return nil, err
	}
	if _, err := run("", "mount", "-o", "loop", d.Path, mnt); err != nil {
		return nil, err
	}
	err = snapperLayout(mnt, stage)
	if _, uerr := run("", "umount", mnt); err == nil {
		err = uerr
	}
	return d, err
}

// snapperLayout creates MicroOS's subvolumes on the mounted top level and
// copies the staged root into snapshot 1, which becomes the default.
func snapperLayout(top, stage string) error {
	snap := "@/.snapshots/1/snapshot"
	steps := [][]string{
		{"btrfs", "-q", "subvolume", "create", filepath.Join(top, "@")},
		{"btrfs", "-q", "subvolume", "create", filepath.Join(top, "@/.snapshots")},
		{"mkdir", "-p", filepath.Join(top, "@/.snapshots/1")},
		{"btrfs", "-q", "subvolume", "create", filepath.Join(top, snap)},
		{"btrfs", "-q", "subvolume", "create", filepath.Join(top, "@/var")},
		{"btrfs", "-q", "subvolume", "create", filepath.Join(top, "@/home")},
		{"btrfs", "-q", "subvolume", "create", filepath.Join(top, "@/root")},
		{"cp", "-a", stage + "/.", filepath.Join(top, snap)},
		// What was staged under /var, /home, /root belongs in their
		// subvolumes; the snapshot keeps empty mount points.
		{"cp", "-a", stage + "/var/.", filepath.Join(top, "@/var")},
		{"sh", "-c", "rm -rf " + filepath.Join(top, snap, "var") + "/* " + filepath.Join(top, snap, "home") + "/* " + filepath.Join(top, snap, "root") + "/.[!.]* " + filepath.Join(top, snap, "root") + "/*"},
		{"chmod", "0700", filepath.Join(top, "@/root")},
	}
	for _, s := range steps {
		if _, err := run("", s[0], s[1:]...); err != nil {
			return err
		}
	}
	info := `<?xml version="1.0"?>
<snapshot>
  <type>single</type>
  <num>1</num>
  <date>2024-01-01 00:00:00</date>
  <description>first root filesystem</description>
</snapshot>
`
	if err := os.WriteFile(filepath.Join(top, "@/.snapshots/1/info.xml"), []byte(info), 0o644); err != nil {
		return err
	}
	out, err := run("", "btrfs", "subvolume", "list", top)
	if err != nil {
		return err
	}
	id := regexp.MustCompile(`ID (\d+) .* path ` + regexp.QuoteMeta(snap) + `\n`).FindStringSubmatch(out + "\n")
	if id == nil {
		return fmt.Errorf("snapshot 1 not in subvolume list:\n%s", out)
	}
	_, err = run("", "btrfs", "subvolume", "set-default", id[1], top)
	return err
}
