// Package accept holds the acceptance tests of the engine end to end: the
// built `provision` binary is run against copies of a Debian root tree made
// from this host, and the result is compared with what a cloud-init user
// expects (cc_users_groups, cc_write_files, cc_set_passwords, cc_ssh,
// cc_set_hostname, cc_update_etc_hosts, cc_timezone, cc_locale,
// cc_keyboard), or with our documented behaviour where SPEC differs.
package accept

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/provision-dev/provision/test/testbin"
)

var (
	// binary is the provision command built for this test run.
	binary string
	// debianTree is the pristine Debian root every test copies.
	debianTree string
	// setupErr explains why the suite cannot run (reported by every test).
	setupErr error
)

func TestMain(m *testing.M) {
	work, err := os.MkdirTemp("", "provision-accept-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(work, "provision")
	setupErr = testbin.Build(binary)
	if setupErr == nil {
		debianTree = filepath.Join(work, "debian")
		setupErr = buildDebianTree(debianTree)
	}
	code := m.Run()
	os.RemoveAll(work)
	os.Exit(code)
}

func needSetup(t *testing.T) {
	t.Helper()
	if setupErr != nil {
		t.Fatalf("suite setup: %v", setupErr)
	}
}

// hostFiles are copied from this Debian host into the tree when present.
var hostFiles = []string{
	"etc/passwd", "etc/group", "etc/shadow", "etc/gshadow", "etc/login.defs",
	"etc/default/useradd", "etc/subuid", "etc/subgid",
}

// buildDebianTree makes a Debian root from this host (Debian bookworm): its
// account databases and defaults, skel, zoneinfo, plus the files a Debian
// cloud image has that this host lacks (testdata/debian), and busybox as
// /bin/sh so scripts can run in the chroot.
func buildDebianTree(dst string) error {
	for _, d := range []string{"etc/ssh/sshd_config.d", "etc/sudoers.d", "etc/cloud", "etc/default",
		"home", "root", "tmp", "var/tmp", "var/lib", "var/log", "usr/share", "bin", "srv"} {
		if err := os.MkdirAll(filepath.Join(dst, d), 0o755); err != nil {
			return err
		}
	}
	os.Chmod(filepath.Join(dst, "root"), 0o700)
	os.Chmod(filepath.Join(dst, "tmp"), 0o777|fs.ModeSticky)
	os.Chmod(filepath.Join(dst, "var/tmp"), 0o777|fs.ModeSticky)
	os.Chmod(filepath.Join(dst, "etc/sudoers.d"), 0o750)
	for _, f := range hostFiles {
		if err := testbin.CopyTree("/"+f, filepath.Join(dst, f)); err != nil {
			return fmt.Errorf("copying the host's /%s: %w", f, err)
		}
	}
	for _, d := range []string{"etc/skel", "usr/share/zoneinfo"} {
		if err := testbin.CopyTree("/"+d, filepath.Join(dst, d)); err != nil {
			return fmt.Errorf("copying the host's /%s: %w", d, err)
		}
	}
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
		if err := testbin.CopyTree(filepath.Join("testdata/debian", name), filepath.Join(dst, dest)); err != nil {
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
	if bb, err := exec.LookPath("busybox"); err == nil {
		if err := testbin.CopyTree(bb, filepath.Join(dst, "bin/sh")); err != nil {
			return err
		}
		os.Chmod(filepath.Join(dst, "bin/sh"), 0o755)
	}
	// A stand-in apt-get (the tree has no dpkg database to install into):
	// it records how the packages module called it, in the chroot, and
	// "installs" systemd-timesyncd (its daemon and Debian's unit) so ntp
	// can configure the client it had added to the install.
	aptGet := "#!/bin/sh\necho \"$DEBIAN_FRONTEND apt-get $*\" >> /var/tmp/apt-get.log\n" +
		"for a in \"$@\"; do if [ \"$a\" = systemd-timesyncd ]; then\n" +
		"mkdir -p /usr/lib/systemd/system && : > /usr/lib/systemd/systemd-timesyncd &&\n" +
		"printf '[Unit]\\nDescription=Network Time Synchronization\\n[Service]\\nExecStart=/usr/lib/systemd/systemd-timesyncd\\n[Install]\\nWantedBy=sysinit.target\\nAlias=dbus-org.freedesktop.timesync1.service\\n' > /usr/lib/systemd/system/systemd-timesyncd.service || exit 100\n" +
		"fi; done\n"
	if err := os.MkdirAll(filepath.Join(dst, "usr/bin"), 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dst, "usr/bin/apt-get"), []byte(aptGet), 0o755)
}

// newTree returns a fresh copy of the Debian tree.
func newTree(t *testing.T) string {
	t.Helper()
	needSetup(t)
	dst := filepath.Join(t.TempDir(), "root")
	if err := testbin.CopyTree(debianTree, dst); err != nil {
		t.Fatal(err)
	}
	return dst
}

// writeSeed makes a NoCloud seed directory.
func writeSeed(t *testing.T, userData, metaData string) string {
	t.Helper()
	d := t.TempDir()
	if err := os.WriteFile(filepath.Join(d, "user-data"), []byte(userData), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "meta-data"), []byte(metaData), 0o644); err != nil {
		t.Fatal(err)
	}
	return d
}

type result struct {
	code           int
	stdout, stderr string
}

// provision runs the built binary.
func provision(t *testing.T, args ...string) result {
	t.Helper()
	needSetup(t)
	cmd := exec.Command(binary, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	// A clean environment: nothing of the test runner leaks into the run.
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"}
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running provision: %v", err)
	}
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// fingerprint describes every path under root: type, permission bits,
// owner, modification time, content hash and link target. Two equal
// fingerprints mean the tree was not touched at all.
func fingerprint(t *testing.T, root string) map[string]string {
	t.Helper()
	state := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := info.Sys().(*syscall.Stat_t)
		desc := fmt.Sprintf("%v %d:%d mtime=%d", info.Mode(), st.Uid, st.Gid, info.ModTime().UnixNano())
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			desc += " -> " + l
		case info.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" sha256=%x", sha256.Sum256(b))
		}
		state[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return state
}

// db is a colon-separated account database of the tree (passwd, group,
// shadow, gshadow), by name.
type db map[string][]string

func readDB(t *testing.T, root, name string) db {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "etc", name))
	if err != nil {
		t.Fatal(err)
	}
	out := db{}
	for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		f := strings.Split(line, ":")
		out[f[0]] = f
	}
	return out
}

// uid and gid resolve names against the TREE's databases, never the host's.
func uid(t *testing.T, root, user string) int {
	t.Helper()
	e, ok := readDB(t, root, "passwd")[user]
	if !ok {
		t.Fatalf("no user %s in the tree", user)
	}
	n, _ := strconv.Atoi(e[2])
	return n
}

func gid(t *testing.T, root, group string) int {
	t.Helper()
	e, ok := readDB(t, root, "group")[group]
	if !ok {
		t.Fatalf("no group %s in the tree", group)
	}
	n, _ := strconv.Atoi(e[2])
	return n
}

// checkFile asserts a regular file's mode, owner and (when want != nil)
// content.
func checkFile(t *testing.T, root, p string, mode fs.FileMode, owner, group string, want *string) {
	t.Helper()
	info, err := os.Lstat(filepath.Join(root, p))
	if err != nil {
		t.Errorf("%s: %v", p, err)
		return
	}
	checkMeta(t, root, p, info, mode, owner, group)
	if !info.Mode().IsRegular() {
		t.Errorf("%s: not a regular file: %v", p, info.Mode())
		return
	}
	if want != nil {
		b, _ := os.ReadFile(filepath.Join(root, p))
		if string(b) != *want {
			t.Errorf("%s content:\n%q\nwant\n%q", p, b, *want)
		}
	}
}

func checkDir(t *testing.T, root, p string, mode fs.FileMode, owner, group string) {
	t.Helper()
	info, err := os.Lstat(filepath.Join(root, p))
	if err != nil {
		t.Errorf("%s: %v", p, err)
		return
	}
	if !info.IsDir() {
		t.Errorf("%s: not a directory: %v", p, info.Mode())
	}
	checkMeta(t, root, p, info, mode, owner, group)
}

func checkMeta(t *testing.T, root, p string, info fs.FileInfo, mode fs.FileMode, owner, group string) {
	t.Helper()
	perm := info.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
	if perm != mode {
		t.Errorf("%s: mode %v, want %v", p, perm, mode)
	}
	if os.Geteuid() != 0 {
		return // ownership is only kept when we are root
	}
	st := info.Sys().(*syscall.Stat_t)
	if wu, wg := uid(t, root, owner), gid(t, root, group); int(st.Uid) != wu || int(st.Gid) != wg {
		t.Errorf("%s: owner %d:%d, want %s:%s (%d:%d in the tree)", p, st.Uid, st.Gid, owner, group, wu, wg)
	}
}

func ptr(s string) *string { return &s }

func readTree(t *testing.T, root, p string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, p))
	if err != nil {
		t.Errorf("%v", err)
	}
	return string(b)
}
