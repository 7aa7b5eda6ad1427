package config

import (
	"regexp"
	"testing"
)

// The expressions the hand-written checks replaced (shadow-utils' user
// name characters; one RFC 1123 label): the checks must agree with them
// on every input.
var (
	userNameExpr      = regexp.MustCompile(`^[A-Za-z0-9_.][A-Za-z0-9_.-]*\$?$`)
	hostnameLabelExpr = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)
)

var charSeeds = []string{
	"", "a", "alice", "Alice.B_c-d", "a$", "$", "a$$", "-a", "a-", ".", "..", "_x", "1", "123",
	"a b", "ä", "a\n", "a$\n", "host-1", "-host", "host-", "x--y",
	"a123456789012345678901234567890123456789012345678901234567890bc",
	"a1234567890123456789012345678901234567890123456789012345678901bc",
}

func TestCharChecksMatchExpressions(t *testing.T) {
	for _, s := range charSeeds {
		checkChars(t, s)
	}
}

func FuzzCharChecksMatchExpressions(f *testing.F) {
	for _, s := range charSeeds {
		f.Add(s)
	}
	f.Fuzz(checkChars)
}

func checkChars(t *testing.T, s string) {
	if got, want := userNameChars(s), userNameExpr.MatchString(s); got != want {
		t.Errorf("userNameChars(%q) = %v, the expression says %v", s, got, want)
	}
	if got, want := hostnameLabel(s), hostnameLabelExpr.MatchString(s); got != want {
		t.Errorf("hostnameLabel(%q) = %v, the expression says %v", s, got, want)
	}
}
