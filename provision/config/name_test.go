package config

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// nameCases: upstream is shadow-utils' is_valid_user_name; debian marks the
// names Debian's relaxed-names patch lets its useradd accept although
// upstream refuses them.
var nameCases = []struct {
	name             string
	upstream, debian bool
}{
	{"alice", true, false}, {"systemUser", true, false}, {"Foo.Bar", true, false},
	{"_svc", true, false}, {".hidden", true, false}, {"1abc", true, false},
	{"a-b", true, false}, {"host$", true, false}, {"12$", true, false}, {"0x1", true, false},
	{strings.Repeat("a", 32), true, false},
	{"-a", false, false}, {"a:b", false, false}, {"a b", false, false}, {"a,b", false, false},
	{"+a", false, false}, {"~a", false, false}, {"", false, false}, {"a\tb", false, false},
	{strings.Repeat("a", 33), false, false}, {"$", false, true},
	{"123", false, true}, {".", false, true}, {"..", false, true}, {"a$b", false, true},
	{"é", false, true}, {"a/b", false, true}, {"a@b", false, true}, {"-", false, false},
}

func TestValidNameShadowRule(t *testing.T) {
	for _, tc := range nameCases {
		if got := ValidName(tc.name); got != tc.upstream {
			t.Errorf("ValidName(%q) = %v, shadow's is_valid_user_name says %v", tc.name, got, tc.upstream)
		}
	}
}

// TestValidNameAgainstUseradd runs the real useradd in a scratch root for
// every name and compares: where upstream and the installed useradd can
// only agree they must; names Debian's patch relaxes may be accepted by a
// Debian useradd and are refused here all the same.
func TestValidNameAgainstUseradd(t *testing.T) {
	useradd, err := exec.LookPath("useradd")
	if err != nil {
		t.Skip("no useradd")
	}
	if os.Geteuid() != 0 {
		t.Skip("useradd --root needs root (it chroots)")
	}
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	for name, content := range map[string]string{
		"passwd": "root:x:0:0:root:/root:/bin/sh\n", "group": "root:x:0:\n",
		"shadow": "root:*:1::::::\n", "gshadow": "root:*::\n",
	} {
		if err := os.WriteFile(filepath.Join(root, "etc", name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range nameCases {
		if tc.name == "" {
			continue // useradd would print its usage
		}
		out, err := exec.Command(useradd, "--root", root, "--no-create-home", "--no-user-group", tc.name).CombinedOutput()
		accepted := err == nil
		if _, ok := err.(*exec.ExitError); err != nil && !ok {
			t.Fatal(err)
		}
		switch {
		case tc.debian && accepted:
			// Debian's relaxed rule; provision follows upstream.
		case accepted != ValidName(tc.name):
			t.Errorf("%q: useradd accepted=%v (%s), ValidName=%v", tc.name, accepted, strings.TrimSpace(string(out)), ValidName(tc.name))
		}
	}
}
