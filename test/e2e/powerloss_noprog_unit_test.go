package e2e

import (
	"errors"
	"maps"
	"strings"
	"testing"
)

// TestJudgeRecovered: the judge of a program-free run takes the old root
// only with /var as before once recovery is done, the complete new root
// with its /var and home, and nothing recovery left half done.
func TestJudgeRecovered(t *testing.T) {
	const oldRoot, newRoot = "@/.snapshots/1/snapshot", "@/.snapshots/2/snapshot"
	before := map[string]string{
		".":                      "drwxr-xr-x 0:0",
		"@":                      "drwxr-xr-x 0:0",
		"@/.snapshots":           "drwxr-x--- 0:0",
		oldRoot:                  "drwxr-xr-x 0:0",
		oldRoot + "/etc":         "drwxr-xr-x 0:0",
		oldRoot + "/etc/passwd":  "-rw-r--r-- 0:0 32 aaaa",
		"@/var":                  "drwxr-xr-x 0:0",
		"@/var/lib":              "drwxr-xr-x 0:0",
		"@/home":                 "drwxr-xr-x 0:0",
		"@/.snapshots/1/info.xm": "-rw-r--r-- 0:0 100 bbbb",
	}
	with := func(base map[string]string, extra map[string]string) map[string]string {
		d := maps.Clone(base)
		maps.Copy(d, extra)
		return d
	}
	stateDir := map[string]string{
		".provision":                            "drwx------ 0:0",
		".provision/20260101T000000Z-1":         "drwx------ 0:0",
		".provision/20260101T000000Z-1/journal": "drwx------ 0:0",
	}
	varWrite := map[string]string{
		"@/var/lib/powerloss":          "drwxr-xr-x 0:0",
		"@/var/lib/powerloss/data.txt": "-rw-r--r-- 0:0 7 cccc",
	}
	snap2 := map[string]string{"@/.snapshots/2": "drwxr-xr-x 0:0", newRoot: "drwxr-xr-x 0:0"}

	// A complete new root on disk, and one whose home is missing.
	complete := Tree{
		newRoot + "/etc/passwd":               {Mode: 0o644, Data: []byte("root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n")},
		newRoot + "/etc/shadow":               {Mode: 0o640, Data: []byte("root:*:1::::::\nalice:!:1::::::\n")},
		newRoot + "/etc/powerloss/config.txt": {Mode: 0o644, Data: []byte(plConfigTxt)},
		newRoot + "/etc/powerloss/blob.bin":   {Mode: 0o644, Data: plBlob()},
		"@/var/lib/powerloss/data.txt":        {Mode: 0o644, Data: []byte(plVarTxt)},
		"@/var/lib/provision/instance-id":     {Mode: 0o644, Data: []byte(plInstanceID + "\n")},
		"@/home/alice/.profile":               {Mode: 0o644, Data: []byte("\n")},
	}
	newTop := t.TempDir()
	if err := complete.WriteDir(newTop); err != nil {
		t.Fatal(err)
	}
	homeless := maps.Clone(complete)
	delete(homeless, "@/home/alice/.profile")
	homelessTop := t.TempDir()
	if err := homeless.WriteDir(homelessTop); err != nil {
		t.Fatal(err)
	}
	emptyTop := t.TempDir()

	c := &plChecker{before: &plBefore{oldID: 257, oldRoot: oldRoot, subvols: []string{"@", "@/.snapshots", oldRoot, "@/var", "@/home"}, digest: before}}
	oldDefault := Subvolume{ID: 257, Path: oldRoot}
	newDefault := Subvolume{ID: 300, Path: newRoot}
	for _, tc := range []struct {
		name       string
		top        string
		def        Subvolume
		raw, after map[string]string
		recoverErr error
		state      string
		problem    string // "" for none
	}{
		{"untouched", emptyTop, oldDefault, before, before, nil, "old", ""},
		{"open transaction rolled back", emptyTop, oldDefault, with(with(before, stateDir), snap2), before, nil, "recovered-to-old", ""},
		{"the run's /var writes undone", emptyTop, oldDefault, with(with(before, stateDir), varWrite), before, nil, "recovered-to-old-var-undone", ""},
		{"the run's /var writes left by recovery", emptyTop, oldDefault, with(with(before, stateDir), varWrite), with(before, varWrite), nil, "recovered-to-old-var-undone", "subvolume @/var changed"},
		{"/var written with no state to undo it", emptyTop, oldDefault, with(before, varWrite), with(before, varWrite), nil, "recovered-to-old-var-undone", "no transaction state"},
		{"the new snapshot left by recovery", emptyTop, oldDefault, with(with(before, stateDir), snap2), with(before, snap2), nil, "recovered-to-old", "not as before the boot"},
		{"state left by recovery", emptyTop, oldDefault, with(before, stateDir), with(before, stateDir), nil, "recovered-to-old", "recovery leaves .provision"},
		{"recovery failed", emptyTop, oldDefault, with(before, stateDir), before, errors.New("EIO"), "recovered-to-old", "recovery fails: EIO"},
		{"committed", newTop, newDefault, with(before, snap2), with(before, snap2), nil, "new", ""},
		{"committed, finished by recovery", newTop, newDefault, with(with(before, snap2), stateDir), with(before, snap2), nil, "new-finished-by-recovery", ""},
		{"committed without the home", homelessTop, newDefault, with(before, snap2), with(before, snap2), nil, "new", "home"},
		{"committed without /var", emptyTop, newDefault, with(before, snap2), with(before, snap2), nil, "new", "/var is not the run's"},
	} {
		in := &Inspection{Top: tc.top, Default: tc.def}
		state, problems := c.judgeRecovered(tc.top, in, tc.raw, tc.after, tc.recoverErr)
		checkJudged(t, tc.name, state, tc.state, problems, tc.problem)
	}
}

// TestPlUserDataScripts: the program-free seed has no program key at all
// (any would take the snapshotted-/var path), the other has its runcmd,
// and both write the same files.
func TestPlUserDataScripts(t *testing.T) {
	with, without := plUserData(true), plUserData(false)
	for _, key := range []string{"runcmd:", "bootcmd:", "packages:", "scripts"} {
		if strings.Contains(without, key) {
			t.Errorf("the program-free seed has %q:\n%s", key, without)
		}
	}
	if !strings.Contains(with, "runcmd:") {
		t.Errorf("the scripts seed has no runcmd:\n%s", with)
	}
	if !strings.HasPrefix(with, without) {
		t.Errorf("the seeds differ in more than the runcmd")
	}
}
