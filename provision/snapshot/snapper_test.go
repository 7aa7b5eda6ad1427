package snapshot

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

// testdata/info.xml was written by snapper 0.10.4 (`snapper --no-dbus create
// -t single -d "provision first boot" -c number -u important=yes`).
func TestSnapperInfoMatchesSnapper(t *testing.T) {
	want, err := os.ReadFile("testdata/info.xml")
	if err != nil {
		t.Fatal(err)
	}
	info := snapperInfo{
		Type: "single", Num: 2,
		Date:        time.Date(2026, 11, 22, 3, 11, 51, 0, time.UTC),
		Description: "provision first boot", Cleanup: "number",
		Userdata: []kv{{"important", "yes"}},
	}
	if got := info.marshal(); !bytes.Equal(got, want) {
		t.Errorf("marshal differs from snapper's file:\n%s\nwant:\n%s", got, want)
	}
	parsed, err := parseSnapperInfo("testdata/info.xml", want)
	if err != nil {
		t.Fatal(err)
	}
	if got := parsed.marshal(); !bytes.Equal(got, want) {
		t.Errorf("round trip differs:\n%s", got)
	}
}

func TestSnapperMarker(t *testing.T) {
	info := snapperInfo{Type: "single", Num: 7, Date: time.Unix(0, 0), Description: "a <b> & c",
		Userdata: []kv{{"important", "yes"}, {inProgressKey, "yes"}}}
	parsed, err := parseSnapperInfo("x", info.marshal())
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := parsed.get(inProgressKey); !ok || v != "yes" {
		t.Fatalf("marker lost: %+v", parsed)
	}
	if parsed.Description != "a <b> & c" {
		t.Errorf("description %q", parsed.Description)
	}
	parsed.drop(inProgressKey)
	if _, ok := parsed.get(inProgressKey); ok || len(parsed.Userdata) != 1 {
		t.Errorf("drop: %+v", parsed.Userdata)
	}
}

func TestParseSnapperInfoErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "x:1:1: EOF"},
		{"<snapshot><num>x</num></snapshot>", `bad <num> "x"`},
		{"<snapshot><num>1</num><date>yesterday</date></snapshot>", `bad <date>`},
		{"<snapshot>\n<num>1</num>\n<type>", "x:3:7"},
		{"<other/>", "expected element type <snapshot>"},
	} {
		_, err := parseSnapperInfo("x", []byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.in, err, tc.want)
		}
	}
}

func FuzzParseSnapperInfo(f *testing.F) {
	if data, err := os.ReadFile("testdata/info.xml"); err == nil {
		f.Add(data)
	}
	f.Add([]byte("<snapshot><num>1</num></snapshot>"))
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := parseSnapperInfo("fuzz", data)
		if err != nil {
			return
		}
		again, err := parseSnapperInfo("fuzz", info.marshal())
		if err != nil {
			t.Fatalf("re-parse of our own output: %v", err)
		}
		if again.Num != info.Num || !again.Date.Equal(info.Date) {
			t.Fatalf("round trip changed %+v -> %+v", info, again)
		}
	})
}

// removeSnapperDir removes the directory of a snapshot we made: its
// info.xml in progress, missing, or empty (a power loss before the
// unflushed write reached the disk); a finished snapper snapshot's is left.
func TestRemoveSnapperDir(t *testing.T) {
	inProgress := snapperInfo{Type: "single", Num: 3, Date: time.Unix(0, 0), Userdata: []kv{{inProgressKey, "yes"}}}
	done := snapperInfo{Type: "single", Num: 3, Date: time.Unix(0, 0)}
	for _, c := range []struct {
		name   string
		info   []byte // nil: no info.xml
		remove bool
	}{
		{"in progress", inProgress.marshal(), true},
		{"missing", nil, true},
		{"empty", []byte{}, true},
		{"snapper's own", done.marshal(), false},
	} {
		dir := t.TempDir() + "/3"
		os.Mkdir(dir, 0o755)
		if c.info != nil {
			os.WriteFile(dir+"/info.xml", c.info, 0o644)
		}
		err := removeSnapperDir(dir)
		_, statErr := os.Stat(dir)
		if removed := os.IsNotExist(statErr); removed != c.remove || (err == nil) != c.remove {
			t.Errorf("%s: removed %v, error %v; want removed %v", c.name, removed, err, c.remove)
		}
	}
}
