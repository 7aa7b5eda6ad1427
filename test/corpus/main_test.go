// Package corpus runs a corpus of realistic inputs end to end through the
// built `provision` binary: cloud-configs, Ignition configs and Combustion
// media of the kind people write after the examples of cloud-init,
// Ignition, Butane, Combustion and fuel-ignition. Each input is validated,
// dry-run against a Debian-shaped tree and (as root) applied to a fresh
// copy of it; its expectation file says whether it must be applied (and
// what must exist afterwards), applied with warnings naming keys, or
// refused with a given message.
package corpus

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provision-dev/provision/test/testbin"
)

var (
	// binary is the provision command built for this run.
	binary string
	// baseTree is the pristine Debian-shaped root every case copies.
	baseTree string
	// setupErr says why the suite cannot run; every case reports it.
	setupErr error
)

func TestMain(m *testing.M) {
	work, err := os.MkdirTemp("", "provision-corpus-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(work, "provision")
	setupErr = testbin.Build(binary)
	if setupErr == nil {
		baseTree = filepath.Join(work, "debian")
		setupErr = buildTree(baseTree)
	}
	code := m.Run()
	os.RemoveAll(work)
	os.Exit(code)
}

// hostFiles are this Debian host's account databases and defaults (the
// start test/accept's tree has) and its os-release (apt sources name the
// release by its codename).
var hostFiles = []string{
	"etc/passwd", "etc/group", "etc/shadow", "etc/gshadow", "etc/login.defs",
	"etc/default/useradd", "etc/subuid", "etc/subgid", "usr/lib/os-release", "etc/os-release",
}

// hostPrograms are copied from the host with the libraries they load, so
// that the scripts of the corpus (Combustion's above all, which call
// useradd, chpasswd and systemctl as on MicroOS) run in the chroot as they
// would on a real system. A program the host lacks is left out; the case
// that needs it then fails, naming it.
var hostPrograms = []string{
	"/usr/bin/bash", "/usr/sbin/useradd", "/usr/sbin/usermod", "/usr/sbin/groupadd", "/usr/sbin/chpasswd",
	"/usr/bin/systemctl",
}

// busyboxApplets are the small tools scripts use, served by busybox (the
// host's is static).
var busyboxApplets = []string{
	"cat", "chmod", "chown", "cp", "echo", "grep", "head", "id", "ln", "ls", "mkdir",
	"mv", "rm", "sed", "tee", "touch", "printf", "true", "false", "test", "[",
	"base64", "gzip", "mount", "umount", "sleep", "hostname", "date", "wc",
}

// buildTree makes a Debian root: the host's account databases, skel and
// zoneinfo; the files a Debian cloud image has that the host lacks (test/
// accept's testdata/debian, read from there); busybox as /bin/sh; real
// bash, shadow tools and systemctl; a few stock units; and a stand-in
// apt-get that logs how it was called.
func buildTree(dst string) error {
	for _, d := range []string{"etc/ssh/sshd_config.d", "etc/sudoers.d", "etc/cloud", "etc/default",
		"etc/systemd/system/multi-user.target.wants", "usr/lib/systemd/system",
		"home", "root", "tmp", "var/tmp", "var/lib", "var/log", "usr/share", "usr/bin", "usr/sbin",
		"bin", "srv", "opt", "etc/issue.d", "etc/NetworkManager/system-connections"} {
		if err := os.MkdirAll(filepath.Join(dst, d), 0o755); err != nil {
			return err
		}
	}
	os.Chmod(filepath.Join(dst, "root"), 0o700)
	os.Chmod(filepath.Join(dst, "tmp"), 0o777|fs.ModeSticky)
	os.Chmod(filepath.Join(dst, "var/tmp"), 0o777|fs.ModeSticky)
	os.Chmod(filepath.Join(dst, "etc/sudoers.d"), 0o750)
	os.Chmod(filepath.Join(dst, "etc/NetworkManager/system-connections"), 0o700)
	for _, f := range hostFiles {
		err := testbin.CopyTree("/"+f, filepath.Join(dst, f))
		if errors.Is(err, fs.ErrPermission) && (f == "etc/shadow" || f == "etc/gshadow") {
			// Not root: the validation and dry-run parts still need
			// the databases, so make them from passwd and group.
			err = synthesizeShadow(dst, f)
		}
		if err != nil {
			return fmt.Errorf("copying the host's /%s: %w", f, err)
		}
	}
	for _, d := range []string{"etc/skel", "usr/share/zoneinfo"} {
		if err := testbin.CopyTree("/"+d, filepath.Join(dst, d)); err != nil {
			return fmt.Errorf("copying the host's /%s: %w", d, err)
		}
	}
	debian := filepath.Join(testbin.RepoRoot(), "test", "accept", "testdata", "debian")
	for name, dest := range map[string]string{
		"sshd_config": "etc/ssh/sshd_config",
		"cloud.cfg":   "etc/cloud/cloud.cfg",
		"sudoers":     "etc/sudoers",
		"hostname":    "etc/hostname",
		"hosts":       "etc/hosts",
		"timezone":    "etc/timezone",
		"locale":      "etc/default/locale",
		"keyboard":    "etc/default/keyboard",
		"motd":        "etc/motd",
	} {
		if err := testbin.CopyTree(filepath.Join(debian, name), filepath.Join(dst, dest)); err != nil {
			return err
		}
	}
	os.Chmod(filepath.Join(dst, "etc/sudoers"), 0o440)
	if err := os.Symlink("/usr/share/zoneinfo/Etc/UTC", filepath.Join(dst, "etc/localtime")); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dst, "etc/machine-id"), nil, 0o444); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dst, "etc/fstab"), []byte("# /etc/fstab: static file system information.\n"), 0o644); err != nil {
		return err
	}
	bb, err := exec.LookPath("busybox")
	if err != nil {
		return fmt.Errorf("busybox is needed for the tree's /bin/sh: %w", err)
	}
	if err := testbin.CopyTree(bb, filepath.Join(dst, "bin/busybox")); err != nil {
		return err
	}
	if err := os.Symlink("busybox", filepath.Join(dst, "bin/sh")); err != nil {
		return err
	}
	for _, a := range busyboxApplets {
		if err := os.Symlink("/bin/busybox", filepath.Join(dst, "usr/bin", a)); err != nil {
			return err
		}
	}
	for _, p := range hostPrograms {
		if err := copyProgram(p, dst); err != nil {
			return err
		}
	}
	if err := os.Symlink("/usr/bin/bash", filepath.Join(dst, "bin/bash")); err != nil {
		return err
	}
	// Debian's cloud images have OpenSSH (host keys are generated only
	// where ssh-keygen is) and systemd-timesyncd.
	for _, p := range []string{"usr/bin/ssh-keygen", "usr/sbin/sshd"} {
		if err := os.WriteFile(filepath.Join(dst, p), []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
			return err
		}
	}
	// Debian's systemd-timesyncd is installed in its cloud images: the
	// daemon (ntp checks for it) and its unit (in stockUnits).
	if err := os.MkdirAll(filepath.Join(dst, "usr/lib/systemd"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dst, "usr/lib/systemd/systemd-timesyncd"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		return err
	}
	for name, text := range stockUnits {
		if err := os.WriteFile(filepath.Join(dst, "usr/lib/systemd/system", name), []byte(text), 0o644); err != nil {
			return err
		}
	}
	// Stand-ins for what needs a package database or a network: each
	// records how it was called, in the chroot, for the expectations.
	for p, text := range map[string]string{
		"usr/bin/apt-get":                 "#!/bin/sh\necho \"$DEBIAN_FRONTEND apt-get $*\" >> /var/tmp/apt-get.log\n",
		"usr/sbin/update-ca-certificates": "#!/bin/sh\necho \"update-ca-certificates $*\" >> /var/tmp/update-ca-certificates.log\n",
	} {
		if err := os.WriteFile(filepath.Join(dst, p), []byte(text), 0o755); err != nil {
			return err
		}
	}
	return nil
}

// synthesizeShadow writes shadow (or gshadow) for the tree's passwd (or
// group) entries, every password locked, for a run that cannot read the
// host's.
func synthesizeShadow(dst, name string) error {
	src, line := "etc/passwd", "%s:*:20000:0:99999:7:::\n"
	if name == "etc/gshadow" {
		src, line = "etc/group", "%s:*::\n"
	}
	b, err := os.ReadFile(filepath.Join(dst, src))
	if err != nil {
		return err
	}
	var out strings.Builder
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if n, _, ok := strings.Cut(l, ":"); ok {
			fmt.Fprintf(&out, line, n)
		}
	}
	return os.WriteFile(filepath.Join(dst, name), []byte(out.String()), 0o640)
}

// stockUnits are units a Debian or MicroOS image ships that configs
// commonly enable, mask or extend.
var stockUnits = map[string]string{
	"ssh.service":                "[Unit]\nDescription=OpenBSD Secure Shell server\n[Service]\nExecStart=/usr/sbin/sshd -D\n[Install]\nWantedBy=multi-user.target\nAlias=sshd.service\n",
	"cron.service":               "[Unit]\nDescription=Regular background program processing daemon\n[Service]\nExecStart=/usr/sbin/cron -f\n[Install]\nWantedBy=multi-user.target\n",
	"podman.socket":              "[Unit]\nDescription=Podman API Socket\n[Socket]\nListenStream=%t/podman/podman.sock\nSocketMode=0660\n[Install]\nWantedBy=sockets.target\n",
	"podman-auto-update.timer":   "[Unit]\nDescription=Podman auto-update timer\n[Timer]\nOnCalendar=daily\nPersistent=true\n[Install]\nWantedBy=timers.target\n",
	"podman-auto-update.service": "[Unit]\nDescription=Podman auto-update service\n[Service]\nType=oneshot\nExecStart=/usr/bin/podman auto-update\n[Install]\nWantedBy=default.target\n",
	"systemd-timesyncd.service":  "[Unit]\nDescription=Network Time Synchronization\n[Service]\nExecStart=/usr/lib/systemd/systemd-timesyncd\n[Install]\nWantedBy=sysinit.target\nAlias=dbus-org.freedesktop.timesync1.service\n",
	"NetworkManager.service":     "[Unit]\nDescription=Network Manager\n[Service]\nExecStart=/usr/sbin/NetworkManager --no-daemon\n[Install]\nWantedBy=multi-user.target\nAlias=dbus-org.freedesktop.NetworkManager.service\n",
	"getty@.service":             "[Unit]\nDescription=Getty on %I\n[Service]\nExecStart=-/sbin/agetty -o '-p -- \\\\u' --noclear - $TERM\n[Install]\nWantedBy=getty.target\nDefaultInstance=tty1\n",
	"apt-daily.timer":            "[Unit]\nDescription=Daily apt download activities\n[Timer]\nOnCalendar=*-*-* 6,18:00\n[Install]\nWantedBy=timers.target\n",
	"apt-daily-upgrade.timer":    "[Unit]\nDescription=Daily apt upgrade and clean activities\n[Timer]\nOnCalendar=*-*-* 6:00\n[Install]\nWantedBy=timers.target\n",
}

// copyProgram copies a host program and the shared libraries ldd says it
// loads to the same paths in the tree.
func copyProgram(p, dst string) error {
	if _, err := os.Stat(p); err != nil {
		return nil // the host lacks it; see hostPrograms
	}
	paths := []string{p}
	out, err := exec.Command("ldd", p).Output()
	if err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			for _, f := range strings.Fields(line) {
				if strings.HasPrefix(f, "/") {
					paths = append(paths, f)
				}
			}
		}
	}
	for _, f := range paths {
		real, err := filepath.EvalSymlinks(f)
		if err != nil {
			return err
		}
		out := filepath.Join(dst, f)
		if _, err := os.Lstat(out); err == nil {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		if err := testbin.CopyTree(real, out); err != nil {
			return fmt.Errorf("copying the host's %s: %w", f, err)
		}
	}
	return nil
}

// newTree returns a fresh copy of the base tree, with overlay (a
// directory whose files are laid over the copy) when it exists: what
// makes the tree another distribution's for one case (zypper instead
// of apt-get, an sshd configuration).
func newTree(t *testing.T, overlay string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "root")
	if err := testbin.CopyTree(baseTree, dst); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(overlay); err == nil {
		if err := testbin.CopyTree(overlay, dst); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", r.code, r.stdout, r.stderr)
}

// provision runs the built binary in a clean environment.
func provision(args ...string) (result, error) {
	cmd := exec.Command(binary, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"}
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		return result{}, fmt.Errorf("running provision: %w", err)
	}
	return result{code: code, stdout: out.String(), stderr: errb.String()}, nil
}
