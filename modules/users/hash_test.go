package users

import (
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/provision-dev/provision/modules/accounts"
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
