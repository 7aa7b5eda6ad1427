package provision_test

// Root tier on faithful openSUSE test roots (test/faithful: nested /etc,
// overlay /etc, systemd-boot ESP, Raspberry Pi MBR, /var on its own
// partition): the real `provision run --root` on the default subvolume
// mounted as the initrd mounts it, then the disk read offline as the next
// boot would see it.

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/provision-dev/provision/test/faithful"
)

// faithfulStage is the OS tree installed as snapshot 1: a Debian-like busybox
// system on its first boot (no machine-id), with a stand-in snapper plugin
// that logs every call where the test can read it.
func faithfulStage(t *testing.T) string {
	t.Helper()
	stage := t.TempDir()
	debianTree(t, stage, "")
	os.Remove(filepath.Join(stage, "etc/machine-id"))
	for _, a := range []string{"tee", "date", "ls"} {
		os.Symlink("busybox", filepath.Join(stage, "bin", a))
	}
	plugin := "#!/bin/sh\necho \"$*\" >> /.snapshots/plugin.log\n"
	os.MkdirAll(filepath.Join(stage, "usr/lib/snapper/plugins"), 0o755)
	if err := os.WriteFile(filepath.Join(stage, "usr/lib/snapper/plugins/10-standin"), []byte(plugin), 0o755); err != nil {
		t.Fatal(err)
	}
	return stage
}

// faithfulSeeds: a NoCloud seed (user, key, file, hostname) and a
// Combustion config dir whose script writes into /etc, /var and /root.
func faithfulSeeds(t *testing.T, scriptExit int) (nocloud, combustion string) {
	t.Helper()
	nocloud = t.TempDir()
	os.WriteFile(filepath.Join(nocloud, "meta-data"), []byte("instance-id: iid-faithful\nlocal-hostname: micro1\n"), 0o644)
	os.WriteFile(filepath.Join(nocloud, "user-data"), []byte(`#cloud-config
users:
  - name: alice
    gecos: Alice
    ssh_authorized_keys:
      - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBz0rJQmH9g1qWbqFJXkE1Hj3v0mJ8yqXWlqfC0hT5pG alice@test
write_files:
  - path: /etc/provisioned
    content: "by cloud-config\n"
  - path: /var/lib/by-module
    content: "module\n"
`), 0o644)
	combustion = t.TempDir()
	script := "#!/bin/sh\n# combustion: none\necho combustion > /etc/by-combustion\nmkdir -p /var/lib/comb && echo ok > /var/lib/comb/ok\necho root > /root/by-combustion\nexit " + strconv.Itoa(scriptExit) + "\n"
	os.MkdirAll(filepath.Join(combustion, "combustion"), 0o755)
	os.WriteFile(filepath.Join(combustion, "combustion/script"), []byte(script), 0o755)
	return nocloud, combustion
}

func vfatAvailable() bool {
	b, _ := os.ReadFile("/proc/filesystems")
	if strings.Contains(string(b), "\tvfat\n") {
		return true
	}
	return exec.Command("modprobe", "-q", "vfat").Run() == nil
}

func TestFaithfulRoots(t *testing.T) {
	requireRootTier(t, "mkfs.btrfs", "btrfs", "sfdisk", "mkfs.vfat", "mcopy")
	bin := provisionBinary(t)
	stage := faithfulStage(t)
	for _, v := range faithful.Variants() {
		t.Run(string(v), func(t *testing.T) {
			if v == faithful.C && !vfatAvailable() {
				// The dry run reads the target only; the run itself must
				// mount the ESP.
				faithfulRun(t, bin, stage, v, false, true)
				t.Skip("variant C: this kernel has no vfat driver, so its ESP cannot be mounted here; the VM tier boots C")
			}
			for _, fail := range []bool{false, true} {
				name := "good"
				if fail {
					name = "failing-script"
				}
				t.Run(name, func(t *testing.T) {
					faithfulRun(t, bin, stage, v, fail, false)
				})
			}
		})
	}
}

// faithfulSysroot builds a faithful disk (400 MiB), attaches it and
// mounts its default subvolume read-write as the initrd does; the disk is
// detached when the test ends.
func faithfulSysroot(t *testing.T, o faithful.Options) (*faithful.Disk, *faithful.Attached, string, func() error) {
	t.Helper()
	if o.Size == 0 {
		o.Size = 400 << 20
	}
	d, err := faithful.Build(t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	a, err := d.Attach()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Detach() })
	if a.Var != "" {
		// What udev does in the initrd: register the /var btrfs, so its
		// UUID= in fstab resolves.
		sh(t, "btrfs", "device", "scan", a.Var)
	}
	sysroot := t.TempDir()
	umount, err := a.MountRoot(sysroot, false)
	if err != nil {
		t.Fatal(err)
	}
	return d, a, sysroot, umount
}

// runProvision runs the binary in a mount namespace of its own, like a
// boot: whatever it mounted dies with it.
func runProvision(bin string, args ...string) ([]byte, error) {
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	return cmd.CombinedOutput()
}

// faithfulRun builds variant v, dry-runs and runs provision on it (a
// failing Combustion script when fail), and checks the disk as the next
// boot sees it; dryOnly stops after the dry run.
func faithfulRun(t *testing.T, bin, stage string, v faithful.Variant, fail, dryOnly bool) {
	d, a, sysroot, umount := faithfulSysroot(t, faithful.Options{Variant: v, Stage: stage})
	exit := 0
	if fail {
		exit = 1
	}
	nocloud, comb := faithfulSeeds(t, exit)
	dry := exec.Command(bin, "--dry-run", "--root", sysroot, "--source", nocloud)
	dryOut, _ := dry.CombinedOutput()
	wantModel := map[faithful.Variant]string{faithful.A: "nested btrfs subvolume", faithful.C: "nested btrfs subvolume", faithful.E: "nested btrfs subvolume",
		faithful.B: "overlayfs", faithful.D: "overlayfs", faithful.F: "overlayfs"}[v]
	wantBoot := "# target: boot: the btrfs default subvolume decides"
	if v == faithful.C {
		wantBoot = "# target: boot: systemd-boot: entries on /boot/efi (UUID=" + d.ESPUUID + ")"
	}
	if !strings.Contains(string(dryOut), "# target: /etc: "+wantModel) || !strings.Contains(string(dryOut), wantBoot) || !strings.Contains(string(dryOut), "snapper plugins: 10-standin") {
		t.Errorf("dry run does not name the /etc model %q, the boot handling %q and the plugins:\n%s", wantModel, wantBoot, dryOut)
	}
	if dryOnly {
		umount()
		return
	}
	out, runErr := runProvision(bin, "run", "--root", sysroot, "--source", nocloud, "--source", comb, "--report", filepath.Join(t.TempDir(), "r.json"))
	if err := umount(); err != nil {
		t.Fatal(err)
	}
	s, err := a.Inspect()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if fail {
		if runErr == nil {
			t.Fatalf("a failing script committed:\n%s", out)
		}
		if s.Default != "@/.snapshots/1/snapshot" {
			t.Errorf("default %s after a failed run", s.Default)
		}
		for _, sv := range s.Subvolumes {
			if strings.Contains(sv, "/.snapshots/2/") || strings.Contains(sv, ".provision") {
				t.Errorf("left behind: subvolume %s", sv)
			}
		}
		if _, err := os.Stat(filepath.Join(s.Top, "@/.snapshots/2")); err == nil {
			t.Errorf("snapper directory 2 left behind")
		}
		if _, err := os.Stat(filepath.Join(s.Var, "lib/overlay/2")); err == nil {
			t.Errorf("overlay layer 2 left behind in /var")
		}
		if _, err := os.Stat(filepath.Join(s.Var, "lib/YaST2/reconfig_system")); err != nil {
			t.Errorf("reconfig_system removed by a failed run: %v", err)
		}
		if _, err := os.Stat(filepath.Join(s.Var, "lib/by-module")); err == nil {
			t.Errorf("a file the run wrote into /var survived the rollback")
		}
		_, err := os.Stat(filepath.Join(s.Var, "lib/comb"))
		switch {
		case v == faithful.F && err == nil:
			// F's /var is a filesystem of its own: its top level cannot be
			// snapshotted and swapped, so only module writes there are
			// journaled; what a script writes there directly stays (the
			// run says so on the console).
			t.Logf("F: the failed script's direct /var write stays (a separate /var filesystem is outside the transaction)")
		case err == nil:
			t.Errorf("the failed script's /var writes survived")
		}
		return
	}
	if runErr != nil {
		t.Fatalf("run: %v\n%s", runErr, out)
	}
	if s.Default != "@/.snapshots/2/snapshot" {
		t.Fatalf("default %s, want @/.snapshots/2/snapshot\n%s", s.Default, out)
	}
	for _, f := range []struct{ path, want string }{
		{"passwd", `(?m)^alice:x:\d+:\d+:Alice:/home/alice:`},
		{"shadow", `(?m)^root:`},
		{"fstab", `(?m)^UUID=`},
		{"provisioned", `^by cloud-config\n$`},
		{"by-combustion", `^combustion\n$`},
		{"hostname", `^micro1\n$`},
	} {
		got, err := s.ReadEtc(2, f.path)
		if err != nil || !regexp.MustCompile(f.want).MatchString(got) {
			t.Errorf("/etc/%s as snapshot 2 boots it: %q (%v), want %s", f.path, got, err, f.want)
		}
	}
	if _, err := s.ReadEtc(2, "machine-id"); err == nil {
		t.Errorf("/etc/machine-id created: the next boot would not be a first boot")
	}
	if _, err := s.ReadEtc(1, "provisioned"); err == nil {
		t.Errorf("snapshot 1's /etc changed")
	}
	if info := s.Info[2]; strings.Contains(info, "in-progress") || !strings.Contains(info, "<cleanup>number</cleanup>") || s.InfoMode[2] != 0o644 {
		t.Errorf("info.xml of 2 (mode %v):\n%s", s.InfoMode[2], info)
	}
	if !s.ReadOnly["@/.snapshots/2/snapshot"] {
		t.Errorf("snapshot 2 is not read-only like snapshot 1")
	}
	nested := v == faithful.A || v == faithful.C || v == faithful.E
	hasEtcSubvol := false
	for _, sv := range s.Subvolumes {
		hasEtcSubvol = hasEtcSubvol || sv == "@/.snapshots/2/snapshot/etc"
	}
	if nested != hasEtcSubvol {
		t.Errorf("nested /etc subvolume in snapshot 2: %v, want %v: %v", hasEtcSubvol, nested, s.Subvolumes)
	}
	if nested && s.ReadOnly["@/.snapshots/2/snapshot/etc"] {
		t.Errorf("snapshot 2's nested /etc is read-only")
	}
	if !nested {
		fst, _ := s.ReadTop("@/.snapshots/2/snapshot/etc/fstab")
		if !strings.Contains(fst, "lowerdir=/sysroot/var/lib/overlay/1/etc:/sysroot/etc,upperdir=/sysroot/var/lib/overlay/2/etc,workdir=/sysroot/var/lib/overlay/2/work-etc") {
			t.Errorf("snapshot 2's fstab does not name its own upper layer:\n%s", fst)
		}
		if b, err := os.ReadFile(filepath.Join(s.Var, "lib/overlay/2/etc/passwd")); err != nil || !strings.Contains(string(b), "alice") {
			t.Errorf("the user went elsewhere than snapshot 2's upper layer: %v", err)
		}
	}
	for _, f := range []string{"lib/comb/ok", "lib/provision/instance-id", "lib/by-module"} {
		if _, err := os.Stat(filepath.Join(s.Var, f)); err != nil {
			t.Errorf("/var/%s: %v", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(s.Var, "lib/YaST2/reconfig_system")); err == nil {
		t.Errorf("/var/lib/YaST2/reconfig_system still there: jeos-firstboot would start its wizard")
	}
	if b, err := os.ReadFile(filepath.Join(s.Top, "@/root/by-combustion")); err != nil || string(b) != "root\n" {
		t.Errorf("/root/by-combustion in @/root: %q %v", b, err)
	}
	// Nothing hidden under mount points of the new snapshot.
	for _, mp := range []string{"var", "home", "root", "opt", "srv", "usr/local"} {
		ents, _ := os.ReadDir(filepath.Join(s.Top, "@/.snapshots/2/snapshot", mp))
		if len(ents) > 0 {
			t.Errorf("snapshot 2's /%s mount point holds %d entries the real mount hides", mp, len(ents))
		}
	}
	log, _ := os.ReadFile(filepath.Join(s.Top, "@/.snapshots/plugin.log"))
	wantLog := "create-snapshot-pre / btrfs 2\ncreate-snapshot / btrfs 2\ncreate-snapshot-post / btrfs 2\n" +
		"set-read-only-pre / btrfs 2\nset-read-only-post / btrfs 2\n" +
		"set-default-snapshot-pre / btrfs 2\nset-default-snapshot / btrfs 2\nset-default-snapshot-post / btrfs 2\n" +
		"modify-snapshot-pre / btrfs 2\nmodify-snapshot / btrfs 2\nmodify-snapshot-post / btrfs 2\n"
	if string(log) != wantLog {
		t.Errorf("snapper plugin calls:\n%s\nwant:\n%s", log, wantLog)
	}
}

// TestFaithfulSELinux runs the same seeds on variant A with Debian's
// reference policy installed as the target's "targeted" policy (plus a
// file_contexts.local override and a .subs equivalence), enforcing, and
// checks every path the run wrote — by modules and by the Combustion
// script — against the real matchpathcon and setfiles.
func TestFaithfulSELinux(t *testing.T) {
	requireRootTier(t, "mkfs.btrfs", "btrfs", "sfdisk", "mkfs.vfat", "mcopy", "matchpathcon", "setfiles")
	if _, err := os.Stat("/etc/selinux/default/contexts/files/file_contexts"); err != nil {
		t.Skip("SELinux reference: Debian's selinux-policy-default is not installed (/etc/selinux/default)")
	}
	bin := provisionBinary(t)
	for _, c := range []struct {
		name      string
		v         faithful.Variant
		machinery bool
	}{{"A", faithful.A, false}, {"D-overlay-permissive", faithful.D, false}, {"A-with-initrd-relabel", faithful.A, true}} {
		t.Run(c.name, func(t *testing.T) { faithfulSELinux(t, bin, c.v, c.machinery) })
	}
}

// faithfulSELinux is one TestFaithfulSELinux case; with machinery the
// target has openSUSE's initrd relabel module, so what the script wrote is
// left to it (/etc/selinux/.autorelabel) instead of being labelled.
func faithfulSELinux(t *testing.T, bin string, v faithful.Variant, machinery bool) {
	stage := faithfulStage(t)
	if machinery {
		os.MkdirAll(filepath.Join(stage, "usr/lib/dracut/modules.d/98selinux-microos"), 0o755)
	}
	os.MkdirAll(filepath.Join(stage, "etc/selinux"), 0o755)
	sh(t, "cp", "-a", "/etc/selinux/default", filepath.Join(stage, "etc/selinux/targeted"))
	// The policy store's home template (what genhomedircon fills in), for
	// a user whose home lies outside /home.
	tpl := "/var/lib/selinux/default/active/homedir_template"
	homeTemplate := false
	if _, err := os.Stat(tpl); err == nil {
		os.MkdirAll(filepath.Join(stage, "var/lib/selinux/targeted/active"), 0o755)
		sh(t, "cp", "-a", tpl, filepath.Join(stage, "var/lib/selinux/targeted/active/"))
		os.WriteFile(filepath.Join(stage, "etc/shells"), []byte("/bin/sh\n"), 0o644)
		homeTemplate = true
	}
	files := filepath.Join(stage, "etc/selinux/targeted/contexts/files")
	os.WriteFile(filepath.Join(files, "file_contexts.local"), []byte("/etc/provisioned\t--\tsystem_u:object_r:shadow_t:s0\n"), 0o644)
	os.WriteFile(filepath.Join(files, "file_contexts.subs"), []byte("/srv/web /var/www\n"), 0o644)
	_, a, sysroot, umount := faithfulSysroot(t, faithful.Options{Variant: v, Stage: stage, SELinux: "enforcing"})
	nocloud, comb := faithfulSeeds(t, 0)
	ud, _ := os.ReadFile(filepath.Join(nocloud, "user-data"))
	ud = append(ud, []byte("  - path: /srv/web/index.html\n    content: hello\n")...)
	ud = []byte(strings.Replace(string(ud), "users:\n", "users:\n  - name: dave\n    homedir: /data/homes/dave\n    shell: /bin/sh\n"+
		"    ssh_authorized_keys:\n      - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBz0rJQmH9g1qWbqFJXkE1Hj3v0mJ8yqXWlqfC0hT5pG dave@test\n", 1))
	os.WriteFile(filepath.Join(nocloud, "user-data"), ud, 0o644)
	dry, _ := exec.Command(bin, "--dry-run", "--root", sysroot, "--source", nocloud, "--source", comb).CombinedOutput()
	mode := "enforcing"
	if v == faithful.D {
		mode = "permissive" // Leap Micro 5.2/5.3
	}
	if !regexp.MustCompile(`# target: selinux: policy targeted \(` + mode + `, [^)]*\): the \d+ path\(s\) the plan writes`).Match(dry) {
		t.Errorf("dry run does not name the policy and the count:\n%s", dry)
	}
	out, err := runProvision(bin, "run", "--root", sysroot, "--source", nocloud, "--source", comb, "--report", filepath.Join(t.TempDir(), "r.json"))
	umount()
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "[ OK ] selinux: ") {
		t.Errorf("no selinux step on the console:\n%s", out)
	}
	// Mount as the booted system will: the new default, its x-initrd
	// mounts (/var, /root, the nested /etc), and /home, /srv.
	if umount, err = a.MountRoot(sysroot, true); err != nil {
		t.Fatal(err)
	}
	defer umount()
	undo, err := a.MountInitrd(sysroot)
	if err != nil {
		t.Fatal(err)
	}
	defer undo()
	for _, sub := range []string{"home", "srv", ".snapshots"} {
		dst := filepath.Join(sysroot, sub)
		sh(t, "mount", "-o", "ro,subvol=@/"+sub, a.Root, dst)
		defer exec.Command("umount", dst).Run()
	}
	fc := filepath.Join(sysroot, "etc/selinux/targeted/contexts/files/file_contexts")
	written := map[string]string{ // path -> matchpathcon -m type
		"/etc/passwd": "file", "/etc/shadow": "file", "/etc/group": "file", "/etc/gshadow": "file",
		"/etc/provisioned": "file", "/etc/hostname": "file", "/etc/by-combustion": "file",
		"/home/alice": "dir", "/home/alice/.ssh": "dir", "/home/alice/.ssh/authorized_keys": "file",
		"/var/lib/by-module": "file", "/var/lib/comb": "dir", "/var/lib/comb/ok": "file",
		"/root/by-combustion": "file", "/var/lib/provision/instance-id": "file",
		"/var/log/provision/report.json": "file", "/srv/web/index.html": "file",
		// The new root itself (its ctime changed) and snapper's files.
		"/": "dir", "/.snapshots/2": "dir", "/.snapshots/2/info.xml": "file",
	}
	var regular []string
	if machinery {
		if _, err := os.Stat(filepath.Join(sysroot, "etc/selinux/.autorelabel")); err != nil {
			t.Errorf("scripts ran on a target with the initrd relabel, but /etc/selinux/.autorelabel is missing: %v", err)
		}
		// The initrd relabels what the script wrote; the modules' paths
		// are labelled all the same.
		for _, p := range []string{"/", "/etc/by-combustion", "/var/lib/comb", "/var/lib/comb/ok", "/root/by-combustion"} {
			delete(written, p)
		}
	}
	for p, typ := range written {
		want := strings.TrimSpace(sh(t, "matchpathcon", "-n", "-f", fc, "-m", typ, p))
		got := make([]byte, 256)
		n, err := unix.Lgetxattr(filepath.Join(sysroot, p), "security.selinux", got)
		if err != nil {
			t.Errorf("%s: no label (%v)", p, err)
			continue
		}
		if g := strings.TrimRight(string(got[:n]), "\x00"); g != want {
			t.Errorf("%s labelled %q, matchpathcon says %q", p, g, want)
		}
		if typ == "file" {
			regular = append(regular, filepath.Join(sysroot, p))
		}
	}
	// setfiles, over the regular files, must find nothing to change.
	args := append([]string{"-n", "-v", "-r", sysroot, fc}, regular...)
	if o, err := exec.Command("setfiles", args...).CombinedOutput(); err != nil || strings.Contains(string(o), "elabel") {
		t.Errorf("setfiles -n -v: %v\n%s", err, o)
	}
	if homeTemplate {
		// dave's home gets what /home homes get: genhomedircon's rules,
		// written into the target's .homedirs for its own restorecon.
		hd, _ := os.ReadFile(fc + ".homedirs")
		if !strings.Contains(string(hd), "/data/homes") {
			t.Errorf("file_contexts.homedirs has no rules for /data/homes")
		}
		for p, like := range map[string]string{"/data/homes/dave/.ssh/authorized_keys": "/home/dave/.ssh/authorized_keys", "/data/homes/dave": "/home/dave"} {
			typ := "file"
			if !strings.HasSuffix(p, "keys") {
				typ = "dir"
			}
			want := strings.TrimSpace(sh(t, "matchpathcon", "-n", "-f", fc, "-m", typ, like))
			got := make([]byte, 256)
			n, err := unix.Lgetxattr(filepath.Join(sysroot, p), "security.selinux", got)
			if err != nil || strings.TrimRight(string(got[:n]), "\x00") != want {
				t.Errorf("%s labelled %q (%v), want %q like %s", p, got[:max(n, 0)], err, want, like)
			}
		}
	}
	if got := strings.TrimSpace(sh(t, "matchpathcon", "-n", "-f", fc, "/etc/provisioned")); got != "system_u:object_r:shadow_t:s0" {
		t.Errorf("the reference ignored file_contexts.local: %s", got)
	}
}

// TestFaithfulFailingPlugin: a target plugin that fails on
// create-snapshot-post fails the run as a failed `snapper create` fails
// transactional-update's, and nothing is left (its delete events run).
func TestFaithfulFailingPlugin(t *testing.T) {
	requireRootTier(t, "mkfs.btrfs", "btrfs", "sfdisk", "mkfs.vfat", "mcopy")
	bin := provisionBinary(t)
	stage := faithfulStage(t)
	plugin := "#!/bin/sh\necho \"$*\" >> /.snapshots/plugin.log\n[ \"$1\" != create-snapshot-post ]\n"
	if err := os.WriteFile(filepath.Join(stage, "usr/lib/snapper/plugins/20-fails"), []byte(plugin), 0o755); err != nil {
		t.Fatal(err)
	}
	_, a, sysroot, umount := faithfulSysroot(t, faithful.Options{Variant: faithful.A, Stage: stage})
	nocloud, _ := faithfulSeeds(t, 0)
	out, runErr := runProvision(bin, "run", "--root", sysroot, "--source", nocloud, "--report", filepath.Join(t.TempDir(), "r.json"))
	umount()
	if runErr == nil || !strings.Contains(string(out), "[FAILED] snapper plugin: /usr/lib/snapper/plugins/20-fails create-snapshot-post / btrfs 2: exit 1") {
		t.Fatalf("a failing plugin did not fail the run (%v):\n%s", runErr, out)
	}
	s, err := a.Inspect()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Default != "@/.snapshots/1/snapshot" {
		t.Errorf("default %s", s.Default)
	}
	for _, sv := range s.Subvolumes {
		if strings.Contains(sv, ".snapshots/2/") {
			t.Errorf("left behind: %s", sv)
		}
	}
	log, _ := os.ReadFile(filepath.Join(s.Top, "@/.snapshots/plugin.log"))
	if !strings.Contains(string(log), "delete-snapshot-pre / btrfs 2\n") || !strings.Contains(string(log), "delete-snapshot-post / btrfs 2\n") {
		t.Errorf("the plugins were not told about the deletion:\n%s", log)
	}
}
