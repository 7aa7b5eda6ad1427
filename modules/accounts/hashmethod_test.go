package accounts

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Debian 12 as shipped: login.defs says SHA512, PAM says yescrypt.
var debian12PAM = map[string]string{
	"etc/login.defs":            "ENCRYPT_METHOD SHA512\n#SHA_CRYPT_MIN_ROUNDS 5000\n",
	"etc/pam.d/chpasswd":        "# The PAM configuration file for the Shadow 'chpasswd' service\n\n@include common-password\n",
	"etc/pam.d/common-password": "password\t[success=1 default=ignore]\tpam_unix.so obscure yescrypt\npassword\trequisite\t\t\tpam_deny.so\n",
}

// openSUSE Tumbleweed / MicroOS: vendor files under /usr, pam_unix without a
// method, YESCRYPT in login.defs.
var tumbleweedPAM = map[string]string{
	"usr/etc/login.defs":               "ENCRYPT_METHOD YESCRYPT\nYESCRYPT_COST_FACTOR 7\n",
	"usr/lib/pam.d/chpasswd":           "#%PAM-1.0\nauth     include        common-auth\npassword include        common-password\n",
	"etc/pam.d/common-password":        "password\trequisite\tpam_pwquality.so\npassword\tsufficient\tpam_unix.so\tuse_authtok nullok shadow try_first_pass\n",
	"usr/lib/pam.d/common-password-pc": "unused\n",
}

func TestReadHashMethod(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string
		want  HashMethod
	}{
		{"nothing configured", map[string]string{}, DefaultHashMethod},
		{"debian 12 pam yescrypt", debian12PAM, HashMethod{Name: "YESCRYPT", From: "/etc/pam.d/common-password (pam_unix)"}},
		{"tumbleweed login.defs yescrypt", tumbleweedPAM, HashMethod{Name: "YESCRYPT", Rounds: 7, From: "/usr/etc/login.defs"}},
		{"login.defs sha256 with rounds", map[string]string{"etc/login.defs": "ENCRYPT_METHOD sha256\nSHA_CRYPT_MIN_ROUNDS 6000\nSHA_CRYPT_MAX_ROUNDS 7000\n"},
			HashMethod{Name: "SHA256", Rounds: 6000, MaxRounds: 7000, From: "/etc/login.defs"}},
		{"one limit is both, clamped", map[string]string{"etc/login.defs": "ENCRYPT_METHOD SHA512\nSHA_CRYPT_MAX_ROUNDS 10\n"},
			HashMethod{Name: "SHA512", Rounds: 1000, MaxRounds: 1000, From: "/etc/login.defs"}},
		{"pam rounds win", map[string]string{"etc/login.defs": "ENCRYPT_METHOD YESCRYPT\nSHA_CRYPT_MAX_ROUNDS 9000\n",
			"etc/pam.d/chpasswd": "password [success=1 default=ignore] pam_unix.so sha512 rounds=20000 # comment\n"},
			HashMethod{Name: "SHA512", Rounds: 20000, From: "/etc/pam.d/chpasswd (pam_unix)"}},
		{"pam method, login.defs rounds", map[string]string{"etc/login.defs": "SHA_CRYPT_MAX_ROUNDS 9000\n",
			"etc/pam.d/chpasswd": "-password required /lib/security/pam_unix.so sha512\n"},
			HashMethod{Name: "SHA512", Rounds: 9000, MaxRounds: 9000, From: "/etc/pam.d/chpasswd (pam_unix)"}},
		{"include loop ends", map[string]string{"etc/pam.d/chpasswd": "@include chpasswd\n", "etc/login.defs": "MD5_CRYPT_ENAB yes\n"},
			HashMethod{Name: "MD5", From: "/etc/login.defs"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRoot(t, tc.files)
			defs, err := ReadLoginDefs(r)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ReadHashMethod(r, defs)
			if err != nil || got != tc.want {
				t.Errorf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestHashPasswordFollowsMethod(t *testing.T) {
	h, err := HashPassword(HashMethod{Name: "SHA256", Rounds: 6000, MaxRounds: 6002}, "pw")
	if err != nil || !strings.HasPrefix(h, "$5$rounds=600") || !VerifyPassword(h, "pw") {
		t.Errorf("sha256: %q %v", h, err)
	}
	h, err = HashPassword(HashMethod{Name: "SHA512", Rounds: 5000}, "pw")
	if err != nil || !strings.HasPrefix(h, "$6$") || strings.Contains(h, "rounds=") {
		t.Errorf("sha512 default rounds: %q %v", h, err)
	}
	m := HashMethod{Name: "YESCRYPT", From: "/etc/login.defs"}
	h, err = HashPassword(m, "pw")
	if err != nil || !strings.HasPrefix(h, "$6$") || !VerifyPassword(h, "pw") {
		t.Errorf("yescrypt fallback: %q %v", h, err)
	}
	if w := m.Fallback(); !strings.Contains(w, "YESCRYPT") || !strings.Contains(w, "/etc/login.defs") {
		t.Errorf("fallback warning %q", w)
	}
	if w := (HashMethod{Name: "SHA512"}).Fallback(); w != "" {
		t.Errorf("native method warns: %q", w)
	}
}

// TestHashAcceptedBySystemCrypt checks what we write against the system's
// own libcrypt (libxcrypt), through perl's crypt(3): the hash must verify
// for the password and not for another.
func TestHashAcceptedBySystemCrypt(t *testing.T) {
	if _, err := exec.LookPath("perl"); err != nil {
		t.Skip("needs perl for the system's crypt(3)")
	}
	for _, m := range []HashMethod{
		{Name: "SHA512"}, {Name: "SHA256"}, {Name: "SHA512", Rounds: 1000}, {Name: "SHA256", Rounds: 12345},
		{Name: "YESCRYPT"},
	} {
		for _, pw := range []string{"pw", "s3cret pass", "ünïcode ✓", strings.Repeat("long", 40)} {
			h, err := HashPassword(m, pw)
			if err != nil {
				t.Fatal(err)
			}
			if got := systemCrypt(t, pw, h); got != h {
				t.Errorf("%+v %q: libcrypt gives %q for our %q", m, pw, got, h)
			}
			if got := systemCrypt(t, pw+"x", h); got == h {
				t.Errorf("%+v: a wrong password verifies", m)
			}
		}
	}
}

func systemCrypt(t *testing.T, pw, setting string) string {
	t.Helper()
	out, err := exec.Command("perl", "-e", `print crypt($ARGV[0], $ARGV[1])`, pw, setting).Output()
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// TestHashMatchesChpasswd has the real chpasswd hash a password under a
// login.defs with rounds set (needs root and unshare), then hashes it ourselves with chpasswd's
// setting (method, rounds, salt): both must be the same string, and our own
// choice of rounds must be what chpasswd chose.
func TestHashMatchesChpasswd(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chpasswd --root needs root")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("needs unshare (util-linux)")
	}
	tool, err := exec.LookPath("chpasswd")
	if err != nil {
		if _, err := os.Stat("/usr/sbin/chpasswd"); err != nil {
			t.Skip("needs shadow-utils' chpasswd")
		}
		tool = "/usr/sbin/chpasswd"
	}
	for _, tc := range []struct{ method, defs string }{
		{"SHA512", "ENCRYPT_METHOD SHA512\nSHA_CRYPT_MIN_ROUNDS 7000\nSHA_CRYPT_MAX_ROUNDS 7000\n"},
		{"SHA256", "ENCRYPT_METHOD SHA256\nSHA_CRYPT_MAX_ROUNDS 2000\n"},
		{"SHA512", "ENCRYPT_METHOD SHA512\n"},
	} {
		dir := t.TempDir()
		files := map[string]string{
			"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n",
			"etc/shadow": "root:*:19000:0:99999:7:::\nalice:!:19000:0:99999:7:::\n",
			"etc/group":  "root:x:0:\nalice:x:1000:\n", "etc/gshadow": "root:*::\nalice:!::\n",
			"etc/login.defs": tc.defs,
		}
		for p, c := range files {
			if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, p), []byte(c), 0o640); err != nil {
				t.Fatal(err)
			}
		}
		// chpasswd --root reads login.defs before it chroots (shadow 4.13),
		// so the tree's file is bind-mounted over the host's in a private
		// mount namespace.
		cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-ec",
			`mount --bind "$1/etc/login.defs" /etc/login.defs; exec "$2" --root "$1" -c "$3"`,
			"sh", dir, tool, tc.method)
		cmd.Stdin = strings.NewReader("alice:pässword 1\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("chpasswd: %v\n%s", err, out)
		}
		data, _ := os.ReadFile(filepath.Join(dir, "etc/shadow"))
		var ref string
		for _, l := range strings.Split(string(data), "\n") {
			if f := strings.Split(l, ":"); f[0] == "alice" {
				ref = f[1]
			}
		}
		i := strings.LastIndexByte(ref, '$')
		if i < 0 {
			t.Fatalf("chpasswd wrote %q", ref)
		}
		ours, err := hashWithSalt(tc.method, "pässword 1", ref[:i])
		if err != nil || ours != ref {
			t.Errorf("%s: ours %q, chpasswd %q (%v)", tc.defs, ours, ref, err)
		}
		// Our rounds, from the same login.defs, are chpasswd's.
		r := newRoot(t, map[string]string{"etc/login.defs": tc.defs})
		defs, _ := ReadLoginDefs(r)
		m, _ := ReadHashMethod(r, defs)
		h, _ := HashPassword(m, "x")
		if roundsOf(h) != roundsOf(ref) || h[:3] != ref[:3] {
			t.Errorf("%s: ours %q, chpasswd %q", tc.defs, h, ref)
		}
	}
}

func roundsOf(h string) int {
	_, after, ok := strings.Cut(h, "$rounds=")
	if !ok {
		return 5000
	}
	n, _ := strconv.Atoi(after[:strings.IndexByte(after, '$')])
	return n
}
