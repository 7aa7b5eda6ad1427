package files

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/modules/rootfs/rootfstest"
	"github.com/provision-dev/provision/provision/config"
)

// Ignition's overwrite rules for an existing node, each against a fresh
// target, checked when planning against the target (plan-time) and, where
// planning cannot see the target, when applying (apply-time):
// overwrite true removes whatever is there; false (Ignition's default)
// refuses anything but a regular file, and that too when the config gives
// other contents; without contents the file is kept and only the mode and
// owner given are applied; nil (cloud-init) replaces a file, never a
// directory.
func TestOverwriteSemantics(t *testing.T) {
	yes, no := boolp(true), boolp(false)
	existing := map[string]string{
		"etc/":          "",
		"etc/file":      "old\n",
		"etc/dir/":      "",
		"etc/dir/a":     "a\n",
		"etc/dir/sub/b": "b\n",
		"etc/link":      "->file",
		"etc/dotlink":   "->x/../file",
		"etc/dirlink":   "->dir",
	}
	cases := []struct {
		name    string
		cfg     config.Config
		planErr string // refused when planning against the target
		// check inspects the target after applying; nil when planErr.
		check  func(t *testing.T, dir string)
		detail string // in the plan
		noStep bool
	}{
		{name: "file false, other contents", cfg: config.Config{Files: []config.File{{Path: "/etc/file", Contents: []byte("new\n"), Overwrite: no}}},
			planErr: "already exists in the target and overwrite is false"},
		{name: "file false, same contents", cfg: config.Config{Files: []config.File{{Path: "/etc/file", Contents: []byte("old\n"), Overwrite: no}}},
			noStep: true},
		{name: "file false, no contents, kept", cfg: config.Config{Files: []config.File{{Path: "/etc/file", Overwrite: no}}},
			noStep: true},
		{name: "file false, no contents, mode applied", cfg: config.Config{Files: []config.File{{Path: "/etc/file", Overwrite: no, Mode: mode(0o600)}}},
			check: want("etc/file", "old\n", 0o600)},
		{name: "file false, no contents, absent", cfg: config.Config{Files: []config.File{{Path: "/etc/new", Overwrite: no}}},
			check: want("etc/new", "", 0o644)},
		{name: "file false, directory there", cfg: config.Config{Files: []config.File{{Path: "/etc/dir", Overwrite: no}}},
			planErr: "a non-regular file (a directory, link or special file) exists at this path and overwrite is false"},
		{name: "file false, symlink there", cfg: config.Config{Files: []config.File{{Path: "/etc/link", Overwrite: no}}},
			planErr: "a non-regular file"},
		{name: "file true, directory there", cfg: config.Config{Files: []config.File{{Path: "/etc/dir", Contents: []byte("f\n"), Overwrite: yes}}},
			detail: "replacing the directory there and its contents (overwrite: true)", check: want("etc/dir", "f\n", 0o644)},
		{name: "file true, symlink there", cfg: config.Config{Files: []config.File{{Path: "/etc/link", Contents: []byte("f\n"), Overwrite: yes}}},
			check: func(t *testing.T, dir string) {
				want("etc/link", "f\n", 0o644)(t, dir)
				want("etc/file", "old\n", 0o644)(t, dir) // not followed
			}},
		{name: "file nil, directory there", cfg: config.Config{Files: []config.File{{Path: "/etc/dir", Contents: []byte("f\n")}}},
			planErr: "a directory exists at this path"},
		{name: "directory true, file there", cfg: config.Config{Directories: []config.Directory{{Path: "/etc/file", Overwrite: yes}}},
			detail: "replacing the file there (overwrite: true)", check: wantDir("etc/file", 0)},
		{name: "directory true, directory there", cfg: config.Config{Directories: []config.Directory{{Path: "/etc/dir", Overwrite: yes}}},
			detail: "its 2 entries removed first (overwrite: true)", check: wantDir("etc/dir", 0)},
		{name: "directory true, symlink there", cfg: config.Config{Directories: []config.Directory{{Path: "/etc/dirlink", Overwrite: yes}}},
			detail: "replacing the symbolic link there", check: func(t *testing.T, dir string) {
				wantDir("etc/dirlink", 0)(t, dir)
				wantDir("etc/dir", 2)(t, dir) // the link's target is untouched
			}},
		{name: "directory false, file there", cfg: config.Config{Directories: []config.Directory{{Path: "/etc/file"}}},
			planErr: "exists and is not a directory, and overwrite is not true"},
		{name: "directory false, symlink to a directory", cfg: config.Config{Directories: []config.Directory{{Path: "/etc/dirlink", Overwrite: no}}},
			planErr: "exists and is not a directory"},
		{name: "link true, directory there", cfg: config.Config{Links: []config.Link{{Path: "/etc/dir", Target: "file", Overwrite: yes}}},
			detail: "replacing the directory there and its contents", check: wantLink("etc/dir", "file")},
		{name: "link false, same target cleaned", cfg: config.Config{Links: []config.Link{{Path: "/etc/dotlink", Target: "file", Overwrite: no}}},
			noStep: true},
		{name: "link false, other target", cfg: config.Config{Links: []config.Link{{Path: "/etc/link", Target: "other", Overwrite: no}}},
			planErr: "already exists in the target and overwrite is false"},
		{name: "link false, file there", cfg: config.Config{Links: []config.Link{{Path: "/etc/file", Target: "x", Overwrite: no}}},
			planErr: "already exists in the target and overwrite is false"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for i := range c.cfg.Files {
				c.cfg.Files[i].Origin = origin(1)
			}
			root := rootfstest.NewRoot(t, existing)
			steps, err := Planner{}.Plan(&c.cfg, root)
			if c.planErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.planErr) {
					t.Fatalf("plan: %v, want %q", err, c.planErr)
				}
				// Planned without the target (as when the node appears
				// only later), the apply refuses the same.
				steps, err := Planner{}.Plan(&c.cfg, nil)
				if err != nil {
					t.Fatal(err)
				}
				root := rootfstest.NewRoot(t, existing)
				err = applyAll(root, steps)
				if err == nil || !strings.Contains(err.Error(), c.planErr) {
					t.Errorf("apply: %v, want %q", err, c.planErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.noStep {
				if len(steps) != 0 {
					t.Errorf("steps %q, want none (already as asked)", rootfstest.PlanText(steps))
				}
				return
			}
			if plan := string(rootfstest.PlanText(steps)); !strings.Contains(plan, c.detail) {
				t.Errorf("plan %q lacks %q", plan, c.detail)
			}
			rootfstest.Apply(t, root, steps)
			c.check(t, root.Dir)
			// Applying the same steps again is not an error.
			if err := applyAll(root, steps); err != nil {
				t.Errorf("second apply: %v", err)
			}
		})
	}
}

func applyAll(root *rootfs.Root, steps []modules.Step) error {
	env := &modules.Env{Root: root, Console: &bytes.Buffer{}}
	for _, s := range steps {
		if err := s.Apply(context.Background(), env); err != nil {
			return err
		}
	}
	return nil
}

func want(p, content string, m fs.FileMode) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		t.Helper()
		st, err := os.Lstat(filepath.Join(dir, p))
		if err != nil || !st.Mode().IsRegular() {
			t.Fatalf("%s: %v, %v; want a regular file", p, st, err)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, p)); string(b) != content || st.Mode().Perm() != m {
			t.Errorf("%s = %q mode %v, want %q mode %v", p, b, st.Mode().Perm(), content, m)
		}
	}
}

func wantDir(p string, entries int) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		t.Helper()
		st, err := os.Lstat(filepath.Join(dir, p))
		if err != nil || !st.IsDir() {
			t.Fatalf("%s: %v; want a directory", p, err)
		}
		if es, _ := os.ReadDir(filepath.Join(dir, p)); len(es) != entries {
			t.Errorf("%s holds %d entries, want %d", p, len(es), entries)
		}
	}
}

func wantLink(p, target string) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		t.Helper()
		if got, err := os.Readlink(filepath.Join(dir, p)); err != nil || got != target {
			t.Errorf("%s -> %q (%v), want -> %q", p, got, err, target)
		}
	}
}

// A file kept because the config gives no contents keeps its own mode and
// owner when the config gives none, also when only the apply sees it.
func TestKeptFileAttrs(t *testing.T) {
	root := rootfstest.NewRoot(t, map[string]string{"etc/secret": "s\n"})
	host := filepath.Join(root.Dir, "etc/secret")
	os.Chmod(host, 0o600)
	cfg := &config.Config{Files: []config.File{{Origin: origin(1), Path: "/etc/secret", Overwrite: boolp(false)}}}
	steps, err := Planner{}.Plan(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := applyAll(root, steps); err != nil {
		t.Fatal(err)
	}
	want("etc/secret", "s\n", 0o600)(t, root.Dir)
}
