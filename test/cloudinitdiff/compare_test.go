package cloudinitdiff

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"unicode/utf8"
)

// fileState is what the comparison looks at in one path: its type,
// permission bits, owner, and its content or link target.
type fileState struct {
	kind     string // file, dir, link
	mode     fs.FileMode
	uid, gid uint32
	data     string
	link     string
}

func (f fileState) String() string {
	s := fmt.Sprintf("%s %04o %d:%d", f.kind, uint32(f.mode), f.uid, f.gid)
	switch f.kind {
	case "link":
		s += " -> " + f.link
	case "file":
		if utf8.ValidString(f.data) && len(f.data) < 400 {
			s += fmt.Sprintf(" %q", f.data)
		} else {
			s += fmt.Sprintf(" %d bytes sha256 %x", len(f.data), sha256.Sum256([]byte(f.data)))
		}
	}
	return s
}

// states describes every path below each of paths (absolute in tree; a
// file, a link or a directory walked whole); a missing path is absent
// from the result.
func states(t *testing.T, tree string, paths ...string) map[string]fileState {
	t.Helper()
	out := map[string]fileState{}
	for _, p := range paths {
		root := filepath.Join(tree, p)
		err := filepath.WalkDir(root, func(host string, d fs.DirEntry, err error) error {
			if os.IsNotExist(err) && host == root {
				return nil
			}
			if err != nil {
				return err
			}
			rel := "/" + strings.TrimPrefix(strings.TrimPrefix(host, tree), "/")
			st, err := os.Lstat(host)
			if err != nil {
				return err
			}
			sys := st.Sys().(*syscall.Stat_t)
			f := fileState{mode: st.Mode().Perm() | st.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky), uid: sys.Uid, gid: sys.Gid}
			switch {
			case st.Mode()&fs.ModeSymlink != 0:
				f.kind = "link"
				if f.link, err = os.Readlink(host); err != nil {
					return err
				}
			case st.IsDir():
				f.kind = "dir"
			case st.Mode().IsRegular():
				f.kind = "file"
				b, err := os.ReadFile(host)
				if err != nil {
					return err
				}
				f.data = string(b)
			default:
				f.kind = "special"
			}
			out[rel] = f
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// differences lists, path by path, where a and b differ.
func differences(a, b map[string]fileState) []string {
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	var sorted []string
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	var out []string
	for _, k := range sorted {
		fa, inA := a[k]
		fb, inB := b[k]
		switch {
		case !inA:
			out = append(out, fmt.Sprintf("%s: only provision has it: %s", k, fb))
		case !inB:
			out = append(out, fmt.Sprintf("%s: only cloud-init has it: %s", k, fa))
		case fa != fb:
			out = append(out, fmt.Sprintf("%s:\n  cloud-init: %s\n  provision:  %s", k, fa, fb))
		}
	}
	return out
}

// same asserts that cloud-init's tree a and provision's tree b agree on
// paths.
func same(t *testing.T, a, b string, paths ...string) {
	t.Helper()
	if d := differences(states(t, a, paths...), states(t, b, paths...)); len(d) > 0 {
		t.Errorf("cloud-init and provision differ:\n%s", strings.Join(d, "\n"))
	}
}

// unchanged asserts that tree's paths are as in the pristine tree.
func unchanged(t *testing.T, who, base, tree string, paths ...string) {
	t.Helper()
	if d := differences(states(t, base, paths...), states(t, tree, paths...)); len(d) > 0 {
		t.Errorf("%s changed what it should have left alone (\"cloud-init\" below is the image):\n%s", who, strings.Join(d, "\n"))
	}
}

// stat returns the state of one path, failing when it is missing.
func stat(t *testing.T, tree, p string) fileState {
	t.Helper()
	s, ok := states(t, tree, p)[p]
	if !ok {
		t.Fatalf("%s: missing in %s", p, tree)
	}
	return s
}

func exists(tree, p string) bool {
	_, err := os.Lstat(filepath.Join(tree, p))
	return err == nil
}
