package units

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/provision/config"
)

// fixture is a target's unit files, by in-root path. It covers what the
// differential test compares: WantedBy, RequiredBy, Alias, Also, a template
// with DefaultInstance, an instance of a template, a template destination,
// drop-ins carrying [Install], specifiers, and units in /etc, /usr/lib,
// /usr/local/lib and /lib (searched in that order; no unit is in both /usr/lib
// and /lib, where Debian's split-/usr systemctl would prefer /lib).
var fixture = map[string]string{
	"/usr/lib/systemd/system/a.service":           "[Unit]\nDescription=a\n[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\nAlias=aa.service\nAlso=b.service\n",
	"/etc/systemd/system/b.service":               "[Service]\nExecStart=/bin/true\n[Install]\nRequiredBy=x.target\n",
	"/usr/lib/systemd/system/t@.service":          "[Service]\nExecStart=/bin/echo %i\n[Install]\nWantedBy=multi-user.target\nDefaultInstance=tty1\nAlias=tt@.service\n",
	"/usr/lib/systemd/system/n@.service":          "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target getty.target\n",
	"/lib/systemd/system/l.service":               "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n",
	"/usr/lib/systemd/system/o.service":           "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n",
	"/etc/systemd/system/o.service":               "[Service]\nExecStart=/bin/false\n[Install]\nWantedBy=graphical.target\n",
	"/usr/local/lib/systemd/system/loc.service":   "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=default.target\n# comment\n;other comment\nRequiredBy=a.target \\\n  b.target\n",
	"/usr/lib/systemd/system/di.service":          "[Service]\nExecStart=/bin/true\n",
	"/usr/lib/systemd/system/di.service.d/x.conf": "[Install]\nWantedBy=multi-user.target\n",
	"/usr/lib/systemd/system/sp.service":          "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target %N-x.target\nAlias=%p-alias.service\n",
	"/usr/lib/systemd/system/d@.service":          "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=foo@.target\nRequiredBy=sockets.target\n",
	"/usr/lib/systemd/system/reset.service":       "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=a.target\nWantedBy=\nWantedBy=b.target \"c.target\"\n",
	"/usr/lib/systemd/system/static.service":      "[Service]\nExecStart=/bin/true\n",
	"/usr/lib/systemd/system/sock.socket":         "[Socket]\nListenStream=1\n[Install]\nWantedBy=sockets.target\nAlso=sock2.socket\n",
	"/usr/lib/systemd/system/sock2.socket":        "[Socket]\nListenStream=2\n[Install]\nWantedBy=sockets.target\nAlias=sock3.socket\n",
}

func writeFixture(t *testing.T, dir string) {
	t.Helper()
	for p, c := range fixture {
		host := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(host), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(host, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "etc/systemd/system"), 0o755); err != nil {
		t.Fatal(err)
	}
}

// tree lists everything under /etc: directories, files and symlinks with
// their targets, one line each, sorted.
func tree(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	base := filepath.Join(dir, "etc")
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			lines = append(lines, "/"+rel+" -> "+target)
		case d.IsDir():
			st, _ := d.Info()
			lines = append(lines, fmt.Sprintf("/%s/ %04o", rel, st.Mode().Perm()))
		default:
			lines = append(lines, "/"+rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func systemctl(t *testing.T, dir string, args ...string) {
	t.Helper()
	out, err := exec.Command("systemctl", append([]string{"--root", dir}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("systemctl %v: %v\n%s", args, err, out)
	}
}

func needSystemctl(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("systemctl"); err != nil {
		t.Skip("systemctl is not installed: the differential test needs the real one (apt-get install systemd)")
	}
}

// applyPlan plans cfg against dir and applies every step.
func applyPlan(t *testing.T, dir string, cfg *config.Config) []modules.Step {
	t.Helper()
	root, err := rootfs.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	steps, err := Plan(cfg, root)
	if err != nil {
		t.Fatal(err)
	}
	env := &modules.Env{Root: root}
	for _, s := range steps {
		if err := s.Apply(context.Background(), env); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	return steps
}

func unitsConfig(enabled bool, names ...string) *config.Config {
	cfg := &config.Config{}
	for i, n := range names {
		e := enabled
		cfg.Units = append(cfg.Units, config.Unit{Origin: config.Origin{Source: "test", File: "config.ign", Line: i + 1, Column: 1}, Name: n, Enabled: &e})
	}
	return cfg
}

// TestEnableMatchesSystemctl enables units with the real systemctl in one
// copy of the fixture and with this package in another, and compares the
// resulting trees under /etc exactly.
func TestEnableMatchesSystemctl(t *testing.T) {
	needSystemctl(t)
	cases := [][]string{
		{"a.service"},     // WantedBy + Alias + Also (b in /etc: RequiredBy)
		{"b.service"},     // unit in /etc
		{"t@.service"},    // template with DefaultInstance + template Alias
		{"t@foo.service"}, // instance of a template (alias gets the instance)
		{"n@x.service"},   // instance of a template without DefaultInstance
		{"l.service"},     // unit only in /lib
		{"o.service"},     // /etc overrides /usr/lib
		{"loc.service"},   // /usr/local/lib, comments, continuation line
		{"di.service"},    // [Install] only in a drop-in
		{"sp.service"},    // %N and %p
		{"d@zz.service"},  // template destination foo@.target
		{"reset.service"}, // an empty assignment resets the list; quoting
		{"sock.socket"},   // Also= chain with an alias
		{"a.service", "a.service", "t@.service", "t@foo.service", "n@x.service", "n@y.service"},
	}
	for _, names := range cases {
		t.Run(strings.Join(names, "+"), func(t *testing.T) {
			want, got := t.TempDir(), t.TempDir()
			writeFixture(t, want)
			writeFixture(t, got)
			for _, n := range names {
				systemctl(t, want, "enable", n)
			}
			applyPlan(t, got, unitsConfig(true, names...))
			if w, g := tree(t, want), tree(t, got); w != g {
				t.Errorf("trees differ\nsystemctl:\n%s\n\nprovision:\n%s", w, g)
			}
			// Applied once, nothing is left to do.
			root, _ := rootfs.New(got)
			if steps, err := Plan(unitsConfig(true, names...), root); err != nil || len(steps) != 0 {
				t.Errorf("second plan: %v %v", steps, err)
			}
		})
	}
}

// TestDisableMatchesSystemctl enables everything with systemctl, then
// disables units with both and compares.
func TestDisableMatchesSystemctl(t *testing.T) {
	needSystemctl(t)
	all := []string{"a.service", "t@.service", "t@foo.service", "n@x.service", "l.service", "o.service", "sp.service", "d@zz.service", "sock.socket"}
	cases := [][]string{
		{"a.service"},     // removes aa.service and Also= b's link
		{"t@foo.service"}, // only links named t@foo.service, not the alias
		{"t@.service"},    // every link to the template
		{"sock.socket"},   // Also= chain
		{"sp.service", "o.service", "l.service"},
		{"static.service"}, // nothing to remove
	}
	for _, names := range cases {
		t.Run(strings.Join(names, "+"), func(t *testing.T) {
			want, got := t.TempDir(), t.TempDir()
			for _, d := range []string{want, got} {
				writeFixture(t, d)
				for _, n := range all {
					systemctl(t, d, "enable", n)
				}
			}
			for _, n := range names {
				systemctl(t, want, "disable", n)
			}
			applyPlan(t, got, unitsConfig(false, names...))
			if w, g := tree(t, want), tree(t, got); w != g {
				t.Errorf("trees differ\nsystemctl:\n%s\n\nprovision:\n%s", w, g)
			}
		})
	}
}

// TestMaskMatchesSystemctl masks units that have no file in /etc.
func TestMaskMatchesSystemctl(t *testing.T) {
	needSystemctl(t)
	names := []string{"a.service", "l.service", "t@.service", "missing.service"}
	want, got := t.TempDir(), t.TempDir()
	writeFixture(t, want)
	writeFixture(t, got)
	for _, n := range names {
		systemctl(t, want, "mask", n)
	}
	cfg := &config.Config{}
	for _, n := range names {
		cfg.Units = append(cfg.Units, config.Unit{Origin: config.Origin{Source: "test"}, Name: n, Mask: true})
	}
	applyPlan(t, got, cfg)
	if w, g := tree(t, want), tree(t, got); w != g {
		t.Errorf("trees differ\nsystemctl:\n%s\n\nprovision:\n%s", w, g)
	}
	// And unmasking removes exactly those links again.
	for _, n := range names {
		systemctl(t, want, "unmask", n)
	}
	for i := range cfg.Units {
		cfg.Units[i].Mask, cfg.Units[i].Unmask = false, true
	}
	applyPlan(t, got, cfg)
	if w, g := tree(t, want), tree(t, got); w != g {
		t.Errorf("after unmask, trees differ\nsystemctl:\n%s\n\nprovision:\n%s", w, g)
	}
}
