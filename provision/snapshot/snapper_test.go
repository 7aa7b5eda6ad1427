package snapshot

import (
	"bytes"
	"encoding/xml"
	"math/rand/v2"
	"os"
	"regexp"
	"slices"
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

// referenceInfo decodes info.xml with encoding/xml, as earlier releases did.
func referenceInfo(data []byte) (rawInfo, error) {
	var ref struct {
		XMLName     xml.Name `xml:"snapshot"`
		Type        string   `xml:"type"`
		Num         string   `xml:"num"`
		Date        string   `xml:"date"`
		Description string   `xml:"description"`
		Cleanup     string   `xml:"cleanup"`
		Userdata    []struct {
			Key   string `xml:"key"`
			Value string `xml:"value"`
		} `xml:"userdata"`
	}
	err := xml.NewDecoder(bytes.NewReader(data)).Decode(&ref)
	r := rawInfo{Type: ref.Type, Num: ref.Num, Date: ref.Date, Description: ref.Description, Cleanup: ref.Cleanup}
	for _, u := range ref.Userdata {
		r.Userdata = append(r.Userdata, kv{u.Key, u.Value})
	}
	return r, err
}

func sameRawInfo(a, b rawInfo) bool {
	return a.Type == b.Type && a.Num == b.Num && a.Date == b.Date && a.Description == b.Description &&
		a.Cleanup == b.Cleanup && slices.Equal(a.Userdata, b.Userdata)
}

// infoXMLSeeds are documents of info.xml's shape with what XML allows
// around it; both parsers must accept each and read the same.
var infoXMLSeeds = []string{
	"<?xml version=\"1.0\"?>\n<snapshot>\n  <type>single</type>\n  <num>2</num>\n  <date>2026-11-22 03:11:51</date>\n  <description>first &amp; &lt;only&gt; &#233;t&#xE9; &apos;&quot;</description>\n  <cleanup>number</cleanup>\n  <userdata>\n    <key>important</key>\n    <value>yes</value>\n  </userdata>\n</snapshot>\n",
	"<?xml version='1.0' encoding='UTF-8'?>\r\n<!-- by hand -->\r\n<!DOCTYPE snapshot SYSTEM \"snapshot.dtd\" [ ]>\r\n<snapshot kind=\"x\" other='y'><type >pre</type ><num>10</num><pre_num>9</pre_num><uid>1000</uid><description>line one\r\nline two\rthree</description><cleanup/><userdata><key>a</key><value><![CDATA[<raw> & ]]>tail<!-- c --><?pi x?></value><extra><key>not this</key></extra></userdata><userdata/></snapshot>trailing",
	"<snapshot><description>outer<nested>inner</nested>after</description><num>1</num><num>3</num></snapshot>",
}

// TestInfoXMLMatchesEncodingXML: on documents snapper's shape takes, and
// on our own output for random values, the parser reads what encoding/xml
// reads.
func TestInfoXMLMatchesEncodingXML(t *testing.T) {
	docs := slices.Clone(infoXMLSeeds)
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []rune("aZ09 <>&'\"\t\r\n;#x\u00e9\u4e16\U0001F600]]>")
	randText := func() string {
		r := make([]rune, rng.IntN(12))
		for i := range r {
			r[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return string(r)
	}
	for range 300 {
		info := snapperInfo{Type: randText(), Num: rng.Uint64(), Date: time.Unix(rng.Int64N(4e9), 0), Description: randText(), Cleanup: randText()}
		for range rng.IntN(3) {
			info.Userdata = append(info.Userdata, kv{randText(), randText()})
		}
		docs = append(docs, string(info.marshal()))
	}
	for _, d := range docs {
		ours, err := parseInfoXML([]byte(d))
		ref, refErr := referenceInfo([]byte(d))
		if err != nil || refErr != nil {
			t.Errorf("%q: ours %v, encoding/xml %v", d, err, refErr)
			continue
		}
		if !sameRawInfo(ours, ref) {
			t.Errorf("%q:\nours          %+v\nencoding/xml  %+v", d, ours, ref)
		}
	}
}

// FuzzInfoXMLMatchesEncodingXML: the parser is never more lenient than
// encoding/xml, and where both accept a document they read the same.
func FuzzInfoXMLMatchesEncodingXML(f *testing.F) {
	for _, s := range infoXMLSeeds {
		f.Add([]byte(s))
	}
	f.Add([]byte("<snapshot><num>1</num></snapshot>"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ours, err := parseInfoXML(data)
		if err != nil {
			return
		}
		ref, refErr := referenceInfo(data)
		if refErr != nil {
			t.Fatalf("accepted what encoding/xml refuses (%v): %q", refErr, data)
		}
		if !sameRawInfo(ours, ref) {
			t.Fatalf("%q:\nours          %+v\nencoding/xml  %+v", data, ours, ref)
		}
	})
}

// snapperLayoutRe is what snapperSnapshot decides, as a regular expression.
var snapperLayoutRe = regexp.MustCompile(`^(.*)/\.snapshots/([0-9]+)/snapshot$`)

func checkSnapperSnapshot(t *testing.T, p string) {
	parent, num, ok := snapperSnapshot(p)
	m := snapperLayoutRe.FindStringSubmatch(p)
	if ok != (m != nil) || ok && (parent != m[1] || num != m[2]) {
		t.Errorf("snapperSnapshot(%q) = %q, %q, %v; the expression says %q", p, parent, num, ok, m)
	}
}

func TestSnapperSnapshotPath(t *testing.T) {
	for _, p := range []string{
		"/@/.snapshots/1/snapshot", "/.snapshots/12/snapshot", "/@/.snapshots/1/snapshot/x",
		"/@/.snapshots//snapshot", "/@/.snapshots/1a/snapshot", "/@", "/", "", "/a/.snapshots/2/.snapshots/3/snapshot",
		"/@/.snapshots/1/snapshots", "@/.snapshots/1/snapshot", "/x.snapshots/1/snapshot", "/@/.snapshots/٣/snapshot",
	} {
		checkSnapperSnapshot(t, p)
	}
}

func FuzzSnapperSnapshotPath(f *testing.F) {
	f.Add("/@/.snapshots/1/snapshot")
	f.Add("/a/.snapshots/2/.snapshots/3/snapshot")
	f.Fuzz(checkSnapperSnapshot)
}
