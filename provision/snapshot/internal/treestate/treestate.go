// Package treestate describes a directory tree precisely enough for the
// transaction tests to prove a restore was byte for byte: content, type,
// mode, owner, mtime, symlink target and xattrs of every entry.
package treestate

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// State maps a path relative to the tree's top to its description.
type State map[string]string

// Options choose what Capture leaves out.
type Options struct {
	Skip      func(rel string) bool // entries (and their subtrees) to ignore
	NoTopTime bool                  // leave out the top directory's mtime
	NoTimes   bool                  // leave out every mtime
}

// Capture walks dir.
func Capture(dir string, opts Options) (State, error) {
	out := State{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel != "." && opts.Skip != nil && opts.Skip(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		desc := fmt.Sprintf("type=%o mode=%o owner=%d:%d", st.Mode&unix.S_IFMT, st.Mode&0o7777, st.Uid, st.Gid)
		if !opts.NoTimes && !(rel == "." && opts.NoTopTime) {
			desc += fmt.Sprintf(" mtime=%d", st.Mtim.Nano())
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" size=%d sha256=%x", len(data), sha256.Sum256(data))
		case unix.S_IFLNK:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			desc += " target=" + t
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			desc += " xattrs=" + xattrs(p)
		}
		out[rel] = desc
		return nil
	})
	return out, err
}

func xattrs(p string) string {
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if err != nil || n == 0 {
		return ""
	}
	names := strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00")
	sort.Strings(names)
	var parts []string
	for _, name := range names {
		v := make([]byte, 64<<10)
		m, err := unix.Lgetxattr(p, name, v)
		if err != nil {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s=%q", name, v[:m]))
	}
	return strings.Join(parts, ",")
}

// Diff lists the differences between two states, one line each.
func Diff(want, got State) []string {
	var out []string
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			out = append(out, "missing "+k+": "+w)
		case g != w:
			out = append(out, "changed "+k+": "+w+" -> "+g)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			out = append(out, "extra "+k+": "+g)
		}
	}
	sort.Strings(out)
	return out
}
