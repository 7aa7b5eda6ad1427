package bootentry

import (
	"bytes"
	"os"
	"reflect"
	"strings"
	"testing"
)

const sampleEntry = `# Type #1 entry of the image build (test fixture)
title      openSUSE MicroOS 20240612 (Initial Installation)
version    1@6.9.1-1-default
sort-key   opensuse-microos
options    security=selinux selinux=1 quiet
options	root=UUID=5d1f3b0c-8a8e-4b0e-9d43-1c2f3e4a5b6c   rootflags=subvol=@/.snapshots/1/snapshot
x-custom   keep me
linux      /opensuse-microos/6.9.1-1-default/linux-3f4e
initrd     /opensuse-microos/6.9.1-1-default/microcode
initrd     /opensuse-microos/6.9.1-1-default/initrd-9a8b

`

func TestParseEntryKeepsEverything(t *testing.T) {
	e, err := ParseEntry("sample.conf", []byte(sampleEntry))
	if err != nil {
		t.Fatal(err)
	}
	if got := e.Bytes(); string(got) != sampleEntry {
		t.Errorf("unchanged entry not written back byte for byte:\n%s", got)
	}
	want := []Field{
		{"title", "openSUSE MicroOS 20240612 (Initial Installation)"},
		{"version", "1@6.9.1-1-default"},
		{"sort-key", "opensuse-microos"},
		{"options", "security=selinux selinux=1 quiet"},
		{"options", "root=UUID=5d1f3b0c-8a8e-4b0e-9d43-1c2f3e4a5b6c   rootflags=subvol=@/.snapshots/1/snapshot"},
		{"x-custom", "keep me"},
		{"linux", "/opensuse-microos/6.9.1-1-default/linux-3f4e"},
		{"initrd", "/opensuse-microos/6.9.1-1-default/microcode"},
		{"initrd", "/opensuse-microos/6.9.1-1-default/initrd-9a8b"},
	}
	if got := e.Fields(); !reflect.DeepEqual(got, want) {
		t.Errorf("Fields = %q\nwant %q", got, want)
	}
	if got := e.Values("initrd"); len(got) != 2 {
		t.Errorf("initrd = %q", got)
	}
	if got := e.Options(); got != "security=selinux selinux=1 quiet root=UUID=5d1f3b0c-8a8e-4b0e-9d43-1c2f3e4a5b6c   rootflags=subvol=@/.snapshots/1/snapshot" {
		t.Errorf("Options = %q", got)
	}
	root, sub, ok := e.rootParams()
	if root != "UUID=5d1f3b0c-8a8e-4b0e-9d43-1c2f3e4a5b6c" || sub != "@/.snapshots/1/snapshot" || !ok {
		t.Errorf("rootParams = %q %q %v", root, sub, ok)
	}
}

func TestParseEntryErrorsNameFileAndLine(t *testing.T) {
	for _, tc := range []struct {
		name, data, want string
	}{
		{"nul", "title a\nversion 1\x00\n", "x.conf:2: NUL byte"},
		{"control", "title a\n\n\x1b[31mred\n", "x.conf:3: control character U+001B"},
		{"utf8", "title \xff\xfe\n", "x.conf:1: not valid UTF-8"},
		{"cr-inside", "title a\rb\n", "x.conf:1: control character U+000D"},
		{"huge", strings.Repeat("options a\n", MaxFileSize/10+1), "x.conf: larger than 65536 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseEntry("x.conf", []byte(tc.data))
			if err == nil || err.Error() != tc.want {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestParseEntryCRLFAndNoFinalNewline(t *testing.T) {
	e, err := ParseEntry("x", []byte("title a b \r\nlinux /k"))
	if err != nil {
		t.Fatal(err)
	}
	if e.Get("title") != "a b" || e.Get("linux") != "/k" {
		t.Errorf("fields = %q", e.Fields())
	}
	if got := string(e.Bytes()); got != "title a b \nlinux /k\n" {
		t.Errorf("Bytes = %q", got)
	}
}

func TestEntrySet(t *testing.T) {
	e, _ := ParseEntry("x", []byte("title a\nversion 1\ntitle b\n# c\n"))
	if err := e.Set("title", "new"); err != nil {
		t.Fatal(err)
	}
	if err := e.Set("sort-key", "opensuse"); err != nil {
		t.Fatal(err)
	}
	if err := e.Set("machine-id", "0123"); err != nil {
		t.Fatal(err)
	}
	want := "title      new\nversion 1\n# c\nsort-key   opensuse\nmachine-id 0123\n"
	if got := string(e.Bytes()); got != want {
		t.Errorf("Bytes = %q, want %q", got, want)
	}
	for _, bad := range [][2]string{{"", "v"}, {"a b", "v"}, {"#x", "v"}, {"k", "a\nb"}, {"k", "\x00"}} {
		if err := e.Set(bad[0], bad[1]); err == nil {
			t.Errorf("Set(%q, %q) accepted", bad[0], bad[1])
		}
	}
}

func TestSetSubvol(t *testing.T) {
	for _, tc := range []struct {
		name, in, sub, want string
	}{
		{"replace", "options a rootflags=subvol=@/.snapshots/1/snapshot b\n", "@/.snapshots/2/snapshot",
			"options    a rootflags=subvol=@/.snapshots/2/snapshot b\n"},
		{"other flags kept, subvolid dropped", "options rootflags=compress=zstd,subvolid=256,subvol=/@/.snapshots/1/snapshot quiet\n", "/@/.snapshots/2/snapshot",
			"options    rootflags=compress=zstd,subvol=/@/.snapshots/2/snapshot quiet\n"},
		{"several lines", "options a\noptions rootflags=subvol=@/.snapshots/1/snapshot\noptions b\n", "@/.snapshots/2/snapshot",
			"options a\noptions    rootflags=subvol=@/.snapshots/2/snapshot\noptions b\n"},
		{"appended to last options line", "options a\noptions b root=UUID=x\nlinux /k\n", "@/.snapshots/2/snapshot",
			"options a\noptions    b root=UUID=x rootflags=subvol=@/.snapshots/2/snapshot\nlinux /k\n"},
		{"added to rootflags", "options rootflags=compress=zstd quiet\n", "@/.snapshots/2/snapshot",
			"options    rootflags=compress=zstd,subvol=@/.snapshots/2/snapshot quiet\n"},
		{"empty rootflags", "options rootflags= quiet\n", "@/.snapshots/2/snapshot",
			"options    rootflags=subvol=@/.snapshots/2/snapshot quiet\n"},
		{"no options", "linux /k\n", "@/.snapshots/2/snapshot",
			"linux /k\noptions    rootflags=subvol=@/.snapshots/2/snapshot\n"},
		{"quoted word untouched", "options a=\"x rootflags=subvol=no\" rootflags=subvol=@/.snapshots/1/snapshot\n", "@/.snapshots/2/snapshot",
			"options    a=\"x rootflags=subvol=no\" rootflags=subvol=@/.snapshots/2/snapshot\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := ParseEntry("x", []byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if err := e.setSubvol(tc.sub); err != nil {
				t.Fatal(err)
			}
			if got := string(e.Bytes()); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
			if _, sub, ok := e.rootParams(); !ok || sub != tc.sub {
				t.Errorf("rootParams subvol = %q %v", sub, ok)
			}
		})
	}
}

func TestLoaderConf(t *testing.T) {
	in := "# comment\ntimeout 5\ndefault\told.conf\neditor no\ndefault other.conf\n"
	c, err := ParseLoaderConf("loader.conf", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if c.Default() != "other.conf" || c.Timeout() != "5" {
		t.Errorf("Default %q Timeout %q", c.Default(), c.Timeout())
	}
	if err := c.SetDefault("new-2.conf"); err != nil {
		t.Fatal(err)
	}
	if got, want := string(c.Bytes()), "# comment\ntimeout 5\ndefault new-2.conf\neditor no\n"; got != want {
		t.Errorf("got %q want %q", got, want)
	}
	c, _ = ParseLoaderConf("loader.conf", nil)
	c.SetDefault("a.conf")
	if got := string(c.Bytes()); got != "default a.conf\n" {
		t.Errorf("new file %q", got)
	}
	if err := c.SetDefault("a b"); err == nil {
		t.Error("id with a blank accepted")
	}
	c.RemoveDefault()
	if len(c.Bytes()) != 0 {
		t.Errorf("after RemoveDefault %q", c.Bytes())
	}
}

func TestCompareVersions(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"2@6.10.2-1-default", "2@6.9.1-1-default", 1},
		{"6.9.1-1-default", "6.9.1-1-default", 0},
		{"6.9.1-2-default", "6.9.1-10-default", -1},
		{"123~rc1", "123", -1},
		{"123", "123.1", -1},
		{"123-9", "123.1-1", -1},
		{"00123", "123", 0},
		{"abc", "abcde", -1},
		{"1a", "1", 1},
		{"1.a", "1.1", -1},
		{"", "", 0},
		{"_1", "1", 0},
		{"1^1", "1.1", -1},
		{"1-", "1-a", -1},
	} {
		if got := compareVersions(tc.a, tc.b); sign(got) != tc.want {
			t.Errorf("compareVersions(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := compareVersions(tc.b, tc.a); sign(got) != -tc.want {
			t.Errorf("compareVersions(%q, %q) = %d, want %d", tc.b, tc.a, got, -tc.want)
		}
	}
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

func TestEntryID(t *testing.T) {
	for name, want := range map[string]string{
		"opensuse-microos-6.9.1-1-default-2.conf":     "opensuse-microos-6.9.1-1-default-2.conf",
		"opensuse-microos-6.9.1-1-default-2+3.conf":   "opensuse-microos-6.9.1-1-default-2.conf",
		"opensuse-microos-6.9.1-1-default-2+2-1.conf": "opensuse-microos-6.9.1-1-default-2.conf",
		"opensuse-microos-6.9.1-1-default-2+0-3.CONF": "opensuse-microos-6.9.1-1-default-2.conf",
		"a+b.conf":   "a+b.conf",
		"a+1-x.conf": "a+1-x.conf",
		"k+1.efi":    "k+1.efi",
		"x+1+2.conf": "x+1.conf",
		"opensuse-microos-6.9.0+-1-default-2+3.conf":          "opensuse-microos-6.9.0+-1-default-2.conf",
		"opensuse-microos-6.9.1-1-default-2+99999999999.conf": "opensuse-microos-6.9.1-1-default-2+99999999999.conf",
	} {
		if got := EntryID(name); got != want {
			t.Errorf("EntryID(%q) = %q, want %q", name, got, want)
		}
	}
}

// FuzzParseEntry: the parser never panics, and parse -> write -> parse gives
// the same fields and the same bytes again.
func FuzzParseEntry(f *testing.F) {
	f.Add([]byte(sampleEntry))
	f.Add([]byte("title a\r\nversion 1@6\n\n#\n  options x  \t\n"))
	f.Add([]byte("\n\n"))
	f.Add([]byte{})
	if data, err := os.ReadFile("testdata/esp-microos/loader/entries/opensuse-microos-6.9.1-1-default-1.conf"); err == nil {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := ParseEntry("fuzz.conf", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.conf") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		out := e.Bytes()
		e2, err := ParseEntry("fuzz.conf", out)
		if err != nil {
			t.Fatalf("written entry does not parse: %v\n%q", err, out)
		}
		if !reflect.DeepEqual(e.Fields(), e2.Fields()) {
			t.Fatalf("fields changed:\n%q\n%q", e.Fields(), e2.Fields())
		}
		if out2 := e2.Bytes(); !bytes.Equal(out, out2) {
			t.Fatalf("not stable:\n%q\n%q", out, out2)
		}
		// The edits AddSnapshot makes keep the entry parseable.
		e3 := e.Clone()
		if err := e3.setSubvol("@/.snapshots/2/snapshot"); err != nil {
			if !strings.Contains(err.Error(), "unbalanced double quote") {
				t.Fatal(err)
			}
			return
		}
		if err := e3.Set("version", "2@6.9"); err != nil {
			t.Fatal(err)
		}
		if _, err := ParseEntry("fuzz.conf", e3.Bytes()); err != nil && len(e3.Bytes()) <= MaxFileSize {
			t.Fatalf("edited entry does not parse: %v", err)
		}
		if _, sub, ok := e3.rootParams(); !ok || sub != "@/.snapshots/2/snapshot" {
			t.Fatalf("subvol after setSubvol = %q %v in %q", sub, ok, e3.Bytes())
		}
	})
}
