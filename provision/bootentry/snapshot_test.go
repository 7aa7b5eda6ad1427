package bootentry

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/golden")

const (
	k1    = "6.9.1-1-default"
	k2    = "6.10.2-1-default"
	uuidR = "5d1f3b0c-8a8e-4b0e-9d43-1c2f3e4a5b6c"
)

func microosLoader() *Loader {
	return &Loader{
		Type: SystemdBoot, EntryToken: "opensuse-microos", Tries: "3",
		ESPMount: "/boot/efi", ESPSpec: "UUID=1A2B-3C4D", RootSpec: "UUID=" + uuidR, OSName: "opensuse",
	}
}

func golden(t *testing.T, name string, got string) {
	t.Helper()
	p := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs:\n--- got\n%s--- want\n%s", name, got, want)
	}
}

func TestAddSnapshotMicroOS(t *testing.T) {
	esp := copyTree(t, "esp-microos")
	before := tree(t, esp)
	c, err := AddSnapshot(esp, microosLoader(), 1, 2, "@")
	if err != nil {
		t.Fatal(err)
	}
	wantCreated := []string{
		"loader/entries/opensuse-microos-" + k2 + "-2+3.conf",
		"loader/entries/opensuse-microos-" + k1 + "-2+3.conf",
	}
	if !reflect.DeepEqual(c.Created, wantCreated) {
		t.Errorf("Created = %q\nwant %q", c.Created, wantCreated)
	}
	if c.OldDefault != "opensuse-microos-"+k2+"-1.conf" || c.NewDefault != "opensuse-microos-"+k2+"-2.conf" {
		t.Errorf("defaults %q -> %q", c.OldDefault, c.NewDefault)
	}
	if len(c.Existing) != 0 || len(c.Skipped) != 0 || !c.DefaultChanged || c.DefaultFileCreated || c.EFIVar != "" {
		t.Errorf("change = %+v", c)
	}
	after := tree(t, esp)
	for _, rel := range wantCreated {
		golden(t, filepath.Base(rel), after[rel])
	}
	golden(t, "loader.conf", after["loader/loader.conf"])
	// The old entries are kept as they were; nothing else changed.
	for rel, content := range before {
		if rel == "loader/loader.conf" {
			continue
		}
		if after[rel] != content {
			t.Errorf("%s changed", rel)
		}
	}
	if len(after) != len(before)+2 {
		t.Errorf("files: %d before, %d after", len(before), len(after))
	}
	got, err := FindEntries(esp, microosLoader(), 2, "@")
	if err != nil || !reflect.DeepEqual(got, wantCreated) {
		t.Errorf("FindEntries = %q, %v", got, err)
	}

	// Idempotent: a second run creates nothing and changes nothing.
	c2, err := AddSnapshot(esp, microosLoader(), 1, 2, "@")
	if err != nil {
		t.Fatal(err)
	}
	if len(c2.Created) != 0 || len(c2.Existing) != 2 || c2.DefaultChanged || c2.NewDefault != c.NewDefault || c2.OldDefault != c.NewDefault {
		t.Errorf("second run: %+v", c2)
	}
	if !reflect.DeepEqual(tree(t, esp), after) {
		t.Error("second run changed the ESP")
	}
	// Undoing the second run leaves the first run's work.
	if err := Undo(esp, c2); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(tree(t, esp), after) {
		t.Error("undoing a no-op run changed the ESP")
	}
	// Undoing the first run restores the ESP exactly.
	if err := Undo(esp, c); err != nil {
		t.Fatal(err)
	}
	if got := tree(t, esp); !reflect.DeepEqual(got, before) {
		t.Errorf("after Undo:\n%q\nwant\n%q", keys(got), keys(before))
	}
}

func keys(m map[string]string) []string {
	var k []string
	for s := range m {
		k = append(k, s)
	}
	slices.Sort(k)
	return k
}

func TestAddSnapshotMissingLoaderConfAndNoTries(t *testing.T) {
	esp := copyTree(t, "esp-microos")
	os.Remove(filepath.Join(esp, "loader/loader.conf"))
	l := microosLoader()
	l.Tries = ""
	c, err := AddSnapshot(esp, l, 1, 2, "@")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(c.Created, "loader/entries/opensuse-microos-"+k1+"-2.conf") {
		t.Errorf("Created = %q", c.Created)
	}
	data, _ := os.ReadFile(filepath.Join(esp, "loader/loader.conf"))
	if string(data) != "default opensuse-microos-"+k2+"-2.conf\n" || !c.DefaultFileCreated || c.OldDefault != "" {
		t.Errorf("loader.conf %q, change %+v", data, c)
	}
	if err := Undo(esp, c); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(esp, "loader/loader.conf")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("loader.conf created by AddSnapshot survived Undo: %v", err)
	}
}

// Entries as other tools write them: leading slash in subvol=, options over
// several lines, a machine-id line, an entry without rootflags, and an
// entry of another installation sharing the ESP.
func TestAddSnapshotVariants(t *testing.T) {
	esp := t.TempDir()
	kern := "/opensuse-microos/" + k1 + "/linux-aa"
	writeFiles(t, esp, map[string]string{
		"opensuse-microos/" + k1 + "/linux-aa": "k",
		"loader/entries/opensuse-microos-" + k1 + "-5.conf": "title      openSUSE MicroOS\n" +
			"version    5@" + k1 + "\n" +
			"machine-id 0123456789abcdef0123456789abcdef\n" +
			"sort-key   opensuse-microos\n" +
			"options    quiet\n" +
			"options    root=UUID=" + uuidR + "\n" +
			"options    rootflags=subvol=/@/.snapshots/5/snapshot,compress=zstd splash\n" +
			"linux      " + kern + "\n" +
			"initrd     /opensuse-microos/" + k1 + "/initrd-bb\n",
		// Another system with the same layout on the same ESP: not ours.
		"loader/entries/opensuse-microos-" + k1 + "-5-other.conf": "title other\nversion 5@" + k1 + "\noptions root=UUID=00000000-1111-2222-3333-444444444444 rootflags=subvol=@/.snapshots/5/snapshot\nlinux " + kern + "\n",
		// A hand-made entry for snapshot 5 without rootflags, known by its name.
		"opensuse-microos/6.1.0-lts/linux-cc":              "k",
		"loader/entries/opensuse-microos-6.1.0-lts-5.conf": "title lts\nlinux /opensuse-microos/6.1.0-lts/linux-cc\noptions root=UUID=" + uuidR + " quiet\n",
		// Unrelated junk is skipped, not fatal.
		"loader/entries/windows.conf":      "title Windows\nefi /EFI/Microsoft/Boot/bootmgfw.efi\n",
		"loader/entries/junk.conf":         "\x00\x01\x02binary",
		"loader/entries/huge-for-3.conf":   strings.Repeat("options x\n", 10000),
		"loader/entries/notes.txt":         "ignored",
		"loader/entries/.hidden-5.conf":    "title hidden\n",
		"loader/entries/bad\nname-5.conf":  "title evil\n",
		"loader/loader.conf":               "timeout 3\n",
		"loader/entries/sub/nested-5.conf": "title nested\n",
	})
	l := microosLoader()
	l.Tries = ""
	c, err := AddSnapshot(esp, l, 5, 6, "@")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"loader/entries/opensuse-microos-6.1.0-lts-6.conf",
		"loader/entries/opensuse-microos-" + k1 + "-6.conf",
	}
	if !reflect.DeepEqual(c.Created, want) {
		t.Errorf("Created = %q", c.Created)
	}
	after := tree(t, esp)
	golden(t, "variants-"+k1+"-6.conf", after[want[1]])
	golden(t, "variants-lts-6.conf", after[want[0]])
	if c.NewDefault != "opensuse-microos-"+k1+"-6.conf" {
		// The sort-key entry comes before the one without (systemd order).
		t.Errorf("NewDefault = %q", c.NewDefault)
	}
	skipped := strings.Join(c.Skipped, "\n")
	for _, s := range []string{"junk.conf:1: NUL byte", "huge-for-3.conf: larger than", "hidden-5.conf", `"bad\nname-5.conf"`} {
		if !strings.Contains(skipped, s) {
			t.Errorf("Skipped does not mention %q:\n%s", s, skipped)
		}
	}
	if strings.Contains(skipped, "windows") {
		t.Errorf("a valid unrelated entry reported as skipped:\n%s", skipped)
	}
	if err := Undo(esp, c); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(esp, "loader/loader.conf"))
	if string(data) != "timeout 3\n" {
		t.Errorf("loader.conf after Undo %q", data)
	}
}

func TestAddSnapshotRefuses(t *testing.T) {
	for _, tc := range []struct {
		name    string
		edit    func(t *testing.T, esp string)
		old     uint64
		wantErr string
	}{
		{name: "no entry for the old snapshot", old: 4,
			wantErr: "loader/entries: no boot entry for snapshot 4 (rootflags=subvol=@/.snapshots/4/snapshot)"},
		{name: "no entries directory", old: 1,
			edit:    func(t *testing.T, esp string) { os.RemoveAll(filepath.Join(esp, "loader/entries")) },
			wantErr: "no such file or directory"},
		{name: "old snapshot's entry is binary junk", old: 1,
			edit: func(t *testing.T, esp string) {
				writeFiles(t, esp, map[string]string{"loader/entries/opensuse-microos-" + k1 + "-1.conf": "title ok\n\xff\xfe\x00junk"})
			},
			wantErr: "opensuse-microos-" + k1 + "-1.conf:2: not valid UTF-8"},
		{name: "old snapshot's entry is huge", old: 1,
			edit: func(t *testing.T, esp string) {
				writeFiles(t, esp, map[string]string{"loader/entries/opensuse-microos-" + k1 + "-1.conf": strings.Repeat("#", MaxFileSize+1)})
			},
			wantErr: "opensuse-microos-" + k1 + "-1.conf: larger than 65536 bytes"},
		{name: "kernels missing from the ESP", old: 1,
			edit:    func(t *testing.T, esp string) { os.RemoveAll(filepath.Join(esp, "opensuse-microos")) },
			wantErr: "no usable boot entry for snapshot 1"},
		{name: "kernel path climbing out of the ESP", old: 1,
			edit: func(t *testing.T, esp string) {
				os.RemoveAll(filepath.Join(esp, "loader/entries"))
				writeFiles(t, esp, map[string]string{
					"loader/entries/opensuse-microos-" + k1 + "-1.conf": "title x\nversion 1@../../../etc\noptions rootflags=subvol=@/.snapshots/1/snapshot\nlinux /../../../../../../bin/sh\n",
				})
			},
			wantErr: "linux /../../../../../../bin/sh is not on the ESP"},
		{name: "kernel version from the entry is a path", old: 1,
			edit: func(t *testing.T, esp string) {
				os.RemoveAll(filepath.Join(esp, "loader/entries"))
				writeFiles(t, esp, map[string]string{
					"loader/entries/hand-made.conf": "title x\nversion 1@../../x\noptions rootflags=subvol=@/.snapshots/1/snapshot\nlinux /k/../linux\n",
					"linux":                         "k",
				})
			},
			wantErr: "hand-made.conf: cannot tell which kernel this entry of snapshot 1 boots"},
		{name: "new name taken by an entry of another snapshot", old: 1,
			edit: func(t *testing.T, esp string) {
				writeFiles(t, esp, map[string]string{"loader/entries/opensuse-microos-" + k1 + "-2.conf": "title x\noptions rootflags=subvol=@/.snapshots/7/snapshot\n"})
			},
			wantErr: "opensuse-microos-" + k1 + "-2.conf: already exists and does not boot snapshot 2"},
		{name: "same snapshot", old: 2, wantErr: "need two different snapshot numbers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			esp := copyTree(t, "esp-microos")
			if tc.edit != nil {
				tc.edit(t, esp)
			}
			before := tree(t, esp)
			_, err := AddSnapshot(esp, microosLoader(), tc.old, 2, "@")
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v\nwant it to contain %q", err, tc.wantErr)
			}
			if !reflect.DeepEqual(tree(t, esp), before) {
				t.Error("a refused AddSnapshot left changes behind")
			}
		})
	}
	if _, err := AddSnapshot(t.TempDir(), nil, 1, 2, "@"); err == nil {
		t.Error("nil loader accepted")
	}
	if _, err := AddSnapshot(t.TempDir(), microosLoader(), 1, 2, "@/../x"); err == nil {
		t.Error("prefix with .. accepted")
	}
}

// A snapper plugin (sdbootutil's) already wrote an entry for the new
// snapshot, with a regenerated initrd: it is kept and made the default.
func TestAddSnapshotPluginAlreadyWroteEntry(t *testing.T) {
	esp := copyTree(t, "esp-microos")
	plugin := "title      openSUSE MicroOS 20240612\nversion    2@" + k2 + "\nsort-key   opensuse-microos\n" +
		"options    quiet root=UUID=" + uuidR + " rootflags=subvol=@/.snapshots/2/snapshot\n" +
		"linux      /opensuse-microos/" + k2 + "/linux-0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d\n" +
		"initrd     /opensuse-microos/" + k2 + "/initrd-regenerated\n"
	name := "loader/entries/opensuse-microos-" + k2 + "-2.conf"
	writeFiles(t, esp, map[string]string{name: plugin})
	c, err := AddSnapshot(esp, microosLoader(), 1, 2, "@")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Existing, []string{name}) || !reflect.DeepEqual(c.Created, []string{"loader/entries/opensuse-microos-" + k1 + "-2+3.conf"}) {
		t.Errorf("Existing %q Created %q", c.Existing, c.Created)
	}
	if data, _ := os.ReadFile(filepath.Join(esp, name)); string(data) != plugin {
		t.Error("the plugin's entry was rewritten")
	}
	if c.NewDefault != "opensuse-microos-"+k2+"-2.conf" {
		t.Errorf("NewDefault = %q", c.NewDefault)
	}
	if err := Undo(esp, c); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(esp, name)); err != nil {
		t.Error("Undo removed an entry it did not create")
	}
}

// Undo after somebody edited loader.conf: only the default line goes back.
func TestUndoAfterLoaderConfEdited(t *testing.T) {
	esp := copyTree(t, "esp-microos")
	c, err := AddSnapshot(esp, microosLoader(), 1, 2, "@")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(esp, "loader/loader.conf")
	data, _ := os.ReadFile(p)
	os.WriteFile(p, append(data, "editor no\n"...), 0o644)
	if err := Undo(esp, c); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p)
	want := "# systemd-boot settings\ntimeout 5\ndefault opensuse-microos-" + k2 + "-1.conf\n#console-mode keep\neditor no\n"
	if string(got) != want {
		t.Errorf("loader.conf = %q\nwant %q", got, want)
	}
}

func TestUndoRefusesHostilePaths(t *testing.T) {
	esp := t.TempDir()
	victim := filepath.Join(filepath.Dir(esp), "victim.conf")
	os.WriteFile(victim, []byte("x"), 0o644)
	err := Undo(esp, Change{
		Created:        []string{"loader/entries/../../../victim.conf", "/etc/passwd"},
		DefaultChanged: true, DefaultFile: "../victim.conf",
		EFIVar: victim,
	})
	if err == nil {
		t.Fatal("hostile Change accepted")
	}
	if _, serr := os.Stat(victim); serr != nil {
		t.Errorf("Undo touched a file outside the ESP: %v (%v)", serr, err)
	}
}

func TestAddSnapshotGrub2BLS(t *testing.T) {
	esp := copyTree(t, "esp-microos")
	os.MkdirAll(filepath.Join(esp, "EFI/opensuse"), 0o755)
	l := microosLoader()
	l.Type = Grub2BLS
	c, err := AddSnapshot(esp, l, 1, 2, "@")
	if err != nil {
		t.Fatal(err)
	}
	env, _ := os.ReadFile(filepath.Join(esp, "EFI/opensuse/grubenv"))
	if len(env) != 1024 || !bytes.HasPrefix(env, []byte("# GRUB Environment Block\ndefault=opensuse-microos-"+k2+"-2.conf\n#")) {
		t.Errorf("grubenv = %q", env)
	}
	if c.DefaultFile != "EFI/opensuse/grubenv" || !c.DefaultFileCreated {
		t.Errorf("change %+v", c)
	}
	// An existing block keeps its other variables.
	os.WriteFile(filepath.Join(esp, "EFI/opensuse/grubenv"), []byte("# GRUB Environment Block\ntimeout=8\ndefault=old.conf\n"+strings.Repeat("#", 979)), 0o644)
	if err := Undo(esp, c); err != nil {
		t.Fatal(err)
	}
	c, err = AddSnapshot(esp, l, 1, 2, "@")
	if err != nil {
		t.Fatal(err)
	}
	env, _ = os.ReadFile(filepath.Join(esp, "EFI/opensuse/grubenv"))
	if !bytes.HasPrefix(env, []byte("# GRUB Environment Block\ntimeout=8\ndefault=opensuse-microos-"+k2+"-2.conf\n#")) || len(env) != 1024 || c.OldDefault != "old.conf" {
		t.Errorf("grubenv = %q, old %q", env, c.OldDefault)
	}
	if err := Undo(esp, c); err != nil {
		t.Fatal(err)
	}
	env, _ = os.ReadFile(filepath.Join(esp, "EFI/opensuse/grubenv"))
	if grubenvGet(env, "default") != "old.conf" {
		t.Errorf("after Undo grubenv = %q", env)
	}
}

func TestAddSnapshotEFIVar(t *testing.T) {
	esp := copyTree(t, "esp-microos")
	vars := t.TempDir()
	l := microosLoader()
	l.EFIVars = vars
	// Absent variable: not created.
	c, err := AddSnapshot(esp, l, 1, 2, "@")
	if err != nil {
		t.Fatal(err)
	}
	if c.EFIVar != "" {
		t.Errorf("EFIVar = %q", c.EFIVar)
	}
	if _, err := os.Stat(filepath.Join(vars, LoaderEntryDefaultVar)); err == nil {
		t.Error("LoaderEntryDefault created")
	}
	if err := Undo(esp, c); err != nil {
		t.Fatal(err)
	}

	p := filepath.Join(vars, LoaderEntryDefaultVar)
	old := EncodeEFIString("opensuse-microos-" + k2 + "-1.conf")
	os.WriteFile(p, old, 0o644)
	c, err = AddSnapshot(esp, l, 1, 2, "@")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p)
	want := EncodeEFIString("opensuse-microos-" + k2 + "-2.conf")
	if !bytes.Equal(got, want) || c.EFIVar != p || c.OldEFIDefault != "opensuse-microos-"+k2+"-1.conf" {
		t.Errorf("variable %q, change %+v", got, c)
	}
	if err := Undo(esp, c); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p); !bytes.Equal(got, old) {
		t.Errorf("after Undo %q", got)
	}
}

func TestTopEntryOrder(t *testing.T) {
	mk := func(name, body string) candidate {
		e, err := ParseEntry(name, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		return candidate{name, e}
	}
	cands := []candidate{
		mk("a-6.9.1-2.conf", "sort-key a\nversion 2@6.9.1\n"),
		mk("a-6.10.0-2+0-3.conf", "sort-key a\nversion 2@6.12.0\n"), // no tries left: last
		mk("a-6.10.0-2+3.conf", "sort-key a\nversion 2@6.10.0\n"),
		mk("z-7.0-2.conf", "version 2@7.0\n"), // no sort-key: after those with one
	}
	slices.SortStableFunc(cands, compareCandidates)
	var got []string
	for _, c := range cands {
		got = append(got, c.name)
	}
	want := []string{"a-6.10.0-2+3.conf", "a-6.9.1-2.conf", "z-7.0-2.conf", "a-6.10.0-2+0-3.conf"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("order %q\nwant %q", got, want)
	}
	if topEntry(cands).name != want[0] {
		t.Error("topEntry")
	}
}

func TestSameRoot(t *testing.T) {
	for _, tc := range []struct {
		entry, fstab string
		want         bool
	}{
		{"UUID=abc", "UUID=ABC", true},
		{"UUID=abc", "UUID=def", false},
		{"uuid=abc", "UUID=def", false},
		{"PARTUUID=1", "PARTUUID=2", false},
		{"LABEL=ROOT", "LABEL=ROOT", true},
		{"LABEL=ROOT", "LABEL=root", false},
		{"/dev/mapper/cr_root", "/dev/mapper/cr_root", true},
		{"/dev/mapper/cr_root", "/dev/vda3", false},
		{"/dev/mapper/cr_root", "UUID=abc", true}, // different kinds: cannot tell
		{"UUID=abc", "LABEL=ROOT", true},
		{"", "UUID=abc", true},
		{"UUID=abc", "", true},
	} {
		if got := sameRoot(tc.entry, tc.fstab); got != tc.want {
			t.Errorf("sameRoot(%q, %q) = %v", tc.entry, tc.fstab, got)
		}
	}
}

// An entry found by its rootflags whose file name does not follow the
// <token>-<kver>-<N>.conf pattern gets a name in that pattern.
func TestAddSnapshotHandMadeName(t *testing.T) {
	esp := t.TempDir()
	writeFiles(t, esp, map[string]string{
		"EFI/k/linux": "k",
		"loader/entries/my-microos.conf": "title      openSUSE MicroOS (Initial Installation)\nversion    1@" + k1 + "\n" +
			"options    root=UUID=" + uuidR + " rootflags=subvol=@/.snapshots/1/snapshot\nlinux      /EFI/k/linux\n",
	})
	c, err := AddSnapshot(esp, microosLoader(), 1, 2, "@")
	if err != nil {
		t.Fatal(err)
	}
	name := "loader/entries/opensuse-microos-" + k1 + "-2+3.conf"
	if !reflect.DeepEqual(c.Created, []string{name}) || c.NewDefault != "opensuse-microos-"+k1+"-2.conf" {
		t.Fatalf("change %+v", c)
	}
	data, _ := os.ReadFile(filepath.Join(esp, name))
	want := "title      openSUSE MicroOS\nversion    2@" + k1 + "\n" +
		"options    root=UUID=" + uuidR + " rootflags=subvol=@/.snapshots/2/snapshot\nlinux      /EFI/k/linux\n"
	if string(data) != want {
		t.Errorf("entry %q\nwant %q", data, want)
	}
}

func TestSnapshotSubvol(t *testing.T) {
	for prefix, want := range map[string]string{
		"@": "@/.snapshots/3/snapshot", "/@/": "@/.snapshots/3/snapshot", "": ".snapshots/3/snapshot", ".": ".snapshots/3/snapshot",
	} {
		if got, err := snapshotSubvol(prefix, 3); err != nil || got != want {
			t.Errorf("snapshotSubvol(%q) = %q, %v", prefix, got, err)
		}
	}
}
