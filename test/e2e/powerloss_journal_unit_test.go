package e2e

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestJudgeJournal: the journal backend's judge takes the old tree back
// from an open journal, the complete new tree after the commit point, and
// nothing in between.
func TestJudgeJournal(t *testing.T) {
	old := map[string]string{
		".":            "drwxr-xr-x 0:0",
		"etc":          "drwxr-xr-x 0:0",
		"etc/passwd":   "-rw-r--r-- 0:0 32 aaaa",
		"var":          "drwxr-xr-x 0:0",
		"var/lib":      "drwxr-xr-x 0:0",
		"var/lib/x":    "-rw-r--r-- 0:0 1 bbbb",
		"home":         "drwxr-xr-x 0:0",
		"etc/hostname": "-rw-r--r-- 0:0 10 cccc",
	}
	with := func(extra map[string]string) map[string]string {
		d := maps.Clone(old)
		maps.Copy(d, extra)
		return d
	}
	openJournal := with(map[string]string{
		".provision-journal":                      "drwx------ 0:0",
		".provision-journal/20250101T000000Z-1":   "drwx------ 0:0",
		".provision-journal/20250101T000000Z-1/m": "-rw------- 0:0 1 dddd",
	})
	committed := with(map[string]string{
		".provision-journal":                              "drwx------ 0:0",
		".provision-journal/20250101T000000Z-1.committed": "drwx------ 0:0",
	})
	changed := with(map[string]string{"etc/passwd": "-rw-r--r-- 0:0 64 eeee"})
	script := with(map[string]string{
		"var/lib/powerloss-run":    "drwxr-xr-x 0:0",
		"var/lib/powerloss-run/ok": "-rw-r--r-- 0:0 0 ffff",
	})

	// A complete new tree on disk, for the cases that reach it.
	newTop := t.TempDir()
	if err := (Tree{
		"etc/passwd":                    {Mode: 0o644, Data: []byte("root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n")},
		"etc/shadow":                    {Mode: 0o640, Data: []byte("root:*:1::::::\nalice:!:1::::::\n")},
		"etc/powerloss/config.txt":      {Mode: 0o644, Data: []byte(plConfigTxt)},
		"etc/powerloss/blob.bin":        {Mode: 0o644, Data: plBlob()},
		"etc/powerloss/runcmd.txt":      {Mode: 0o644, Data: []byte(plRunMarker)},
		"var/lib/powerloss/data.txt":    {Mode: 0o644, Data: []byte(plVarTxt)},
		"var/lib/powerloss-run/ok":      {Mode: 0o644, Data: []byte(plRunMarker)},
		"var/lib/provision/instance-id": {Mode: 0o644, Data: []byte(plInstanceID + "\n")},
	}).WriteDir(newTop); err != nil {
		t.Fatal(err)
	}
	// The new tree's digest only has to differ from the old one's.
	newDigest := with(map[string]string{"etc/powerloss": "drwxr-xr-x 0:0"})
	halfTop := t.TempDir()
	if err := os.MkdirAll(filepath.Join(halfTop, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}

	c := &plChecker{scripts: true, before: &plBefore{digest: old}}
	for _, tc := range []struct {
		name       string
		top        string
		raw, after map[string]string
		recoverErr error
		state      string
		problem    string // "" for none
	}{
		{"untouched", halfTop, old, old, nil, "old", ""},
		{"open journal rolled back", halfTop, openJournal, old, nil, "recovered-to-old", ""},
		{"open journal, the script's writes left", halfTop, openJournal, script, nil, "recovered-to-old+script", ""},
		{"the script's writes without a journal", halfTop, old, script, nil, "neither", "neither the old one"},
		{"open journal, a module's write left", halfTop, openJournal, changed, nil, "neither", "not the old one"},
		{"open journal, the tree new", newTop, openJournal, newDigest, nil, "neither", "not the old one"},
		{"open journal left by recovery", halfTop, openJournal, openJournal, nil, "neither", "recovery leaves .provision-journal"},
		{"recovery failed", halfTop, openJournal, old, errors.New("EIO"), "recovered-to-old", "recovery fails: EIO"},
		{"committed, removal pending", newTop, committed, newDigest, nil, "new-removal-pending", ""},
		{"committed", newTop, newDigest, newDigest, nil, "new", ""},
		{"changed without a journal", halfTop, changed, changed, nil, "neither", "neither the old one"},
	} {
		state, problems := c.judgeJournal(tc.top, tc.raw, tc.after, tc.recoverErr)
		checkJudged(t, tc.name, state, tc.state, problems, tc.problem)
	}
}

// checkJudged fails case name of a judge's table when its state or its
// problems are not the ones wanted ("" problem: none).
func checkJudged(t *testing.T, name, state, wantState string, problems []string, wantProblem string) {
	t.Helper()
	if state != wantState {
		t.Errorf("%s: state %q, want %q (problems %v)", name, state, wantState, problems)
	}
	switch {
	case wantProblem == "" && len(problems) > 0:
		t.Errorf("%s: problems %v, want none", name, problems)
	case wantProblem != "" && !strings.Contains(strings.Join(problems, "\n"), wantProblem):
		t.Errorf("%s: problems %v, want one saying %q", name, problems, wantProblem)
	}
}
