package faithful

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// requireRootTier skips unless the test can make loop devices, btrfs and
// vfat images and mount them.
func requireRootTier(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("root tier: skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("root tier: needs root (loop devices, mount, btrfs)")
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		t.Skipf("root tier: no loop devices: %v", err)
	}
	for _, tool := range []string{"mkfs.btrfs", "btrfs", "sfdisk", "partx", "losetup", "mkfs.vfat", "mcopy", "mmd",
		"mdir", "mtype", "chattr", "lsattr", "cp", "mount", "umount", "findmnt", "blkid"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("root tier: %s not installed (packages btrfs-progs, fdisk, dosfstools, mtools, util-linux)", tool)
		}
	}
	fss, _ := os.ReadFile("/proc/filesystems")
	for _, fs := range []string{"btrfs", "overlay"} {
		if !regexp.MustCompile(`\s` + fs + `\n`).Match(fss) {
			t.Skipf("root tier: the kernel has no %s (load the module)", fs)
		}
	}
	for _, bb := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		if _, err := os.Stat(bb); err == nil {
			return bb
		}
	}
	t.Skip("root tier: no busybox for the stage (package busybox-static)")
	return ""
}

// stageFiles is the tiny OS: path -> content (directories end in /).
var stageFiles = map[string]string{
	"etc/passwd":          "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n",
	"etc/group":           "root:x:0:\nshadow:x:42:\nalice:x:1000:\n",
	"etc/shadow":          "root:*:19000:0:99999:7:::\nalice:!:19000:0:99999:7:::\n",
	"etc/hostname":        "localhost\n",
	"etc/os-release":      "NAME=\"Faithful\"\nPRETTY_NAME=\"Faithful Test OS\"\nID=faithful\nVERSION_ID=1\n",
	"etc/machine-id":      "0123456789abcdef0123456789abcdef\n",
	"etc/ssh/sshd_config": "PermitRootLogin prohibit-password\n",
	"var/lib/foo/data":    "foo\n",
	"var/log/":            "",
	"home/alice/.profile": "# alice\n",
	"root/.profile":       "# root\n",
	"opt/app/run":         "#!/bin/sh\n",
	"usr/local/bin/tool":  "#!/bin/sh\n",
	"usr/bin/":            "",
	"bin/":                "",
	"srv/":                "",
	"tmp/":                "",
	"proc/":               "",
	"sys/":                "",
	"dev/":                "",
	"run/":                "",
}

func makeStage(t *testing.T, busybox string, extra map[string]string) string {
	t.Helper()
	stage := filepath.Join(t.TempDir(), "stage")
	files := map[string]string{}
	for p, c := range stageFiles {
		files[p] = c
	}
	for p, c := range extra {
		files[p] = c
	}
	for p, c := range files {
		full := filepath.Join(stage, p)
		if strings.HasSuffix(p, "/") {
			if err := os.MkdirAll(full, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := writeFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	must(t, os.Chmod(filepath.Join(stage, "etc/shadow"), 0o640))
	must(t, os.Chmod(filepath.Join(stage, "root"), 0o700))
	must(t, os.Chown(filepath.Join(stage, "home/alice"), 1000, 1000))
	must(t, os.Chown(filepath.Join(stage, "home/alice/.profile"), 1000, 1000))
	if _, err := run("cp", busybox, filepath.Join(stage, "bin/busybox")); err != nil {
		t.Fatal(err)
	}
	for _, applet := range []string{"sh", "ls", "cat", "mount"} {
		must(t, os.Symlink("busybox", filepath.Join(stage, "bin", applet)))
	}
	return stage
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// wantSubvolumes is each variant's subvolume list (microos-reality.md §1.1).
func wantSubvolumes(v Variant) []string {
	s := []string{"@", "@/.snapshots", "@/.snapshots/1/snapshot", "@/home", "@/opt", "@/root", "@/srv", "@/usr/local"}
	x86 := []string{"@/boot/writable", "@/boot/grub2/i386-pc", "@/boot/grub2/x86_64-efi"}
	etc := "@/.snapshots/1/snapshot/etc"
	switch v {
	case A:
		s = append(append(s, etc, "@/var"), x86...)
	case B, D:
		s = append(append(s, "@/var"), x86...)
	case C:
		s = append(s, etc, "@/var")
	case E:
		s = append(s, etc, "@/var", "@/boot/writable", "@/boot/grub2/arm64-efi")
	case F:
		s = append(s, x86...)
	}
	sort.Strings(s)
	return s
}

// wantFstab spells each variant's fstab out line by line (§1.2).
func wantFstab(d *Disk) string {
	r, o := "UUID="+d.UUID, "defaults"
	if d.Variant == E {
		o = "noatime,compress=lzo"
	}
	lines := []string{}
	if d.Variant == E {
		lines = append(lines, r+" / btrfs noatime,compress=lzo,ro 0 0")
	} else {
		lines = append(lines, r+" / btrfs ro 0 0")
	}
	vol := func(mp, extra string) string {
		return fmt.Sprintf("%s %s btrfs %s,subvol=@%s%s 0 0", r, mp, o, mp, extra)
	}
	lines = append(lines, vol("/.snapshots", ""), vol("/home", ""), vol("/opt", ""),
		vol("/root", ",x-initrd.mount"), vol("/srv", ""))
	if d.Variant == F {
		lines = append(lines, "UUID="+d.VarUUID+" /var btrfs defaults,x-initrd.mount 0 0")
	} else {
		lines = append(lines, vol("/var", ",x-initrd.mount"))
	}
	if d.Variant == C || d.Variant == E {
		lines = append(lines, "UUID="+d.ESPUUID+" /boot/efi vfat defaults 0 0")
	}
	if d.Variant != C {
		lines = append(lines, vol("/boot/writable", ""))
	}
	lines = append(lines, vol("/usr/local", ""))
	switch d.Variant {
	case C:
	case E:
		lines = append(lines, vol("/boot/grub2/arm64-efi", ""))
	default:
		lines = append(lines, vol("/boot/grub2/i386-pc", ""), vol("/boot/grub2/x86_64-efi", ""))
	}
	switch d.Variant {
	case A, C, E:
		lines = append(lines, "/etc /etc none bind,x-initrd.mount 0 0")
	default:
		lines = append(lines, "overlay /etc overlay defaults,lowerdir=/sysroot/etc,upperdir=/sysroot/var/lib/overlay/1/etc,"+
			"workdir=/sysroot/var/lib/overlay/work-etc,x-systemd.requires-mounts-for=/var,"+
			"x-systemd.requires-mounts-for=/sysroot/var,x-initrd.mount 0 0")
	}
	return strings.Join(lines, "\n") + "\n"
}

func nested(v Variant) bool { return v == A || v == C || v == E }

func TestBuildEveryVariant(t *testing.T) {
	busybox := requireRootTier(t)
	stage := makeStage(t, busybox, nil)
	var timings []string
	for _, v := range Variants() {
		t.Run(string(v), func(t *testing.T) {
			start := time.Now()
			d, err := Build(t.TempDir(), Options{Variant: v, Stage: stage})
			if err != nil {
				t.Fatal(err)
			}
			took := time.Since(start)
			timings = append(timings, fmt.Sprintf("%s %s", v, took.Round(time.Millisecond)))
			t.Logf("built %s in %s", v, took)
			checkTable(t, d)
			checkOffline(t, d, stage)
			checkBooted(t, d, stage)
		})
	}
	t.Logf("build times: %s", strings.Join(timings, ", "))
	if _, err := os.Stat(filepath.Join(stage, "var/lib/foo/data")); err != nil {
		t.Errorf("the stage was modified: %v", err)
	}
}

// TestBuildSdbootKernel builds C from a stage with a kernel and initrd in
// /boot and SELinux requested.
func TestBuildSdbootKernel(t *testing.T) {
	busybox := requireRootTier(t)
	stage := makeStage(t, busybox, map[string]string{
		"boot/vmlinuz-6.1.0-99-amd64":    "kernel bytes " + strings.Repeat("k", 5000),
		"boot/initrd.img-6.1.0-99-amd64": "initrd bytes " + strings.Repeat("i", 7000),
		"etc/selinux/default/policy/x":   "policy\n",
		"etc/os-release":                 "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nVERSION=\"12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n",
	})
	d, err := Build(t.TempDir(), Options{Variant: C, Stage: stage, SELinux: "enforcing", EntryToken: "debian", Cmdline: "console=ttyS0  quiet"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Inspect(d)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { must(t, s.Close()) }()
	ksum := sha1Hex(t, filepath.Join(stage, "boot/vmlinuz-6.1.0-99-amd64"))
	isum := sha1Hex(t, filepath.Join(stage, "boot/initrd.img-6.1.0-99-amd64"))
	want := "# Boot Loader Specification type#1 entry\n" +
		"title      Debian GNU/Linux 12 (bookworm) (Initial Installation)\n" +
		"version    1@6.1.0-99-amd64\n" +
		"sort-key   debian\n" +
		"options    console=ttyS0 quiet security=selinux selinux=1 root=UUID=" + d.UUID + " rootflags=subvol=@/.snapshots/1/snapshot\n" +
		"linux      /debian/6.1.0-99-amd64/linux-" + ksum + "\n" +
		"initrd     /debian/6.1.0-99-amd64/initrd-" + isum + "\n"
	if got := s.ESPFiles["/loader/entries/debian-6.1.0-99-amd64-1.conf"]; got != want {
		t.Errorf("entry:\n%s\nwant:\n%s\nESP: %v", got, want, keys(s.ESPSums))
	}
	if s.ESPSums["/debian/6.1.0-99-amd64/linux-"+ksum] != ksum || s.ESPSums["/debian/6.1.0-99-amd64/initrd-"+isum] != isum {
		t.Errorf("kernel or initrd not on the ESP as their SHA-1 names them: %v", s.ESPSums)
	}
	if d.Entry != "/loader/entries/debian-6.1.0-99-amd64-1.conf" || d.KernelVersion != "6.1.0-99-amd64" || d.SELinux != "enforcing" {
		t.Errorf("disk says entry %q kernel %q selinux %q", d.Entry, d.KernelVersion, d.SELinux)
	}
	if got, _ := s.ReadEtc(1, "selinux/config"); got != "SELINUX=enforcing\nSELINUXTYPE=targeted\n" {
		t.Errorf("selinux/config = %q", got)
	}
	if got, _ := s.ReadEtc(1, "selinux/targeted/policy/x"); got != "policy\n" {
		t.Errorf("the default policy was not copied to targeted: %q", got)
	}
	if got, _ := s.ReadEtc(1, "kernel/cmdline"); got != "console=ttyS0  quiet security=selinux selinux=1\n" {
		t.Errorf("/etc/kernel/cmdline = %q", got)
	}
	// The kernel stays in the snapshot's /boot too.
	if _, err := os.Stat(filepath.Join(s.Snapshot(1), "boot/vmlinuz-6.1.0-99-amd64")); err != nil {
		t.Error(err)
	}
}

// TestSELinuxPermissiveOnD: D lowers enforcing to permissive.
func TestSELinuxPermissiveOnD(t *testing.T) {
	busybox := requireRootTier(t)
	stage := makeStage(t, busybox, map[string]string{"etc/selinux/config": "SELINUX=disabled\nSELINUXTYPE=default\n"})
	d, err := Build(t.TempDir(), Options{Variant: D, Stage: stage, SELinux: "enforcing"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Inspect(d)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { must(t, s.Close()) }()
	if got, _ := s.ReadEtc(1, "selinux/config"); got != "SELINUX=permissive\nSELINUXTYPE=targeted\n" {
		t.Errorf("selinux/config = %q", got)
	}
	if got, _ := s.ReadEtc(1, "default/grub"); !strings.Contains(got, `GRUB_CMDLINE_LINUX_DEFAULT="console=ttyS0 security=selinux selinux=1"`) {
		t.Errorf("default/grub lacks the SELinux cmdline:\n%s", got)
	}
}

func sha1Hex(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha1.Sum(b)
	return hex.EncodeToString(sum[:])
}

func keys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// checkTable reads the partition table and the filesystems' ids with
// sfdisk and blkid on the image file.
func checkTable(t *testing.T, d *Disk) {
	t.Helper()
	dump, err := run("sfdisk", "--dump", d.Path)
	if err != nil {
		t.Fatal(err)
	}
	label := "gpt"
	wantTypes := map[Variant][]string{
		A: {TypeLinux}, B: {TypeLinux}, D: {TypeLinux},
		C: {TypeESP, TypeLinux}, E: {"c", "83"}, F: {TypeLinux, TypeLinux},
	}[d.Variant]
	if d.Variant == E {
		label = "dos"
	}
	if !strings.Contains(dump, "label: "+label+"\n") {
		t.Errorf("sfdisk --dump: want label %s:\n%s", label, dump)
	}
	if n := strings.Count(dump, d.Path); n != len(wantTypes)+1 {
		t.Errorf("sfdisk --dump: want %d partitions:\n%s", len(wantTypes), dump)
	}
	for i, want := range wantTypes {
		got, err := run("sfdisk", "--part-type", d.Path, fmt.Sprint(i+1))
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(got) != want {
			t.Errorf("partition %d type %q, want %q", i+1, strings.TrimSpace(got), want)
		}
	}
	probe := func(n int) map[string]string {
		out, err := run("blkid", "-p", "-o", "export", "-O", fmt.Sprint(d.part(n).Start), d.Path)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, l := range strings.Split(out, "\n") {
			if k, v, ok := strings.Cut(l, "="); ok {
				m[k] = v
			}
		}
		return m
	}
	if m := probe(d.RootPart); m["TYPE"] != "btrfs" || m["LABEL"] != "ROOT" || m["UUID"] != d.UUID {
		t.Errorf("root partition %d: %v, want btrfs ROOT %s", d.RootPart, m, d.UUID)
	}
	if d.Variant == C || d.Variant == E {
		if m := probe(d.ESPPart); m["TYPE"] != "vfat" || m["LABEL"] != "EFI" || m["UUID"] != d.ESPUUID || d.ESPPart != 1 {
			t.Errorf("ESP partition %d: %v, want vfat EFI %s", d.ESPPart, m, d.ESPUUID)
		}
	}
	if d.Variant == F {
		if m := probe(d.VarPart); m["TYPE"] != "btrfs" || m["UUID"] != d.VarUUID {
			t.Errorf("var partition %d: %v, want btrfs %s", d.VarPart, m, d.VarUUID)
		}
	}
}

var infoRe = regexp.MustCompile(`^<\?xml version="1.0"\?>
<snapshot>
  <type>single</type>
  <num>1</num>
  <date>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d</date>
  <description>first root filesystem</description>
</snapshot>
$`)

// checkOffline reads the disk with Inspect and the btrfs tools.
func checkOffline(t *testing.T, d *Disk, stage string) {
	t.Helper()
	s, err := Inspect(d)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { must(t, s.Close()) }()
	v := d.Variant
	snap := "@/.snapshots/1/snapshot"
	if s.Default != snap {
		t.Errorf("default subvolume %q, want %q", s.Default, snap)
	}
	if got, want := strings.Join(s.Subvolumes, " "), strings.Join(wantSubvolumes(v), " "); got != want {
		t.Errorf("subvolumes:\n got %s\nwant %s", got, want)
	}
	if !s.ReadOnly[snap] {
		t.Errorf("%s is not read-only: %v", snap, s.ReadOnly)
	}
	for _, sv := range s.Subvolumes {
		if sv != snap && s.ReadOnly[sv] {
			t.Errorf("%s is read-only", sv)
		}
	}
	if nested(v) {
		out, err := run("btrfs", "subvolume", "list", "-o", filepath.Join(s.Top, snap))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, " path "+snap+"/etc\n") {
			t.Errorf("etc is not a subvolume below the snapshot:\n%s", out)
		}
		if ro, _ := run("btrfs", "property", "get", "-ts", filepath.Join(s.Top, snap, "etc"), "ro"); strings.TrimSpace(ro) != "ro=false" {
			t.Errorf("nested etc: %q", ro)
		}
	}
	if ro, _ := run("btrfs", "property", "get", "-ts", filepath.Join(s.Top, snap), "ro"); strings.TrimSpace(ro) != "ro=true" {
		t.Errorf("snapshot 1: %q", ro)
	}
	if !infoRe.MatchString(s.Info[1]) || s.InfoMode[1] != 0o644 || len(s.Info) != 1 {
		t.Errorf("info.xml (mode %v, %d snapshots):\n%s", s.InfoMode[1], len(s.Info), s.Info[1])
	}
	if st, err := os.Stat(filepath.Join(s.Top, "@/.snapshots")); err != nil || st.Mode().Perm() != 0o750 {
		t.Errorf("@/.snapshots: %v %v", st.Mode(), err)
	}
	// The snapshot's mount points are empty; their content is where the
	// system mounts it.
	mps := []string{"var", "home", "root", "opt", "srv", "usr/local", ".snapshots", "boot/efi"}
	switch v {
	case C:
	case E:
		mps = append(mps, "boot/writable", "boot/grub2/arm64-efi")
	default:
		mps = append(mps, "boot/writable", "boot/grub2/i386-pc", "boot/grub2/x86_64-efi")
	}
	for _, mp := range mps {
		ents, err := os.ReadDir(filepath.Join(s.Snapshot(1), mp))
		if err != nil || len(ents) != 0 {
			t.Errorf("mount point %s: %d entries, %v", mp, len(ents), err)
		}
	}
	for p, want := range map[string]string{
		"@/home/alice/.profile": "# alice\n", "@/root/.profile": "# root\n",
		"@/opt/app/run": "#!/bin/sh\n", "@/usr/local/bin/tool": "#!/bin/sh\n",
	} {
		if got, err := s.ReadTop(p); got != want {
			t.Errorf("%s = %q, %v", p, got, err)
		}
	}
	if st, err := os.Stat(filepath.Join(s.Top, "@/root")); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("@/root mode: %v", err)
	}
	if st, err := os.Stat(filepath.Join(s.Top, "@/home/alice")); err != nil || st.Sys().(*syscall.Stat_t).Uid != 1000 {
		t.Errorf("@/home/alice lost its owner: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(s.Var, "lib/foo/data")); string(b) != "foo\n" {
		t.Errorf("/var content not in the /var filesystem: %q %v", b, err)
	}
	if st, err := os.Stat(filepath.Join(s.Var, "lib/YaST2/reconfig_system")); err != nil || !st.Mode().IsRegular() {
		t.Errorf("reconfig_system: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.Var, "lib/misc/transactional-update.state")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("transactional-update.state: %v", err)
	}
	if v == F {
		if _, err := os.Stat(filepath.Join(s.Top, "@/var")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("F has @/var: %v", err)
		}
	} else {
		for _, p := range []string{"@/var", "@/var/lib/foo/data"} {
			if out, err := run("lsattr", "-d", filepath.Join(s.Top, p)); err != nil || !strings.Contains(strings.Fields(out)[0], "C") {
				t.Errorf("%s is not No_COW: %q %v", p, out, err)
			}
		}
	}
	if !nested(v) {
		for _, p := range []string{"lib/overlay/1/etc", "lib/overlay/work-etc"} {
			ents, err := os.ReadDir(filepath.Join(s.Var, p))
			if err != nil || len(ents) != 0 {
				t.Errorf("/var/%s: %d entries, %v", p, len(ents), err)
			}
		}
	}
	// Quotas.
	out, err := run("btrfs", "qgroup", "show", s.Top)
	if v == E {
		if err == nil {
			t.Errorf("E has quotas:\n%s", out)
		}
	} else if err != nil || !regexp.MustCompile(`(?m)^1/0\s`).MatchString(out) {
		t.Errorf("no qgroup 1/0: %v\n%s", err, out)
	}
	// /etc as the booted snapshot sees it.
	etc := func(p string) string {
		got, err := s.ReadEtc(1, p)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
		return got
	}
	if got, want := etc("fstab"), wantFstab(d); got != want {
		t.Errorf("fstab:\n%s\nwant:\n%s", got, want)
	}
	checkEtcComplete(t, stage, mustEtcDir(t, s))
	if _, err := os.Lstat(filepath.Join(mustEtcDir(t, s), "machine-id")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("/etc/machine-id: %v", err)
	}
	qgroup := `QGROUP="1/0"`
	if v == E {
		qgroup = `QGROUP=""`
	}
	conf := etc("snapper/configs/root")
	for _, want := range []string{`SUBVOLUME="/"`, `FSTYPE="btrfs"`, qgroup, `TIMELINE_CREATE="no"`, `NUMBER_LIMIT="2-10"`, `NUMBER_LIMIT_IMPORTANT="4-10"`} {
		if !strings.Contains(conf, want+"\n") {
			t.Errorf("snapper config lacks %s:\n%s", want, conf)
		}
	}
	for _, p := range []string{"sysconfig/snapper", "default/snapper"} {
		if got := etc(p); got != "SNAPPER_CONFIGS=\"root\"\n" {
			t.Errorf("%s = %q", p, got)
		}
	}
	if v == C {
		checkSdboot(t, d, s, etc)
	} else {
		if got := etc("default/grub"); !strings.Contains(got, "SUSE_BTRFS_SNAPSHOT_BOOTING=\"true\"\n") {
			t.Errorf("default/grub:\n%s", got)
		}
		if _, err := os.Stat(filepath.Join(s.Snapshot(1), "boot/grub2/grub.cfg")); err != nil {
			t.Error(err)
		}
		env, err := s.ReadTop("@/boot/writable/grubenv")
		if len(env) != 1024 || !strings.HasPrefix(env, "# GRUB Environment Block\n") {
			t.Errorf("grubenv: %d bytes, %v", len(env), err)
		}
		if _, err := os.Stat(filepath.Join(mustEtcDir(t, s), "kernel/entry-token")); err == nil {
			t.Error("a GRUB variant has /etc/kernel/entry-token")
		}
	}
	if v == E && s.ESPFiles["/config.txt"] != rpiConfig {
		t.Errorf("E's ESP: %v", keys(s.ESPSums))
	}
}

func mustEtcDir(t *testing.T, s *State) string {
	t.Helper()
	d, err := s.EtcDir(1)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// checkEtcComplete: every file of the stage's /etc but machine-id is in
// etc with its content and mode.
func checkEtcComplete(t *testing.T, stage, etc string) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(filepath.Join(stage, "etc"), func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(filepath.Join(stage, "etc"), p)
		if rel == "machine-id" || strings.HasPrefix(rel, "selinux/") {
			return nil
		}
		n++
		want, _ := os.ReadFile(p)
		got, err := os.ReadFile(filepath.Join(etc, rel))
		if err != nil || string(got) != string(want) {
			t.Errorf("/etc/%s = %q, %v; want %q", rel, got, err, want)
			return nil
		}
		st1, _ := os.Stat(p)
		st2, _ := os.Stat(filepath.Join(etc, rel))
		if st1.Mode() != st2.Mode() {
			t.Errorf("/etc/%s mode %v, want %v", rel, st2.Mode(), st1.Mode())
		}
		return nil
	})
	if err != nil || n < 6 {
		t.Errorf("compared %d files of /etc: %v", n, err)
	}
}

func checkSdboot(t *testing.T, d *Disk, s *State, etc func(string) string) {
	t.Helper()
	for p, want := range map[string]string{
		"kernel/entry-token": "opensuse-microos\n", "kernel/cmdline": "console=ttyS0\n",
		"sysconfig/bootloader": "LOADER_TYPE=\"systemd-boot\"\n", "default/grub": "",
	} {
		if got := etc(p); got != want {
			t.Errorf("/etc/%s = %q, want %q", p, got, want)
		}
	}
	if _, err := os.Stat(filepath.Join(s.Snapshot(1), "boot/grub2/grub.cfg")); err == nil {
		t.Error("C has a grub.cfg")
	}
	if s.ESPFiles["/loader/loader.conf"] != LoaderConf || !strings.Contains(LoaderConf, "\ntimeout 5\n") {
		t.Errorf("loader.conf = %q", s.ESPFiles["/loader/loader.conf"])
	}
	dir := "/opensuse-microos/" + DummyKernelVersion + "/"
	var linux, initrd string
	for p, sum := range s.ESPSums {
		switch {
		case strings.HasPrefix(p, dir+"linux-"):
			linux = p
		case strings.HasPrefix(p, dir+"initrd-"):
			initrd = p
		default:
			continue
		}
		if !strings.HasSuffix(p, "-"+sum) {
			t.Errorf("%s holds content with SHA-1 %s", p, sum)
		}
	}
	want := "# Boot Loader Specification type#1 entry\n" +
		"title      Faithful Test OS 1 (Initial Installation)\n" +
		"version    1@" + DummyKernelVersion + "\n" +
		"sort-key   faithful\n" +
		"options    console=ttyS0 root=UUID=" + d.UUID + " rootflags=subvol=@/.snapshots/1/snapshot\n" +
		"linux      " + linux + "\n" +
		"initrd     " + initrd + "\n"
	entry := "/loader/entries/opensuse-microos-" + DummyKernelVersion + "-1.conf"
	if got := s.ESPFiles[entry]; got != want || linux == "" || initrd == "" || d.Entry != entry {
		t.Errorf("entry %s:\n%s\nwant:\n%s\nESP: %v", entry, got, want, keys(s.ESPSums))
	}
}

// checkBooted brings the disk up as the initrd would (default subvolume
// read-only, then the x-initrd.mount lines) and checks what the system
// sees.
func checkBooted(t *testing.T, d *Disk, stage string) {
	t.Helper()
	a, err := d.Attach()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { must(t, a.Detach()) }()
	sysroot := filepath.Join(t.TempDir(), "sysroot")
	umountRoot, err := a.MountRoot(sysroot, true)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { must(t, umountRoot()) }()
	if got := findmnt(t, sysroot, "FSROOT"); got != "/@/.snapshots/1/snapshot" {
		t.Errorf("root mounted %q", got)
	}
	umountInitrd, err := a.MountInitrd(sysroot)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { must(t, umountInitrd()) }()
	varDev, varRoot := a.Root, "/@/var"
	if d.Variant == F {
		varDev, varRoot = a.Var, "/"
	}
	if got := findmnt(t, filepath.Join(sysroot, "var"), "SOURCE"); got != varDev+"["+varRoot+"]" && got != varDev {
		t.Errorf("/var from %q, want %s[%s]", got, varDev, varRoot)
	}
	if got := findmnt(t, filepath.Join(sysroot, "root"), "FSROOT"); got != "/@/root" {
		t.Errorf("/root is %q", got)
	}
	etc := filepath.Join(sysroot, "etc")
	if nested(d.Variant) {
		if got := findmnt(t, etc, "FSROOT"); got != "/@/.snapshots/1/snapshot/etc" {
			t.Errorf("/etc is %q", got)
		}
	} else {
		opts := findmnt(t, etc, "FSTYPE,OPTIONS")
		if !strings.HasPrefix(opts, "overlay ") || !strings.Contains(opts, "upperdir="+sysroot+"/var/lib/overlay/1/etc") {
			t.Errorf("/etc mounted as %q", opts)
		}
	}
	checkEtcComplete(t, stage, etc)
	// /etc is writable, and its writes land where fstab says; the
	// snapshot itself is not.
	probe := filepath.Join(etc, "faithful-probe")
	must(t, os.WriteFile(probe, []byte("x"), 0o644))
	landed := filepath.Join(sysroot, "var/lib/overlay/1/etc/faithful-probe")
	if nested(d.Variant) {
		landed = ""
	}
	if landed != "" {
		if _, err := os.Stat(landed); err != nil {
			t.Errorf("a write to /etc did not land in the upper dir: %v", err)
		}
	}
	must(t, os.Remove(probe))
	if err := os.WriteFile(filepath.Join(sysroot, "faithful-probe"), nil, 0o644); !errors.Is(err, syscall.EROFS) {
		t.Errorf("writing to the root: %v, want EROFS", err)
	}
	if _, err := os.Stat(filepath.Join(sysroot, "var/lib/YaST2/reconfig_system")); err != nil {
		t.Errorf("the booted system has no reconfig_system: %v", err)
	}
	checkSnapper(t, a, sysroot)
}

// checkSnapper has the real snapper read the config and info.xml, when it
// is installed.
func checkSnapper(t *testing.T, a *Attached, sysroot string) {
	t.Helper()
	if _, err := exec.LookPath("snapper"); err != nil {
		t.Log("snapper not installed: not listing the snapshots with it")
		return
	}
	u, err := a.mount(filepath.Join(sysroot, ".snapshots"), "-t", "btrfs", "-o", "subvol=@/.snapshots", a.Root)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { must(t, u()) }()
	out, err := run("snapper", "--no-dbus", "--root", sysroot, "-c", "root", "list")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^1\* +\| single .*\| first root filesystem +\|`).MatchString(out) ||
		strings.Count(out, "| single ") != 2 {
		t.Errorf("snapper list: want snapshot 1 current and default:\n%s", out)
	}
}

func findmnt(t *testing.T, target, cols string) string {
	t.Helper()
	out, err := run("findmnt", "-rn", "-o", cols, "--mountpoint", target)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return lines[len(lines)-1] // the topmost mount
}

// TestBuildFailureCleansUp: a stage Build refuses leaves no loop device,
// mount or image behind.
func TestBuildFailureCleansUp(t *testing.T) {
	busybox := requireRootTier(t)
	stage := makeStage(t, busybox, map[string]string{".snapshots/stray": "x\n"})
	dir := t.TempDir()
	_, err := Build(dir, Options{Variant: A, Stage: stage})
	if err == nil || !strings.Contains(err.Error(), "/.snapshots is not empty") {
		t.Fatalf("Build: %v, want the stage's /.snapshots refused", err)
	}
	if out, _ := run("losetup", "-j", filepath.Join(dir, "faithful-a.img")); strings.TrimSpace(out) != "" {
		t.Errorf("loop device left: %s", out)
	}
	mounts, _ := os.ReadFile("/proc/self/mounts")
	if strings.Contains(string(mounts), dir) {
		t.Errorf("mount left below %s:\n%s", dir, mounts)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left in %s: %v", dir, ents)
	}
}
