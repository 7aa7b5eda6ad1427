package cloudinit

import (
	"regexp"
	"testing"
)

// mergerExpr is the expression splitMerger replaced (cloud-init's own):
// splitMerger must agree with it on every input.
var mergerExpr = regexp.MustCompile(`^([a-zA-Z_][A-Za-z0-9_]*)\((.*?)\)$`)

var mergerSeeds = []string{
	"dict(replace)", "list(append,recurse_str)", "str()", "dict()", "_x(a)", "x1(b)",
	"1x(a)", "(a)", "dict", "dict(", "dict)", "dict(a)b", "dict(a(b))", "dict(a)(b)",
	"di ct(a)", "dict(a\nb)", "dict(\xff)", "dict(a)\n", "dict(\r)", "dict-x(a)", "",
}

func TestSplitMergerMatchesExpression(t *testing.T) {
	for _, s := range mergerSeeds {
		checkMerger(t, s)
	}
}

func FuzzSplitMergerMatchesExpression(f *testing.F) {
	for _, s := range mergerSeeds {
		f.Add(s)
	}
	f.Fuzz(checkMerger)
}

func checkMerger(t *testing.T, s string) {
	name, opts, ok := splitMerger(s)
	sub := mergerExpr.FindStringSubmatch(s)
	if ok != (sub != nil) {
		t.Fatalf("splitMerger(%q) ok = %v, the expression matches: %v", s, ok, sub != nil)
	}
	if ok && (name != sub[1] || opts != sub[2]) {
		t.Fatalf("splitMerger(%q) = %q, %q; the expression gives %q, %q", s, name, opts, sub[1], sub[2])
	}
}
