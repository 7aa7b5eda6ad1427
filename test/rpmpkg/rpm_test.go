// Package rpmpkg tests the RPM that `make rpm` builds from dist/provision.spec:
// what it contains and declares, and that the real rpm installs it into a
// root and removes it again with its scriptlets running.
package rpmpkg

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

func run(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// The files every build of the package must ship.
var wantFiles = []string{
	"/usr/bin/provision",
	"/usr/lib/dracut/modules.d/50provision/module-setup.sh",
	"/usr/lib/dracut/modules.d/50provision/provision-initrd.sh",
	"/usr/lib/dracut/modules.d/50provision/provision.service",
	"/usr/lib/dracut/modules.d/50provision/combustion-skip.conf",
	"/usr/share/bash-completion/completions/provision",
	"/usr/share/zsh/site-functions/_provision",
	"/usr/share/fish/vendor_completions.d/provision.fish",
	"/usr/share/provision/cloud-config.schema.json",
}

func TestMakeRPM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the whole RPM: skipped with -short")
	}
	for _, tool := range []string{"rpmbuild", "rpm", "git", "make", "tar"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (apt-get install rpm git make tar)", tool)
		}
	}
	root := repoRoot(t)
	if _, err := os.Stat(filepath.Join(root, ".git")); err != nil {
		t.Skip("make rpm packs a git checkout; this tree is not one")
	}
	rpmdir := t.TempDir()
	run(t, root, "make", "rpm", "RPMDIR="+rpmdir)
	rpms, _ := filepath.Glob(filepath.Join(rpmdir, "RPMS", "*", "provision-*.rpm"))
	if len(rpms) != 1 {
		t.Fatalf("make rpm built %v, want one binary RPM", rpms)
	}
	if srpms, _ := filepath.Glob(filepath.Join(rpmdir, "SRPMS", "provision-*.src.rpm")); len(srpms) != 1 {
		t.Errorf("no source RPM: %v", srpms)
	}
	pkg := rpms[0]

	// What rpm -qlp shows: the binary, the dracut module and its unit,
	// the man pages and the completions.
	list := run(t, "", "rpm", "-qlp", pkg)
	for _, f := range wantFiles {
		if !containsLine(list, f) {
			t.Errorf("rpm -qlp lacks %s:\n%s", f, list)
		}
	}
	for _, man := range []string{"/usr/share/man/man7/provision.7", "/usr/share/man/man8/provision.8"} {
		if !strings.Contains(list, man) {
			t.Errorf("rpm -qlp lacks the man page %s*:\n%s", man, list)
		}
	}
	if reqs := run(t, "", "rpm", "-qp", "--requires", pkg); !containsLine(reqs, "dracut") {
		t.Errorf("the package does not require dracut:\n%s", reqs)
	}
	scripts := run(t, "", "rpm", "-qp", "--scripts", pkg)
	for _, s := range []string{"postinstall", "posttrans", "postuninstall", "regenerate-initrd"} {
		if !strings.Contains(scripts, s) {
			t.Errorf("scriptlets lack %q (the initrd must be rebuilt):\n%s", s, scripts)
		}
	}

	// Installed by the real rpm into a root with a shell for the
	// scriptlets; then removed again.
	if os.Geteuid() != 0 {
		t.Skip("installing with rpm --root needs root (chroot for the scriptlets)")
	}
	target := t.TempDir()
	for _, d := range []string{"usr/bin", "var/lib/rpm", "run", "tmp"} {
		if err := os.MkdirAll(filepath.Join(target, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("needs /bin/busybox (busybox-static) as the test root's shell")
	}
	os.Symlink("usr/bin", filepath.Join(target, "bin"))
	run(t, "", "cp", "/bin/busybox", filepath.Join(target, "usr/bin/busybox"))
	for _, a := range []string{"sh", "mkdir", "touch", "rm", "ls", "["} {
		os.Symlink("busybox", filepath.Join(target, "usr/bin", a))
	}
	rpmArgs := []string{"--root", target, "--dbpath", "/var/lib/rpm"}
	out := run(t, "", "rpm", append(rpmArgs, "-i", "--nodeps", pkg)...)
	if strings.Contains(out, "scriptlet failed") {
		t.Errorf("a scriptlet failed:\n%s", out)
	}
	for _, f := range wantFiles {
		if _, err := os.Stat(filepath.Join(target, f)); err != nil {
			t.Errorf("installed root lacks %s: %v", f, err)
		}
	}
	// The dracut module's check(): the binary it requires is where it
	// looks, and runs.
	setup, _ := os.ReadFile(filepath.Join(target, "usr/lib/dracut/modules.d/50provision/module-setup.sh"))
	if !strings.Contains(string(setup), "require_binaries /usr/bin/provision") {
		t.Errorf("module-setup.sh does not require /usr/bin/provision")
	}
	if v, err := exec.Command(filepath.Join(target, "usr/bin/provision"), "version").CombinedOutput(); err != nil || !strings.Contains(string(v), "provision") {
		t.Errorf("installed binary: %s (%v)", v, err)
	}
	if q := run(t, "", "rpm", append(rpmArgs, "-q", "provision")...); !strings.HasPrefix(q, "provision-") {
		t.Errorf("rpm -q provision: %s", q)
	}
	// %post asked for an initrd rebuild; %posttrans found no kernel in
	// this root and left it at that, without failing.
	out = run(t, "", "rpm", append(rpmArgs, "-e", "provision")...)
	if strings.Contains(out, "scriptlet failed") {
		t.Errorf("a removal scriptlet failed:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(target, "usr/bin/provision")); err == nil {
		t.Errorf("rpm -e left /usr/bin/provision")
	}
}

func containsLine(text, line string) bool {
	for _, l := range strings.Split(text, "\n") {
		if strings.TrimSpace(l) == line {
			return true
		}
	}
	return false
}
