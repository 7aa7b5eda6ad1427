// Package testbin is what the test suites that run the built command share:
// the repository's root, the static binary built from it, copying a tree
// and the difference between two pictures of one.
package testbin

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"syscall"
)

// RepoRoot is the repository's top directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Build builds the static provision command to out.
func Build(out string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, "./cmd/provision")
	cmd.Dir = RepoRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, b)
	}
	return nil
}

// Diff lists, sorted, what differs between two pictures of a tree (path to
// a description of the entry): added, changed and removed paths.
func Diff(before, after map[string]string) []string {
	var out []string
	for k, v := range after {
		if b, ok := before[k]; !ok {
			out = append(out, "added "+k+": "+v)
		} else if b != v {
			out = append(out, "changed "+k+": "+b+" => "+v)
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			out = append(out, "removed "+k)
		}
	}
	sort.Strings(out)
	return out
}

// CopyTree copies a file, symlink or directory tree to dst, keeping modes
// and (as root) owners; what is already at dst is overwritten, so a tree
// can be laid over another. Devices and sockets are left out: they are
// not part of a root tree.
func CopyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		perm := info.Mode() & (fs.ModePerm | fs.ModeSticky | fs.ModeSetgid | fs.ModeSetuid)
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			os.Remove(out)
			if err := os.Symlink(l, out); err != nil {
				return err
			}
		case info.IsDir():
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			if err := os.Chmod(out, perm); err != nil {
				return err
			}
		case info.Mode().IsRegular():
			if err := CopyFile(p, out, info.Mode()); err != nil {
				return err
			}
		default:
			return nil
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok && os.Geteuid() == 0 {
			os.Lchown(out, int(st.Uid), int(st.Gid))
		}
		return nil
	})
}

// CopyFile copies the regular file from to to, replacing what is there,
// with mode's permission, setuid, setgid and sticky bits.
func CopyFile(from, to string, mode fs.FileMode) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode.Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chmod(to, mode&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky))
}
