// Package pkgtree builds a root tree for tests out of the Debian packages
// installed on the host: the files of the named packages and of everything
// they depend on (Depends and Pre-Depends, alternatives and virtual
// packages resolved to what the host has), with the host's merged-/usr
// symlinks. No network and no maintainer scripts: what a package's postinst
// would create (caches, alternatives) is not there, which the real package
// managers under test do not need.
//
// It is how the root tier gets real zypper, rpm and dnf inside a target
// without debootstrap: a tree of about 200 MB in a few seconds.
package pkgtree

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/provision-dev/provision/test/testbin"
)

// installed is one package as dpkg knows it.
type installed struct {
	deps [][]string // each entry: alternatives, any one satisfies it
}

// database is dpkg's view of the host: installed packages, and which
// installed package provides each virtual name.
type database struct {
	pkgs     map[string]installed
	provides map[string]string
}

func readDatabase() (*database, error) {
	out, err := exec.Command("dpkg-query", "-W", "-f", "${Package}\t${db:Status-Abbrev}\t${Depends}\t${Pre-Depends}\t${Provides}\n").Output()
	if err != nil {
		return nil, fmt.Errorf("dpkg-query: %w", err)
	}
	db := &database{pkgs: map[string]installed{}, provides: map[string]string{}}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) != 5 || !strings.HasPrefix(f[1], "ii") {
			continue
		}
		var p installed
		for _, field := range f[2:4] {
			p.deps = append(p.deps, parseDepends(field)...)
		}
		db.pkgs[f[0]] = p
		for _, alts := range parseDepends(f[4]) {
			for _, v := range alts {
				if _, ok := db.provides[v]; !ok {
					db.provides[v] = f[0]
				}
			}
		}
	}
	return db, sc.Err()
}

// parseDepends reads a Depends field: "a (>= 1), b:any | c" becomes
// [[a] [b c]]; versions and architecture qualifiers are dropped (the host
// already satisfied them).
func parseDepends(s string) [][]string {
	var out [][]string
	for _, clause := range strings.Split(s, ",") {
		var alts []string
		for _, alt := range strings.Split(clause, "|") {
			name := strings.TrimSpace(alt)
			if i := strings.IndexAny(name, " ("); i >= 0 {
				name = name[:i]
			}
			name, _, _ = strings.Cut(name, ":")
			if name != "" {
				alts = append(alts, name)
			}
		}
		if len(alts) > 0 {
			out = append(out, alts)
		}
	}
	return out
}

// resolve returns the installed package that satisfies name.
func (db *database) resolve(name string) (string, bool) {
	if _, ok := db.pkgs[name]; ok {
		return name, true
	}
	p, ok := db.provides[name]
	return p, ok
}

// Closure returns the named packages and everything they depend on, as
// installed on the host, sorted. A named package that is not installed is
// an error that says how to install it; an unsatisfied dependency deeper
// down is too.
func Closure(names []string) ([]string, error) {
	db, err := readDatabase()
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var queue []string
	for _, n := range names {
		p, ok := db.resolve(n)
		if !ok {
			return nil, fmt.Errorf("package %s is not installed on this machine (apt-get install %s)", n, n)
		}
		queue = append(queue, p)
	}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if seen[p] {
			continue
		}
		seen[p] = true
		for _, alts := range db.pkgs[p].deps {
			found := false
			for _, a := range alts {
				if q, ok := db.resolve(a); ok {
					queue = append(queue, q)
					found = true
					break
				}
			}
			if !found {
				return nil, fmt.Errorf("%s depends on %s, which is not installed", p, strings.Join(alts, " | "))
			}
		}
	}
	out := make([]string, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	sort.Strings(out)
	return out, nil
}

// skipped are trees no test needs: documentation and translations.
var skipped = []string{"/usr/share/doc/", "/usr/share/man/", "/usr/share/info/", "/usr/share/locale/", "/usr/share/lintian/"}

// Build copies the closure of names into dst (created if needed) and
// returns the packages it copied.
func Build(dst string, names []string) ([]string, error) {
	pkgs, err := Closure(names)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return nil, err
	}
	// The merged-/usr links first, so /bin/x lands in usr/bin/x.
	for _, l := range []string{"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"} {
		if target, err := os.Readlink(l); err == nil {
			if err := os.Symlink(target, filepath.Join(dst, l)); err != nil && !errors.Is(err, fs.ErrExist) {
				return nil, err
			}
		}
	}
	out, err := exec.Command("dpkg-query", append([]string{"-L"}, pkgs...)...).Output()
	if err != nil {
		return nil, fmt.Errorf("dpkg-query -L: %w", err)
	}
	for _, p := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(p, "/") || p == "/." || isSkipped(p) {
			continue // blank separators and "package diverts others to" notes
		}
		if err := copyPath(dst, p); err != nil {
			return nil, err
		}
	}
	return pkgs, nil
}

func isSkipped(p string) bool {
	for _, s := range skipped {
		if strings.HasPrefix(p+"/", s) {
			return true
		}
	}
	return false
}

// copyPath copies one host path (a directory, symlink or regular file)
// to the same place under dst. Paths that vanished (a conffile the admin
// removed) are skipped.
func copyPath(dst, p string) error {
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	to, err := within(dst, p)
	if err != nil {
		return err
	}
	switch {
	case fi.IsDir():
		if err := os.MkdirAll(to, 0o755); err != nil {
			return err
		}
		return os.Chmod(to, fi.Mode().Perm())
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(p)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			return err
		}
		if err := os.Symlink(target, to); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		return nil
	case fi.Mode().IsRegular():
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			return err
		}
		return testbin.CopyFile(p, to, fi.Mode())
	}
	return nil
}

// within maps host path p into dst, following symlinks already in dst the
// way a chroot would (absolute targets stay under dst), so a package's
// absolute link can never send a copy onto the host.
func within(dst, p string) (string, error) {
	cur := "/"
	parts := strings.Split(strings.Trim(path.Clean(p), "/"), "/")
	for hops := 0; len(parts) > 0; {
		name := parts[0]
		parts = parts[1:]
		next := path.Join(cur, name)
		if len(parts) == 0 {
			return filepath.Join(dst, next), nil // the last element itself is not followed
		}
		target, err := os.Readlink(filepath.Join(dst, next))
		if err != nil {
			cur = next
			continue
		}
		if hops++; hops > 40 {
			return "", fmt.Errorf("%s: too many levels of symbolic links under %s", p, dst)
		}
		if !path.IsAbs(target) {
			target = path.Join(cur, target)
		}
		parts = append(strings.Split(strings.Trim(path.Clean(target), "/"), "/"), parts...)
		cur = "/"
	}
	return filepath.Join(dst, cur), nil
}
