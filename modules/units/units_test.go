package units

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/provision/config"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs (run with -update to accept):\n--- want\n%s\n--- got\n%s", name, want, got)
	}
}

func at(line int) config.Origin {
	return config.Origin{Source: "test", File: "config.ign", Line: line, Column: 3}
}

func ptr[T any](v T) *T { return &v }

// goldenConfig exercises every step kind against the fixture.
func goldenConfig() *config.Config {
	newUnit := "[Unit]\nDescription=new\n[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n"
	return &config.Config{
		Files: []config.File{{
			Origin: at(1), Path: "/etc/systemd/system/viafiles.service",
			Contents: []byte("[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=timers.target\n"),
		}},
		Units: []config.Unit{
			{Origin: at(2), Name: "new.service", Contents: &newUnit, Enabled: ptr(true)},
			{Origin: at(3), Name: "a.service", Enabled: ptr(true), Dropins: []config.Dropin{{Name: "10-env.conf", Contents: "[Service]\nEnvironment=X=1\n"}}},
			{Origin: at(4), Name: "l.service", Mask: true, Enabled: ptr(true)},
			{Origin: at(5), Name: "viafiles.service", Enabled: ptr(true)},
			{Origin: at(6), Name: "up.service", Enabled: ptr(true)},
			{Origin: at(7), Name: "sp.service", Enabled: ptr(false)},
			{Origin: at(8), Name: "static.service", Enabled: ptr(true)},
			{Origin: at(9), Name: "o.service", Contents: ptr("[Service]\nExecStart=/bin/false\n[Install]\nWantedBy=graphical.target\n")},
		},
	}
}

func plannedLines(steps []modules.Step) string {
	var b strings.Builder
	for _, s := range steps {
		b.WriteString(s.String())
		b.WriteByte('\n')
	}
	return b.String()
}

func TestPlanGolden(t *testing.T) {
	dir := t.TempDir()
	writeFixture(t, dir)
	up := filepath.Join(dir, "usr/lib/systemd/system/up.service")
	if err := os.WriteFile(up, []byte("[Service]\nExecStart=/bin/true\n[Install]\nUpheldBy=multi-user.target\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	root, err := rootfs.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	// sp.service starts out enabled, so disabling it has work to do.
	if err := Enable(root, "sp.service"); err != nil {
		t.Fatal(err)
	}
	cfg := goldenConfig()
	steps, err := Plan(cfg, root)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "plan.txt", plannedLines(steps))

	// Apply: the files module's write of viafiles.service comes first in a
	// real run; do it by hand here.
	if err := root.WriteFile(cfg.Files[0].Path, cfg.Files[0].Contents, 0o644, rootfs.RootOwner); err != nil {
		t.Fatal(err)
	}
	env := &modules.Env{Root: root}
	for _, s := range steps {
		if err := s.Apply(context.Background(), env); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	golden(t, "tree.txt", tree(t, dir)+"\n")
	if again, err := Plan(cfg, root); err != nil || len(again) != 0 {
		t.Errorf("plan after apply: %v %v", plannedLines(again), err)
	}
}

func TestPlanWithoutRoot(t *testing.T) {
	steps, err := Plan(goldenConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "plan-noroot.txt", plannedLines(steps))
}

func TestPlanErrors(t *testing.T) {
	cases := []struct {
		name  string
		setup map[string]string // extra files; "->X" makes a symlink to X
		unit  config.Unit
		want  string
	}{
		{"missing unit", nil, config.Unit{Origin: at(3), Name: "nope.service", Enabled: ptr(true)},
			"test:config.ign:3:3: unit nope.service: enable: unit nope.service: not found in /etc/systemd/system"},
		{"missing Also", map[string]string{"/usr/lib/systemd/system/al.service": "[Install]\nWantedBy=a.target\nAlso=gone.service\n"},
			config.Unit{Origin: at(4), Name: "al.service", Enabled: ptr(true)},
			"unit gone.service (named in Also= of al.service) does not exist in the target"},
		{"masked", map[string]string{"/etc/systemd/system/a.service": "->/dev/null"},
			config.Unit{Origin: at(5), Name: "a.service", Enabled: ptr(true)},
			"unit a.service is masked"},
		{"template without instance", nil, config.Unit{Origin: at(6), Name: "n@.service", Enabled: ptr(true)},
			"template n@.service has no DefaultInstance= and destination unit multi-user.target is a non-template unit"},
		{"alias taken", map[string]string{"/etc/systemd/system/aa.service": "->/usr/lib/systemd/system/o.service"},
			config.Unit{Origin: at(7), Name: "a.service", Enabled: ptr(true)},
			"/etc/systemd/system/aa.service already exists and links to /usr/lib/systemd/system/o.service"},
		{"wants path is a file", map[string]string{"/etc/systemd/system/multi-user.target.wants/a.service": "x"},
			config.Unit{Origin: at(8), Name: "a.service", Enabled: ptr(true)},
			"already exists and is not a symlink"},
		{"host specifier", map[string]string{"/usr/lib/systemd/system/h.service": "[Install]\nWantedBy=%H.target\n"},
			config.Unit{Origin: at(9), Name: "h.service", Enabled: ptr(true)},
			"specifier %H"},
		{"bad alias type", map[string]string{"/usr/lib/systemd/system/h.service": "[Install]\nAlias=h.socket\n"},
			config.Unit{Origin: at(9), Name: "h.service", Enabled: ptr(true)},
			"same type suffix"},
		{"unbalanced quote", map[string]string{"/usr/lib/systemd/system/h.service": "[Install]\nWantedBy=\"a.target\n"},
			config.Unit{Origin: at(9), Name: "h.service", Enabled: ptr(true)},
			"/usr/lib/systemd/system/h.service:2: WantedBy=: unbalanced quote"},
		{"bad name", nil, config.Unit{Origin: at(10), Name: "../x.service", Enabled: ptr(true)},
			"not a valid unit name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFixture(t, dir)
			for p, content := range c.setup {
				host := filepath.Join(dir, p)
				os.MkdirAll(filepath.Dir(host), 0o755)
				os.Remove(host)
				var err error
				if strings.HasPrefix(content, "->") {
					err = os.Symlink(content[2:], host)
				} else {
					err = os.WriteFile(host, []byte(content), 0o644)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			root, _ := rootfs.New(dir)
			_, err := Plan(&config.Config{Units: []config.Unit{c.unit}}, root)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want it to contain %q", err, c.want)
			}
			if !strings.HasPrefix(err.Error(), c.unit.Origin.String()+":") {
				t.Errorf("error %q does not start with the origin %s", err, c.unit.Origin)
			}
		})
	}
}

// TestWrittenUnitMatchesSystemctl: a unit the config writes to /etc and
// enables gives the same tree as writing it by hand and running systemctl.
func TestWrittenUnitMatchesSystemctl(t *testing.T) {
	needSystemctl(t)
	contents := "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\nRequiredBy=local-fs.target\nAlias=written-alias.service\nAlso=a.service\n"
	dropin := "[Install]\nWantedBy=default.target\n"
	want, got := t.TempDir(), t.TempDir()
	writeFixture(t, want)
	writeFixture(t, got)
	os.WriteFile(filepath.Join(want, "etc/systemd/system/written.service"), []byte(contents), 0o644)
	os.MkdirAll(filepath.Join(want, "etc/systemd/system/written.service.d"), 0o755)
	os.WriteFile(filepath.Join(want, "etc/systemd/system/written.service.d/50-more.conf"), []byte(dropin), 0o644)
	systemctl(t, want, "enable", "written.service")
	applyPlan(t, got, &config.Config{Units: []config.Unit{{
		Origin: at(1), Name: "written.service", Contents: &contents, Enabled: ptr(true),
		Dropins: []config.Dropin{{Name: "50-more.conf", Contents: dropin}},
	}}})
	if w, g := tree(t, want), tree(t, got); w != g {
		t.Errorf("trees differ\nsystemctl:\n%s\n\nprovision:\n%s", w, g)
	}
}

func TestConfinedToRoot(t *testing.T) {
	dir := t.TempDir()
	writeFixture(t, dir)
	outside := t.TempDir()
	// A planted symlink must not lead writes out of the root.
	if err := os.Symlink(outside, filepath.Join(dir, "etc/systemd/system/multi-user.target.wants")); err != nil {
		t.Fatal(err)
	}
	root, _ := rootfs.New(dir)
	steps, err := Plan(&config.Config{Units: []config.Unit{{Origin: at(1), Name: "a.service", Enabled: ptr(true)}}}, root)
	if err == nil {
		env := &modules.Env{Root: root}
		for _, s := range steps {
			if err = s.Apply(context.Background(), env); err != nil {
				break
			}
		}
	}
	ents, _ := os.ReadDir(outside)
	if len(ents) != 0 {
		t.Fatalf("wrote outside the root: %v", ents)
	}
}

// TestBareTree: a tree without systemd (the skeleton --dry-run plans
// against without --root) cannot say a unit is missing; applying can.
func TestBareTree(t *testing.T) {
	dir := t.TempDir()
	root, _ := rootfs.New(dir)
	cfg := &config.Config{Units: []config.Unit{{Origin: at(2), Name: "sshd.service", Enabled: ptr(true)}}}
	steps, err := Plan(cfg, root)
	if err != nil || len(steps) != 1 || steps[0].Detail != "symlinks decided when applying" {
		t.Fatalf("plan: %v %v", steps, err)
	}
	err = steps[0].Apply(context.Background(), &modules.Env{Root: root})
	if err == nil || !strings.Contains(err.Error(), "test:config.ign:2:3: unit sshd.service: enable: unit sshd.service: not found") {
		t.Fatalf("apply: %v", err)
	}
}
