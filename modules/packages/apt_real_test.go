package packages

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/provision/chroot"
)

// TestRealApt runs the module against the real apt-get and dpkg, chrooted
// (through the engine's own chroot package) into a small tree made of the
// host's apt, dpkg and their libraries plus a static busybox as /bin/sh,
// with a flat file: repository built by dpkg-deb and dpkg-scanpackages.
// The repository has one package whose postinst works and one whose
// postinst exits 1; the latter must fail the step with apt-get's 100 and
// the origin of its packages entry.
func TestRealApt(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: chroot and mounts")
	}
	for _, p := range []string{"/usr/bin/apt-get", "/usr/bin/dpkg", "/usr/bin/dpkg-deb", "/usr/bin/dpkg-scanpackages", "/usr/sbin/ldconfig", "/usr/sbin/start-stop-daemon", "/usr/lib/apt/methods/file", "/usr/bin/busybox"} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("needs %s on the host (apt-get install apt dpkg-dev busybox-static): %v", p, err)
		}
	}
	if !staticELF("/usr/bin/busybox") {
		t.Skip("needs a static /usr/bin/busybox (busybox-static) for the chroot's /bin/sh")
	}
	if _, err := exec.LookPath("ldd"); err != nil {
		t.Skip("needs ldd to find the libraries apt and dpkg use")
	}

	dir := t.TempDir()
	buildAptTree(t, dir)
	buildRepo(t, filepath.Join(dir, "srv/repo"))

	ctx := context.Background()
	env, err := chroot.Setup(ctx, dir, chroot.Options{NoFstab: true})
	if err != nil {
		t.Skipf("cannot set up a chroot here: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Close(); err != nil {
			t.Errorf("chroot close: %v", err)
		}
	})
	root, err := rootfs.New(dir)
	if err != nil {
		t.Fatal(err)
	}

	run := func(yaml string) (string, error) {
		t.Helper()
		cfg := parse(t, yaml)
		steps, err := Plan(cfg, root)
		if err != nil {
			t.Fatal(err)
		}
		var console bytes.Buffer
		err = applyAll(t, steps, &modules.Env{Root: root, Console: &console, Exec: env})
		return console.String(), err
	}

	src := `apt:
  sources:
    local:
      source: "deb [trusted=yes] file:/srv/repo ./"
`
	out, err := run(src + "packages:\n  - [hello-ok, \"1.0\"]\n")
	if err != nil {
		t.Fatalf("install hello-ok: %v\n%s", err, out)
	}
	if !strings.Contains(out, "[apt-get] hello-ok postinst ran\n") {
		t.Errorf("postinst output not streamed:\n%s", out)
	}
	if !root.Exists("/var/lib/hello-ok.configured") {
		t.Error("postinst did not run")
	}
	if got, _ := root.ReadFile("/etc/apt/sources.list.d/local.list"); string(got) != "deb [trusted=yes] file:/srv/repo ./\n" {
		t.Errorf("sources file %q", got)
	}

	out, err = run(src + "packages:\n  - vim-not-here\n  - hello-fail\n")
	var pe *Error
	if !errors.As(err, &pe) {
		t.Fatalf("unknown package: err = %v\n%s", err, out)
	}
	if pe.Code != 100 || pe.Origin.Line != 7 || !strings.Contains(pe.Message, "vim-not-here") {
		t.Errorf("unknown package: %v (line %d)", err, pe.Origin.Line)
	}

	out, err = run(src + "packages:\n  - hello-ok\n  - hello-fail\n")
	if !errors.As(err, &pe) {
		t.Fatalf("failing postinst: err = %v\n%s", err, out)
	}
	if pe.Code != 100 || pe.Origin.Line != 8 || !strings.Contains(pe.Message, "dpkg: error processing package hello-fail") {
		t.Errorf("failing postinst: %v (line %d)\n%s", err, pe.Origin.Line, out)
	}
	if !strings.Contains(out, "[apt-get] hello-fail postinst fails\n") {
		t.Errorf("console:\n%s", out)
	}
	t.Logf("error: %v\n%s", err, out)
}

func staticELF(p string) bool {
	f, err := elf.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}

// buildAptTree copies apt-get, dpkg and what they load into dir, with the
// host's merged-/usr symlinks, busybox applets for the shell tools dpkg
// and maintainer scripts need, and an empty dpkg database.
func buildAptTree(t *testing.T, dir string) {
	t.Helper()
	for _, l := range []string{"/bin", "/sbin", "/lib", "/lib64"} {
		if target, err := os.Readlink(l); err == nil {
			must(t, os.Symlink(target, filepath.Join(dir, l)))
		}
	}
	progs := []string{"/usr/bin/apt-get", "/usr/bin/dpkg", "/usr/bin/dpkg-deb", "/usr/bin/dpkg-split", "/usr/bin/dpkg-query",
		"/usr/sbin/ldconfig", "/usr/sbin/start-stop-daemon", "/usr/bin/busybox", "/usr/bin/tar"} // dpkg-deb needs GNU tar
	methods, _ := filepath.Glob("/usr/lib/apt/methods/*")
	progs = append(progs, methods...)
	need := map[string]bool{}
	libRe := regexp.MustCompile(`(/\S+) \(0x`)
	for _, p := range progs {
		if _, err := os.Stat(p); err != nil {
			continue
		}
		need[p] = true
		out, _ := exec.Command("ldd", p).Output() // static programs make ldd fail
		for _, m := range libRe.FindAllStringSubmatch(string(out), -1) {
			need[m[1]] = true
		}
	}
	tables, _ := filepath.Glob("/usr/share/dpkg/*table") // cputable, tupletable...
	for _, p := range tables {
		need[p] = true
	}
	for p := range need {
		copyHostPath(t, dir, p)
	}
	for _, a := range []string{"sh", "rm", "tar", "diff", "cat", "cp", "mv", "ln", "mkdir", "chmod", "chown", "sed", "grep", "echo",
		"true", "false", "test", "touch", "ls", "find", "readlink", "rmdir", "sort", "head", "tail", "tr", "cut", "mktemp", "dirname", "basename", "env", "id"} {
		p := filepath.Join(dir, "usr/bin", a)
		if _, err := os.Lstat(p); err == nil {
			continue
		}
		must(t, os.Symlink("busybox", p))
	}
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers", "var/lib/dpkg/alternatives",
		"var/cache/apt/archives/partial", "var/lib/apt/lists/partial", "var/log/apt", "etc/apt/apt.conf.d", "etc/apt/preferences.d",
		"etc/apt/sources.list.d", "etc/apt/trusted.gpg.d", "etc/dpkg/dpkg.cfg.d", "tmp", "run", "proc", "sys", "dev", "root", "srv/repo"} {
		must(t, os.MkdirAll(filepath.Join(dir, d), 0o755))
	}
	files := map[string]string{
		"var/lib/dpkg/status":    "",
		"var/lib/dpkg/available": "",
		"etc/passwd":             "root:x:0:0:root:/root:/bin/sh\n",
		"etc/group":              "root:x:0:\n",
		"etc/os-release":         "ID=debian\nVERSION_CODENAME=bookworm\n",
		// No _apt user in this tree; the file: method needs no sandbox.
		"etc/apt/apt.conf.d/00test": "APT::Sandbox::User \"root\";\nAcquire::Languages \"none\";\n",
	}
	for name, content := range files {
		must(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644))
	}
}

// copyHostPath puts host path p at the same place in dir, recreating the
// symlinks on the way (the loader is reached through /lib64 -> usr/lib64
// -> an absolute link, which the chroot resolves inside the tree).
func copyHostPath(t *testing.T, dir, p string) {
	t.Helper()
	for hop := 0; hop < 16; hop++ {
		parent, err := filepath.EvalSymlinks(filepath.Dir(p))
		if err != nil {
			t.Fatal(err)
		}
		at := filepath.Join(parent, filepath.Base(p))
		fi, err := os.Lstat(at)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, at)
		must(t, os.MkdirAll(filepath.Dir(dst), 0o755))
		if fi.Mode()&os.ModeSymlink == 0 {
			if _, err := os.Lstat(dst); err == nil {
				return
			}
			copyFile(t, at, dst, fi.Mode().Perm())
			return
		}
		target, err := os.Readlink(at)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(dst); err != nil {
			must(t, os.Symlink(target, dst))
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(parent, target)
		}
		p = target
	}
	t.Fatalf("%s: too many symlinks", p)
}

func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_EXCL, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	must(t, out.Close())
}

// buildRepo makes a flat repository: two .debs and a Packages index.
func buildRepo(t *testing.T, repo string) {
	t.Helper()
	work := t.TempDir()
	for name, postinst := range map[string]string{
		"hello-ok":   "#!/bin/sh\nset -e\necho \"hello-ok postinst ran\"\ntouch /var/lib/hello-ok.configured\n",
		"hello-fail": "#!/bin/sh\necho \"hello-fail postinst fails\"\nexit 1\n",
	} {
		pkg := filepath.Join(work, name)
		must(t, os.MkdirAll(filepath.Join(pkg, "DEBIAN"), 0o755))
		must(t, os.MkdirAll(filepath.Join(pkg, "usr/share", name), 0o755))
		must(t, os.WriteFile(filepath.Join(pkg, "usr/share", name, "README"), []byte(name+"\n"), 0o644))
		control := "Package: " + name + "\nVersion: 1.0\nArchitecture: all\nMaintainer: Test <test@example.com>\nDescription: provision test package\n"
		must(t, os.WriteFile(filepath.Join(pkg, "DEBIAN/control"), []byte(control), 0o644))
		must(t, os.WriteFile(filepath.Join(pkg, "DEBIAN/postinst"), []byte(postinst), 0o755))
		cmd := exec.Command("dpkg-deb", "--root-owner-group", "-Zgzip", "--build", pkg, filepath.Join(repo, name+"_1.0_all.deb"))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("dpkg-deb: %v\n%s", err, out)
		}
	}
	cmd := exec.Command("dpkg-scanpackages", "--multiversion", ".", "/dev/null")
	cmd.Dir = repo
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("dpkg-scanpackages: %v\n%s", err, stderr.String())
	}
	must(t, os.WriteFile(filepath.Join(repo, "Packages"), out, 0o644))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
