package users

import (
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/provision-dev/provision/modules/accounts"
	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/provision/config"
)

// The target's own method decides the hash of a plain password: login.defs'
// ENCRYPT_METHOD and rounds, or pam_unix's option, which beats it.
func TestPlainPasswordUsesTargetMethod(t *testing.T) {
	cases := []struct {
		name   string
		extra  map[string]string
		prefix string // of the written hash
		warn   bool   // the plan line names a fallback
	}{
		{"login.defs sha256 with rounds", map[string]string{"etc/login.defs": baseTree["etc/login.defs"] + "ENCRYPT_METHOD SHA256\nSHA_CRYPT_MIN_ROUNDS 6000\nSHA_CRYPT_MAX_ROUNDS 6000\n"}, "$5$rounds=6000$", false},
		{"login.defs sha512", map[string]string{"etc/login.defs": baseTree["etc/login.defs"] + "ENCRYPT_METHOD SHA512\n"}, "$6$", false},
		{"debian 12 pam yescrypt", map[string]string{
			"etc/login.defs":            baseTree["etc/login.defs"] + "ENCRYPT_METHOD SHA512\n",
			"etc/pam.d/chpasswd":        "@include common-password\n",
			"etc/pam.d/common-password": "password [success=1 default=ignore] pam_unix.so obscure yescrypt\n",
		}, "$6$", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			files := maps.Clone(baseTree)
			maps.Copy(files, tc.extra)
			r := tree(t, files)
			cfg := &config.Config{Passwords: []config.PasswordChange{{Origin: origin, User: "old", Password: config.Password{Kind: config.PasswordPlain, Value: "s3cret"}}}}
			steps, err := plan(cfg, r, func() time.Time { return day })
			must(t, err)
			if len(steps) != 1 {
				t.Fatalf("steps %v", steps)
			}
			if got := strings.Contains(steps[0].Detail, "YESCRYPT"); got != tc.warn {
				t.Errorf("plan line %q: warning %v, want %v", steps[0], got, tc.warn)
			}
			out := apply(t, r, steps)
			if tc.warn != strings.Contains(out, "YESCRYPT") {
				t.Errorf("console %q", out)
			}
			var hash string
			for _, l := range strings.Split(read(t, r, "/etc/shadow"), "\n") {
				if f := strings.Split(l, ":"); f[0] == "old" {
					hash = f[1]
				}
			}
			if !strings.HasPrefix(hash, tc.prefix) || !accounts.VerifyPassword(hash, "s3cret") {
				t.Errorf("hash %q, want prefix %q and verifying", hash, tc.prefix)
			}
			// Idempotent: the written hash verifies, so a second plan is empty.
			again, err := plan(cfg, r, func() time.Time { return day })
			must(t, err)
			if len(again) != 0 {
				t.Errorf("second plan %v", again)
			}
		})
	}
}

// A plain-text password's hash begun ahead (Step.Prefetch) is the one
// applied; without the prefetch, or when the target's method changed
// since the plan, the step hashes itself with the method it finds.
func TestPasswordHashBegunAhead(t *testing.T) {
	cfg := &config.Config{Users: []config.User{{Origin: origin, Name: "alice",
		Password: config.Password{Kind: config.PasswordPlain, Value: "hunter2"}}}}
	sha256 := baseTree["etc/login.defs"] + "ENCRYPT_METHOD SHA256\n"
	for _, c := range []struct {
		name     string
		prefetch bool
		defs     string // login.defs when applying; "" keeps the planned one
		want     string
	}{
		{"prefetched", true, "", "$6$"},
		{"not prefetched", false, "", "$6$"},
		{"method changed after the plan", true, sha256, "$5$"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := tree(t, baseTree)
			steps, err := plan(cfg, r, func() time.Time { return day })
			must(t, err)
			prefetched := 0
			for _, s := range steps {
				if s.Prefetch == nil {
					continue
				}
				if s.Action != "set password" {
					t.Errorf("%s has a prefetch", s)
				}
				prefetched++
				if c.prefetch {
					s.Prefetch()
				}
			}
			if prefetched != 1 {
				t.Fatalf("%d steps with a prefetch, want the one password step", prefetched)
			}
			if c.defs != "" {
				must(t, r.WriteFile("/etc/login.defs", []byte(c.defs), 0o644, rootfs.RootOwner))
			}
			apply(t, r, steps)
			hash := strings.Split(strings.Split(read(t, r, "/etc/shadow"), "\n")[2], ":")[1]
			if !strings.HasPrefix(hash, c.want) || !accounts.VerifyPassword(hash, "hunter2") {
				t.Errorf("alice's hash %q: want a %s hash of her password", hash, c.want)
			}
		})
	}
}
