package provision

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/provision/config"
	"github.com/provision-dev/provision/provision/report"
	"github.com/provision-dev/provision/provision/snapshot"
	"github.com/provision-dev/provision/sources"
	"github.com/provision-dev/provision/sources/dir"
)

// newTarget makes a small target tree: the base accounts, a zone, a skel.
func newTarget(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "root")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := writeBaseTree(root, ""); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{
		"usr/share/zoneinfo/Europe/Berlin": "TZif2 test zone",
		"usr/share/zoneinfo/UTC":           "TZif2 test zone",
		"etc/skel/.profile":                "# profile\n",
		"etc/machine-id":                   "0123456789abcdef0123456789abcdef\n",
	} {
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join(root, "home"), 0o755)
	return root
}

// treeState fingerprints every path under root: type, mode, content, link.
func treeState(t *testing.T, root string) map[string]string {
	t.Helper()
	state := map[string]string{}
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		info, _ := d.Info()
		desc := info.Mode().String()
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			desc += " -> " + l
		case info.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			desc += fmt.Sprintf(" %x", sha256.Sum256(b))
		}
		state[rel] = desc
		return nil
	})
	return state
}

func seedDir(t *testing.T, userData string) string {
	t.Helper()
	d := t.TempDir()
	os.WriteFile(filepath.Join(d, "user-data"), []byte(userData), 0o644)
	os.WriteFile(filepath.Join(d, "meta-data"), []byte("instance-id: iid-test\n"), 0o644)
	return d
}

func runOn(root string, srcs ...sources.Source) *Result {
	var console bytes.Buffer
	return Run(context.Background(), Options{
		Root:    root,
		Sources: srcs,
		Console: &console,
		Begin:   beginSnapshot(io.Discard, new(currentTxn)),
	})
}

func TestRunAppliesAndSecondRunDoesNothing(t *testing.T) {
	root := newTarget(t)
	seed, _ := filepath.Abs("../test/bench/seed")
	res := runOn(root, dir.New(seed))
	if res.Err != nil {
		t.Fatalf("run failed: %v", res.Err)
	}
	if res.Status != StatusDone {
		t.Fatalf("status %q", res.Status)
	}
	passwd, _ := os.ReadFile(filepath.Join(root, "etc/passwd"))
	for _, u := range []string{"alice:x:1000:", "bob:x:1001:", "carol:x:1002:"} {
		if !bytes.Contains(passwd, []byte("\n"+u)) {
			t.Errorf("passwd lacks %s:\n%s", u, passwd)
		}
	}
	keys, err := os.ReadFile(filepath.Join(root, "home/alice/.ssh/authorized_keys"))
	if err != nil || bytes.Count(keys, []byte("\n")) != 2 {
		t.Errorf("alice's keys: %q, %v", keys, err)
	}
	st, err := os.Stat(filepath.Join(root, "etc/bench/file07.conf"))
	if err != nil || st.Mode().Perm() != 0o640 {
		t.Errorf("file07: %v %v", st, err)
	}
	if l, _ := os.Readlink(filepath.Join(root, "etc/localtime")); l != "../usr/share/zoneinfo/Europe/Berlin" {
		t.Errorf("localtime -> %q", l)
	}
	if id, _ := os.ReadFile(filepath.Join(root, instanceIDPath)); string(id) != "iid-bench\n" {
		t.Errorf("instance-id %q", id)
	}
	if _, err := os.Stat(filepath.Join(root, "var/log/provision/report.json")); err != nil {
		t.Errorf("no report in the target: %v", err)
	}

	before := treeState(t, root)
	again := runOn(root, dir.New(seed))
	if again.Err != nil || again.Status != StatusNothing {
		t.Fatalf("second run: status %q err %v", again.Status, again.Err)
	}
	if after := treeState(t, root); !equalState(before, after) {
		t.Error("the second run changed the tree")
	}
}

func TestHostileInputsWriteNothing(t *testing.T) {
	bomb := gzipBomb(t, 1<<30)
	cases := []struct {
		name     string
		userData string
		plant    func(root string)
		invalid  bool   // exit 2 rather than 1
		want     string // in the error
	}{
		{name: "dotdot", userData: "#cloud-config\nwrite_files:\n  - path: /etc/../../escape\n    content: x\n", invalid: true, want: `".."`},
		{name: "symlink planted in target", userData: "#cloud-config\nwrite_files:\n  - path: /etc/evil/escape\n    content: x\n",
			plant: func(root string) { os.Symlink("../../../../../../../tmp", filepath.Join(root, "etc/evil")) }, invalid: true, want: "escapes the target root"},
		{name: "invalid ssh key", userData: "#cloud-config\nusers:\n  - name: eve\n    ssh_authorized_keys: [\"ssh-rsa notbase64!!\"]\n", invalid: true, want: "eve"},
		{name: "malformed yaml", userData: "#cloud-config\nusers:\n  - name: x\n   bad: [\n", invalid: true, want: "user-data:"},
		{name: "unknown timezone", userData: "#cloud-config\ntimezone: Mars/Olympus_Mons\n", invalid: true, want: "Mars/Olympus_Mons"},
		{name: "gzip bomb", userData: string(bomb), invalid: true, want: "user-data"},
		{name: "mode out of range", userData: "#cloud-config\nwrite_files:\n  - path: /etc/x\n    content: x\n    permissions: '0o9999'\n", invalid: true, want: "user-data:5"},
		{name: "file after a user fails late", userData: "#cloud-config\nusers: [{name: zed}]\nwrite_files:\n  - path: /etc/evil/x\n    content: x\n",
			plant: func(root string) { os.Symlink("/../../../../..", filepath.Join(root, "etc/evil")) }, invalid: true, want: "escapes the target root"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := newTarget(t)
			if tc.plant != nil {
				tc.plant(root)
			}
			before := treeState(t, root)
			res := runOn(root, dir.New(seedDir(t, tc.userData)))
			if res.Err == nil {
				t.Fatal("hostile input accepted")
			}
			if errors.Is(res.Err, ErrInvalid) != tc.invalid {
				t.Errorf("invalid = %v, want %v: %v", errors.Is(res.Err, ErrInvalid), tc.invalid, res.Err)
			}
			if !strings.Contains(res.Err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", res.Err, tc.want)
			}
			if after := treeState(t, root); !equalState(before, after) {
				for k, v := range after {
					if before[k] != v {
						t.Errorf("changed: %s %s (was %q)", k, v, before[k])
					}
				}
				for k := range before {
					if _, ok := after[k]; !ok {
						t.Errorf("removed: %s", k)
					}
				}
			}
		})
	}
}

func equalState(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// gzipBomb is a multi-member gzip stream of n zero bytes: one member of 1 MiB
// repeated, so building it costs 1 MiB of compression whatever n is.
func gzipBomb(t *testing.T, n int64) []byte {
	t.Helper()
	var member bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&member, gzip.BestCompression)
	zw.Write(make([]byte, 1<<20))
	zw.Close()
	return bytes.Repeat(member.Bytes(), int(n>>20))
}

func TestDryRunPlansWithoutWriting(t *testing.T) {
	seed, _ := filepath.Abs("../test/seeds/nocloud-demo")
	res := Run(context.Background(), Options{Sources: []sources.Source{dir.New(seed)}, DryRun: true})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	var lines []string
	for _, s := range res.Plan {
		lines = append(lines, s.String())
	}
	plan := strings.Join(lines, "\n")
	for _, want := range []string{"users: create user alice", "ssh: authorize keys /home/alice/.ssh/authorized_keys", "files: write /etc/motd", "system: set hostname", "packages: install htop", "scripts: run runcmd"} {
		if !strings.Contains(plan, want) {
			t.Errorf("plan lacks %q:\n%s", want, plan)
		}
	}
	if !strings.Contains(plan, "user-data:19:5]") {
		t.Errorf("plan lines do not carry origins:\n%s", plan)
	}
}

// A `# combustion: prepare` script gets its prepare stage before anything
// else; without the comment it does not.
func TestCombustionPrepareStage(t *testing.T) {
	for _, tc := range []struct {
		script string
		want   int
	}{
		{"#!/bin/sh\n# combustion: prepare\necho hi\n", 1},
		{"#!/bin/sh\n#combustion: prepare\necho hi\n", 0},
	} {
		root := newTarget(t)
		d := t.TempDir()
		os.WriteFile(filepath.Join(d, "script"), []byte(tc.script), 0o755)
		var calls int
		res := Run(context.Background(), Options{
			Root:    root,
			Sources: []sources.Source{dir.New(d)},
			Begin:   beginSnapshot(io.Discard, new(currentTxn)),
			Prepare: func(ctx context.Context, sc config.Script) error {
				calls++
				return errors.New("prepare stage failed on purpose")
			},
		})
		if calls != tc.want {
			t.Errorf("%q: prepare called %d times, want %d", tc.script, calls, tc.want)
		}
		if tc.want == 1 && (res.Err == nil || !strings.Contains(res.Err.Error(), "on purpose")) {
			t.Errorf("a failing prepare stage did not fail the run: %v", res.Err)
		}
	}
}

// A plan without --root assumes the image's own accounts that a config only
// refers to, with a warning, instead of calling a valid config invalid.
func TestDryRunAssumesImageUsers(t *testing.T) {
	seed := seedDir(t, "#cloud-config\nchpasswd:\n  users:\n    - {name: ubuntu, password: $6$x$y, type: hash}\n")
	res := Run(context.Background(), Options{Sources: []sources.Source{dir.New(seed)}, DryRun: true})
	if res.Err != nil {
		t.Fatalf("valid config refused: %v", res.Err)
	}
	found := false
	for _, w := range res.Warnings {
		found = found || strings.Contains(w, `user "ubuntu" is not created by this config`)
	}
	if !found {
		t.Errorf("no warning about the assumed user: %v", res.Warnings)
	}
	// With --root the real tree decides: there the user is missing.
	root := newTarget(t)
	res = Run(context.Background(), Options{Root: root, Sources: []sources.Source{dir.New(seed)}, DryRun: true})
	if res.Err == nil || !strings.Contains(res.Err.Error(), "ubuntu") {
		t.Errorf("a user missing from the --root tree was accepted: %v", res.Err)
	}
}

// The journal gets each planned path once, in the order of first mention:
// every users step names the same account databases.
func TestPlannedWritesOnce(t *testing.T) {
	accounts := []string{"/etc/passwd", "/etc/shadow"}
	steps := []modules.Step{
		{Target: "alice", Writes: accounts, Apply: func(context.Context, *modules.Env) error { return nil }},
		{Target: "bob", Writes: accounts, Apply: func(context.Context, *modules.Env) error { return nil }},
		{Target: "/etc/hostname", Apply: func(context.Context, *modules.Env) error { return nil }},
		{Target: "/etc/skipped"}, // not executed: nothing to keep
		{Target: "/etc/passwd", Apply: func(context.Context, *modules.Env) error { return nil }},
	}
	got := plannedWrites(steps)
	want := []string{instanceIDPath, report.TargetDir, "/etc/passwd", "/etc/shadow", "/etc/hostname"}
	if !slices.Equal(got, want) {
		t.Errorf("planned writes %q, want %q", got, want)
	}
}

// A run recovers its root once: first thing, before the recorded
// instance-id is read, and not again when the transaction begins. A
// transaction begun without that first pass (a caller of Begin alone)
// still recovers.
func TestRecoversOnce(t *testing.T) {
	calls := map[string]int{}
	defer func(f func(context.Context, string, io.Writer) error) { recoverRoot = f }(recoverRoot)
	recoverRoot = func(ctx context.Context, root string, log io.Writer) error {
		calls[root]++
		return snapshot.RecoverLogged(ctx, root, log)
	}
	root := newTarget(t)
	seed, _ := filepath.Abs("../test/bench/seed")
	opts, err := SystemOptions(context.Background(), SystemConfig{Root: root, SourceSpec: []string{seed}, Console: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if res := Run(context.Background(), opts); res.Err != nil {
		t.Fatalf("run failed: %v", res.Err)
	}
	if calls[root] != 1 {
		t.Errorf("the run recovered its root %d times, want once", calls[root])
	}
	other := newTarget(t)
	txn, err := beginSnapshot(io.Discard, new(currentTxn))(context.Background(), other)
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Abort(context.Background())
	if calls[other] != 1 {
		t.Errorf("a transaction begun alone recovered its root %d times, want once", calls[other])
	}
}
