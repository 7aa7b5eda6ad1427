// Package rpmrepo builds small RPM packages with the real rpmbuild and an
// rpm-md repository of them with createrepo_c, for tests that drive zypper
// and dnf for real. Packages are noarch, unsigned, and carry only what a
// test declares: files, scriptlets, Provides.
package rpmrepo

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// Package is one RPM to build.
type Package struct {
	Name    string
	Version string // default "1.0"
	Release string // default "1"
	// Files maps an absolute path to its content.
	Files map[string]string
	// Pre and Post are %pre and %post scriptlet bodies (run by /bin/sh).
	Pre, Post string
	// Provides are extra capabilities ("/bin/sh", "glibc").
	Provides []string
}

// Tools lists the programs Build needs, for a test's skip check.
var Tools = []string{"rpmbuild", "createrepo_c"}

// BaseProvides is the package a repository for a Debian-made test root
// needs: the rpm database there knows none of dpkg's packages, so any
// package with a scriptlet (which requires /bin/sh) or a glibc dependency
// would be unresolvable. It provides both and installs nothing.
var BaseProvides = Package{Name: "target-base-provides", Provides: []string{"/bin/sh", "glibc"}}

// Build writes one RPM per package into repo (created if needed) and runs
// createrepo_c there. Work files go into a directory beside repo.
func Build(repo string, pkgs ...Package) error {
	top, err := os.MkdirTemp(filepath.Dir(repo), "rpmbuild-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(top)
	if err := os.MkdirAll(repo, 0o755); err != nil {
		return err
	}
	for _, p := range pkgs {
		spec := filepath.Join(top, p.Name+".spec")
		if err := os.WriteFile(spec, []byte(p.spec()), 0o644); err != nil {
			return err
		}
		// _topdir keeps rpmbuild out of $HOME; the empty _dbpath macro
		// keeps it from creating a database on the host.
		cmd := exec.Command("rpmbuild", "--define", "_topdir "+top, "--define", "_rpmdir "+repo,
			"--define", "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm", "--quiet", "-bb", spec)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("rpmbuild %s: %w\n%s", p.Name, err, out)
		}
	}
	if out, err := exec.Command("createrepo_c", "--quiet", "--update", repo).CombinedOutput(); err != nil {
		return fmt.Errorf("createrepo_c %s: %w\n%s", repo, err, out)
	}
	return nil
}

func (p Package) spec() string {
	version, release := p.Version, p.Release
	if version == "" {
		version = "1.0"
	}
	if release == "" {
		release = "1"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Name: %s\nVersion: %s\nRelease: %s\nSummary: test package %s\nLicense: MIT\nBuildArch: noarch\n", p.Name, version, release, p.Name)
	for _, c := range p.Provides {
		fmt.Fprintf(&b, "Provides: %s\n", c)
	}
	fmt.Fprintf(&b, "%%description\nA package built by a test.\n%%prep\n%%build\n%%install\n")
	paths := make([]string, 0, len(p.Files))
	for f := range p.Files {
		paths = append(paths, f)
	}
	sort.Strings(paths)
	for _, f := range paths {
		fmt.Fprintf(&b, "mkdir -p %%{buildroot}%s\n", filepath.Dir(f))
		// A quoted here-document: the content is taken literally.
		fmt.Fprintf(&b, "cat > %%{buildroot}%s <<'PROVISION_EOF'\n%sPROVISION_EOF\n", f, ensureNewline(p.Files[f]))
	}
	if p.Pre != "" {
		fmt.Fprintf(&b, "%%pre\n%s\n", p.Pre)
	}
	if p.Post != "" {
		fmt.Fprintf(&b, "%%post\n%s\n", p.Post)
	}
	b.WriteString("%files\n")
	for _, f := range paths {
		b.WriteString(f + "\n")
	}
	return b.String()
}

func ensureNewline(s string) string {
	if s == "" || strings.HasSuffix(s, "\n") {
		return s
	}
	return s + "\n"
}
