package accounts

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strings"
	"testing"
)

// Hashes the system's crypt(3) (libxcrypt, through Python's crypt module)
// made of "Hello world!": the specification's own settings, a salt cut to
// 16 characters, explicit default rounds, an empty salt.
var shaCryptVectors = []struct{ setting, want string }{
	{"$6$saltstring", "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"},
	{"$6$rounds=10000$saltstringsaltstring", "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v."},
	{"$5$saltstring", "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5"},
	{"$5$rounds=10000$saltstringsaltstring", "$5$rounds=10000$saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA"},
	{"$6$rounds=5000$toolongsaltstring", "$6$rounds=5000$toolongsaltstrin$iGlL7EUUfzNQx59x3ydJZ.zXPMUu1dOynSEl/vcNhLlas77qD0DzRswhhB6LdrXTz250at0syAfUXra.XrxAI1"},
	{"$5$rounds=1400$anotherlongsaltstring", "$5$rounds=1400$anotherlongsalts$3qrvGONjJLD3nbbdMqiPU3HEkZj9mKxTAR68T172Rv9"},
	{"$6$", "$6$$.SKR9BCFmNlzTpsFbxLHKPVAMUdqxN8.85WISsmC.fRIPfZ78cePl/wQJcKzjcsDe8rRtdaVxJHS/E1LzWy3./"},
	{"$5$rounds=5000$ab", "$5$rounds=5000$ab$.AgIrRzMNXeXrMeKrtSlBbcQYXwZinoOgN4Yp9WPwa4"},
}

func TestShaCryptVectors(t *testing.T) {
	for _, v := range shaCryptVectors {
		got, err := shaCrypt([]byte("Hello world!"), v.setting)
		if err != nil || got != v.want {
			t.Errorf("shaCrypt(%q) = %q, %v; want %q", v.setting, got, err, v.want)
		}
		if !VerifyPassword(v.want, "Hello world!") || VerifyPassword(v.want, "Hello world") {
			t.Errorf("VerifyPassword(%q) does not tell the password from another", v.want)
		}
	}
	for _, bad := range []string{"", "$1$abc", "$6$rounds=$x", "$6$rounds=12", "$6$rounds=-5$x", "$y$j9T$abc"} {
		if got, err := shaCrypt([]byte("x"), bad); err == nil {
			t.Errorf("shaCrypt(%q) = %q, want an error", bad, got)
		}
	}
}

// The system's crypt(3) on random passwords (empty, long, any byte but
// NUL), salts and rounds, when Python's crypt module is there to ask.
func TestShaCryptMatchesSystemCrypt(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed: no system crypt(3) to compare with")
	}
	if out, err := exec.Command(py, "-W", "ignore", "-c", "import crypt").CombinedOutput(); err != nil {
		t.Skipf("python3 has no crypt module (removed in 3.13): %s", out)
	}
	r := rand.New(rand.NewPCG(1, 2))
	type tc struct{ pw, setting string }
	var cases []tc
	for i := 0; i < 60; i++ {
		pw := make([]byte, r.IntN(80))
		for j := range pw {
			pw[j] = byte(1 + r.IntN(255))
		}
		salt := make([]byte, r.IntN(20))
		for j := range salt {
			salt[j] = cryptAlphabet[r.IntN(64)]
		}
		setting := "$6$"
		if i%2 == 1 {
			setting = "$5$"
		}
		if i%3 == 0 {
			setting += fmt.Sprintf("rounds=%d$", 1000+r.IntN(3000))
		}
		cases = append(cases, tc{string(pw), setting + string(salt)})
	}
	var in strings.Builder
	for _, c := range cases {
		fmt.Fprintf(&in, "%x %x\n", c.pw, c.setting)
	}
	cmd := exec.Command(py, "-W", "ignore", "-c", `
import crypt, sys
for line in sys.stdin:
    pw, setting = (bytes.fromhex(f).decode("latin-1") for f in line.rstrip("\n").split(" "))
    print(crypt.crypt(pw, setting) or "*")
`)
	cmd.Stdin = strings.NewReader(in.String())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3 crypt: %v", err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for i := 0; sc.Scan(); i++ {
		want := sc.Text()
		// Python hands crypt(3) the password as UTF-8: compare on the
		// bytes it was given.
		pw := []byte(string([]rune(latin1(cases[i].pw))))
		got, err := shaCrypt(pw, cases[i].setting)
		if err != nil || got != want {
			t.Errorf("case %d %q: shaCrypt = %q, %v; crypt(3) = %q", i, cases[i].setting, got, err, want)
		}
	}
}

// latin1 reads s's bytes as Latin-1 characters, as the helper decodes them.
func latin1(s string) string {
	r := make([]rune, len(s))
	for i := 0; i < len(s); i++ {
		r[i] = rune(s[i])
	}
	return string(r)
}

// A setting comes from the target's shadow file (VerifyPassword): any
// text gives a hash or an error, never a panic. Rounds are kept small
// here; the algorithm's cost is linear in them by design.
func FuzzShaCrypt(f *testing.F) {
	for _, v := range shaCryptVectors {
		f.Add(v.want, "Hello world!")
	}
	f.Add("$6$rounds=1000$$", "")
	f.Fuzz(func(t *testing.T, setting, pw string) {
		if r, ok := strings.CutPrefix(setting[min(3, len(setting)):], "rounds="); ok {
			digits, _, _ := strings.Cut(r, "$")
			if len(digits) > 4 {
				return
			}
		}
		got, err := shaCrypt([]byte(pw), setting)
		if err != nil {
			return
		}
		if !strings.HasPrefix(got, setting[:3]) || !VerifyPassword(got, pw) {
			t.Fatalf("shaCrypt(%q) = %q does not verify", setting, got)
		}
	})
}
