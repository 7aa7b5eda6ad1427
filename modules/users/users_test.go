package users

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/modules/accounts"
	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/provision/config"
)

// A fixed Debian-like tree: unit tests must not depend on the host.
var baseTree = map[string]string{
	"etc/passwd":          "root:x:0:0:root:/root:/bin/bash\nold:x:1000:1000::/home/old:/bin/sh\n",
	"etc/group":           "root:x:0:\nshadow:x:42:\nusers:x:100:\nold:x:1000:\n",
	"etc/shadow":          "root:*:19000:0:99999:7:::\nold:!:19000:0:99999:7:::\n",
	"etc/gshadow":         "root:*::\nshadow:*::\nusers:*::\nold:!::\n",
	"etc/login.defs":      "UID_MIN 1000\nUID_MAX 60000\nGID_MIN 1000\nGID_MAX 60000\nUSERGROUPS_ENAB yes\nPASS_MAX_DAYS 99999\nPASS_MIN_DAYS 0\nPASS_WARN_AGE 7\nUMASK 022\nHOME_MODE 0700\n",
	"etc/default/useradd": "SHELL=/bin/sh\n",
	"etc/skel/.profile":   "# p\n",
	"etc/sudoers":         "root ALL=(ALL) ALL\n@includedir /etc/sudoers.d\n",
}

var day = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)

func tree(t *testing.T, files map[string]string) *rootfs.Root {
	t.Helper()
	dir := t.TempDir()
	for p, c := range files {
		h := filepath.Join(dir, p)
		must(t, os.MkdirAll(filepath.Dir(h), 0o755))
		must(t, os.WriteFile(h, []byte(c), 0o644))
	}
	r, err := rootfs.New(dir)
	must(t, err)
	return r
}

func apply(t *testing.T, r *rootfs.Root, steps []modules.Step) string {
	t.Helper()
	var out bytes.Buffer
	env := &modules.Env{Root: r, Console: &out}
	if err := modules.ApplyAll(context.Background(), env, steps); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func read(t *testing.T, r *rootfs.Root, p string) string {
	t.Helper()
	b, err := r.ReadFile(p)
	must(t, err)
	return string(b)
}

var origin = config.Origin{Source: "nocloud", File: "user-data", Line: 3, Column: 5}

func TestPlanLinesAndResult(t *testing.T) {
	r := tree(t, baseTree)
	cfg := &config.Config{
		Groups: []config.Group{{Origin: origin, Name: "devs", Members: []string{"old", "alice"}}},
		Users: []config.User{{
			Origin: origin, Name: "alice", Groups: []string{"docker"}, Sudo: []string{"ALL=(ALL) NOPASSWD:ALL"},
			Password: config.Password{Kind: config.PasswordPlain, Value: "hunter2"}, LockPassword: true,
		}},
	}
	steps, err := plan(cfg, r, func() time.Time { return day })
	must(t, err)
	var lines []string
	for _, s := range steps {
		lines = append(lines, s.String())
		if strings.Contains(s.String(), "hunter2") {
			t.Errorf("secret in plan line %q", s)
		}
	}
	want := []string{
		"users: create group devs (gid 1001) [nocloud:user-data:3:5]",
		"users: add member devs (user old) [nocloud:user-data:3:5]",
		"users: create group docker (gid 1002, for user alice) [nocloud:user-data:3:5]",
		"users: create user alice (uid 1001, gid 1003, groups docker,devs, home /home/alice) [nocloud:user-data:3:5]",
		"users: set password alice (plain-text password) [nocloud:user-data:3:5]",
		"users: lock password alice [nocloud:user-data:3:5]",
		"users: write sudo rules /etc/sudoers.d/90-provision-users (user alice, 1 rules) [nocloud:user-data:3:5]",
		"users: create home /home/alice (owner 1001:1003, mode 0700) [nocloud:user-data:3:5]",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("plan:\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	// Planning writes nothing.
	if read(t, r, "/etc/passwd") != baseTree["etc/passwd"] || r.Exists("/home/alice") {
		t.Fatal("plan wrote to the target")
	}
	apply(t, r, steps)
	if got := read(t, r, "/etc/group"); got != "root:x:0:\nshadow:x:42:\nusers:x:100:\nold:x:1000:\ndevs:x:1001:old,alice\ndocker:x:1002:alice\nalice:x:1003:\n" {
		t.Errorf("group:\n%s", got)
	}
	sp := strings.Split(strings.Split(read(t, r, "/etc/shadow"), "\n")[2], ":")
	if sp[0] != "alice" || !strings.HasPrefix(sp[1], "!$6$") || !accounts.VerifyPassword(sp[1][1:], "hunter2") || sp[2] != "20240" {
		t.Errorf("shadow entry %q", sp)
	}
	if got := read(t, r, SudoersFile); got != "# Created by provision\n\n# User rules for alice\nalice ALL=(ALL) NOPASSWD:ALL\n" {
		t.Errorf("sudoers %q", got)
	}
	st, err := r.Stat(SudoersFile)
	must(t, err)
	if st.Mode().Perm() != 0o440 {
		t.Errorf("sudoers mode %v", st.Mode())
	}
	if read(t, r, "/etc/sudoers") != baseTree["etc/sudoers"] {
		t.Error("sudoers with @includedir was changed")
	}
	st, err = r.Stat("/home/alice")
	must(t, err)
	if st.Mode().Perm() != 0o700 {
		t.Errorf("home mode %v", st.Mode())
	}
	if read(t, r, "/home/alice/.profile") != "# p\n" {
		t.Error("skel not copied")
	}
	// Applying again changes nothing and a new plan is empty.
	again, err := plan(cfg, r, func() time.Time { return day })
	must(t, err)
	if len(again) != 0 {
		t.Errorf("second plan: %v", again)
	}
}

func TestRandomPasswordPrintedNotPlanned(t *testing.T) {
	r := tree(t, baseTree)
	cfg := &config.Config{Passwords: []config.PasswordChange{{Origin: origin, User: "root", Password: config.Password{Kind: config.PasswordRandom}}}}
	steps, err := plan(cfg, r, func() time.Time { return day })
	must(t, err)
	if len(steps) != 1 || steps[0].Detail != "random password" {
		t.Fatalf("steps %v", steps)
	}
	out := apply(t, r, steps)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[1], "root:") {
		t.Fatalf("console %q", out)
	}
	pw := strings.TrimPrefix(lines[1], "root:")
	hash := strings.Split(strings.Split(read(t, r, "/etc/shadow"), "\n")[0], ":")[1]
	if len(pw) != 20 || !accounts.VerifyPassword(hash, pw) {
		t.Errorf("random password %q does not match %q", pw, hash)
	}
}

func TestErrorsCarryOrigin(t *testing.T) {
	r := tree(t, baseTree)
	tests := []struct {
		cfg  config.Config
		want string
		is   error
	}{
		{config.Config{Passwords: []config.PasswordChange{{Origin: origin, User: "ghost", Password: config.Password{Kind: config.PasswordHash, Value: "x"}}}},
			"nocloud:user-data:3:5: chpasswd: user \"ghost\"", accounts.ErrNotFound},
		{config.Config{Users: []config.User{{Origin: origin, Name: "users"}}},
			"nocloud:user-data:3:5: user \"users\": group \"users\" exists", accounts.ErrExists},
		{config.Config{Users: []config.User{{Origin: origin, Name: "alice", UID: intp(1000)}}},
			"nocloud:user-data:3:5: user \"alice\": UID 1000 is not unique", accounts.ErrExists},
		{config.Config{Users: []config.User{{Origin: origin, Name: "alice", ExpireDate: "tomorrow"}}},
			"nocloud:user-data:3:5: user \"alice\": expiredate", nil},
	}
	for _, tc := range tests {
		_, err := plan(&tc.cfg, r, func() time.Time { return day })
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) || (tc.is != nil && !errors.Is(err, tc.is)) {
			t.Errorf("got %v, want %q", err, tc.want)
		}
	}
}

// A group member that does not exist is skipped with a warning, as
// cloud-init's create_group does, not an error.
func TestUnknownGroupMemberSkipped(t *testing.T) {
	r := tree(t, baseTree)
	cfg := config.Config{Groups: []config.Group{{Origin: origin, Name: "g", Members: []string{"ghost"}}}}
	steps, err := plan(&cfg, r, func() time.Time { return day })
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range steps {
		got = append(got, s.String())
	}
	want := []string{
		"users: create group g (gid 1001) [nocloud:user-data:3:5]",
		"users: skip member g (user ghost does not exist; skipped, as cloud-init does) [nocloud:user-data:3:5]",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("plan:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestExistingUserAgingAndSudoInclude(t *testing.T) {
	files := map[string]string{}
	for k, v := range baseTree {
		files[k] = v
	}
	delete(files, "etc/sudoers")
	files["usr/etc/sudoers"] = "root ALL=(ALL) ALL\n"
	r := tree(t, files)
	cfg := &config.Config{Users: []config.User{{Origin: origin, Name: "old", ExpireDate: "2030-01-01", Inactive: intp(5), Sudo: []string{"ALL=(ALL) ALL"}}}}
	steps, err := plan(cfg, r, func() time.Time { return day })
	must(t, err)
	apply(t, r, steps)
	if got := strings.Split(read(t, r, "/etc/shadow"), "\n")[1]; got != "old:!:19000:0:99999:7:5:21915:" {
		t.Errorf("shadow %q", got)
	}
	if got := read(t, r, "/etc/sudoers"); !strings.HasPrefix(got, "root ALL=(ALL) ALL\n") || !strings.Contains(got, "\n#includedir /etc/sudoers.d\n") {
		t.Errorf("sudoers %q", got)
	}
	if st, err := r.Stat("/etc/sudoers.d"); err != nil || st.Mode().Perm() != 0o750 {
		t.Errorf("sudoers.d %v %v", st, err)
	}
}

func TestEmptyConfigPlansNothing(t *testing.T) {
	steps, err := Plan(&config.Config{}, tree(t, nil))
	if err != nil || len(steps) != 0 {
		t.Errorf("%v %v", steps, err)
	}
}

// Every step says which files besides its target it writes, so the
// journal keeps them before the first change: the account steps the
// databases, their backups and the lock; the sudo step /etc/sudoers.
func TestStepsDeclareWhatTheyWrite(t *testing.T) {
	r := tree(t, baseTree)
	cfg := &config.Config{Users: []config.User{{Origin: origin, Name: "alice", Sudo: []string{"ALL=(ALL) ALL"}}}}
	steps, err := plan(cfg, r, func() time.Time { return day })
	must(t, err)
	accountSteps, sudoSteps := 0, 0
	for _, s := range steps {
		writes := strings.Join(s.Writes, " ")
		switch {
		case s.Batch == accountsBatch:
			accountSteps++
			for _, p := range []string{"/etc/passwd", "/etc/passwd-", "/etc/shadow", "/etc/gshadow-", "/etc/.pwd.lock"} {
				if !slices.Contains(s.Writes, p) {
					t.Errorf("%s: writes %q, not %s", s, writes, p)
				}
			}
		case s.Target == SudoersFile:
			sudoSteps++
			if !slices.Contains(s.Writes, "/etc/sudoers") {
				t.Errorf("%s: writes %q, not /etc/sudoers", s, writes)
			}
		}
	}
	if accountSteps == 0 || sudoSteps == 0 {
		t.Errorf("the plan has %d account steps and %d sudo steps, want some of each: %v", accountSteps, sudoSteps, steps)
	}
}

// A user created with an initial password field gets it (Ignition's "*");
// an existing user keeps its own.
func TestInitialPassword(t *testing.T) {
	r := tree(t, baseTree)
	cfg := &config.Config{Users: []config.User{
		{Origin: origin, Name: "old", InitialPassword: "*"},
		{Origin: origin, Name: "fresh", InitialPassword: "*"},
		{Origin: origin, Name: "plain"},
	}}
	steps, err := plan(cfg, r, func() time.Time { return day })
	must(t, err)
	apply(t, r, steps)
	lines := strings.Split(read(t, r, "/etc/shadow"), "\n")
	for i, want := range []string{"old:!:", "fresh:*:", "plain:!:"} {
		if !strings.HasPrefix(lines[i+1], want) {
			t.Errorf("shadow line %q, want it to start %q", lines[i+1], want)
		}
	}
}
