package ignition

import (
	"context"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/provision-dev/provision/provision/config"
)

// fakeFetch serves configs by URL and records the headers of each request.
type fakeFetch struct {
	pages   map[string]string
	headers map[string]http.Header
	calls   int
}

func (f *fakeFetch) fetch(_ context.Context, u string, h http.Header) ([]byte, error) {
	f.calls++
	if f.headers == nil {
		f.headers = map[string]http.Header{}
	}
	f.headers[u] = h
	body, ok := f.pages[u]
	if !ok {
		return nil, fmt.Errorf("GET %s: HTTP 404", u)
	}
	return []byte(body), nil
}

func dataURL(s string) string { return "data:;base64," + base64.StdEncoding.EncodeToString([]byte(s)) }

func parseRefs(t *testing.T, in string, f *fakeFetch) (*config.Config, error) {
	t.Helper()
	opts := Options{}
	if f != nil {
		opts.Fetch = f.fetch
	}
	return ParseWith(context.Background(), testOrigin, []byte(in), opts)
}

func fileByPath(c *config.Config, p string) *config.File {
	for i := range c.Files {
		if c.Files[i].Path == p && !c.Files[i].Append {
			return &c.Files[i]
		}
	}
	return nil
}

// A merged config wins item by item, keyed as Ignition keys them: the
// child's file at a path replaces the parent's content but keeps what the
// child does not set (mode), the parent's other items stay, a child's
// directory at the parent's file path removes the file, appends add up,
// and every item keeps the origin of the document that defined it.
func TestMergeSemantics(t *testing.T) {
	child := `{"ignition": {"version": "3.0.0"},
"passwd": {"users": [{"name": "core", "sshAuthorizedKeys": ["ssh-ed25519 BBBB k2"]}]},
"storage": {"files": [{"path": "/etc/a", "contents": {"source": "data:,child"}, "append": [{"source": "data:,c2"}]}],
  "directories": [{"path": "/etc/p"}]},
"systemd": {"units": [{"name": "x.service", "enabled": false}]}}`
	parent := `{"ignition": {"version": "3.4.0", "config": {"merge": [{"source": "` + dataURL(child) + `"}]}},
"passwd": {"users": [{"name": "core", "sshAuthorizedKeys": ["ssh-ed25519 AAAA k1"], "shell": "/bin/zsh"}, {"name": "other"}]},
"storage": {"files": [{"path": "/etc/a", "mode": 384, "contents": {"source": "data:,parent"}, "append": [{"source": "data:,p2"}]},
  {"path": "/etc/p", "contents": {"source": "data:,gone"}}]},
"systemd": {"units": [{"name": "x.service", "enabled": true, "contents": "[Service]\nExecStart=/bin/true\n"}]}}`
	c, err := parseRefs(t, parent, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := fileByPath(c, "/etc/a")
	if a == nil || string(a.Contents) != "child" || a.Mode == nil || *a.Mode != 0o600 {
		t.Fatalf("/etc/a = %+v, want the child's contents with the parent's mode 0600", a)
	}
	if !strings.Contains(a.Origin.File, "ignition.config.merge[0] (data: URL)") || a.Origin.Line != 3 {
		t.Errorf("/etc/a origin %v, want the child document's line 3", a.Origin)
	}
	var appends []string
	for _, f := range c.Files {
		if f.Append {
			appends = append(appends, string(f.Contents))
		}
	}
	if strings.Join(appends, ",") != "p2,c2" {
		t.Errorf("appends %q, want the parent's then the child's", appends)
	}
	if fileByPath(c, "/etc/p") != nil || len(c.Directories) != 1 || c.Directories[0].Path != "/etc/p" {
		t.Errorf("/etc/p: files %+v, directories %+v; want only the child's directory", c.Files, c.Directories)
	}
	if len(c.Users) != 2 || c.Users[0].Name != "core" || c.Users[0].Shell != "/bin/zsh" {
		t.Fatalf("users %+v, want core (keeping the parent's shell) and other", c.Users)
	}
	var keys []string
	for _, k := range c.SSHKeys {
		keys = append(keys, k.Key)
	}
	if len(keys) != 2 {
		t.Errorf("keys %q, want both (a list of strings merges by value)", keys)
	}
	if len(c.Units) != 1 || c.Units[0].Enabled == nil || *c.Units[0].Enabled || c.Units[0].Contents == nil {
		t.Errorf("units %+v, want x.service disabled by the child with the parent's contents", c.Units)
	}
}

// A replace discards the whole current config, merges included, and
// applies the referenced one (itself rendered).
func TestReplace(t *testing.T) {
	f := &fakeFetch{pages: map[string]string{
		"https://cfg.test/new.ign": `{"ignition": {"version": "3.2.0"}, "storage": {"files": [{"path": "/new", "contents": {"source": "data:,n"}}]}}`,
	}}
	in := `{"ignition": {"version": "3.3.0", "config": {"replace": {"source": "https://cfg.test/new.ign"}, "merge": [{"source": "https://cfg.test/never.ign"}]}},
"storage": {"files": [{"path": "/old", "contents": {"source": "data:,o"}}]}}`
	c, err := parseRefs(t, in, f)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Files) != 1 || c.Files[0].Path != "/new" || c.Files[0].Origin.File != "https://cfg.test/new.ign" {
		t.Errorf("files %+v, want only /new from the replacing config", c.Files)
	}
	if f.calls != 1 {
		t.Errorf("%d fetches, want 1 (the merge of a replaced config is not fetched)", f.calls)
	}
}

// Fetched references: headers sent, gzip undone, the hash of the
// decompressed config checked; a mismatch, a broken child and a child
// from an unknown spec fail naming where.
func TestReferenceFetch(t *testing.T) {
	child := `{"ignition": {"version": "3.1.0"}, "storage": {"files": [{"path": "/c", "contents": {"source": "data:,c"}}]}}`
	sum := sha512.Sum512([]byte(child))
	f := &fakeFetch{pages: map[string]string{
		"https://cfg.test/c.gz":   string(gzBytes(child)),
		"https://cfg.test/bad":    `{"ignition": {"version": "3.1.0"}, "storage": {"files": [{"path": "rel"}]}}`,
		"https://cfg.test/spec2":  `{"ignition": {"version": "2.2.0"}}`,
		"https://cfg.test/nested": `{"ignition": {"version": "3.1.0", "config": {"merge": [{"source": "https://cfg.test/c.gz", "compression": "gzip"}]}}}`,
	}}
	in := fmt.Sprintf(`{"ignition": {"version": "3.1.0", "config": {"merge": [{"source": "https://cfg.test/c.gz", "compression": "gzip",
 "verification": {"hash": "sha512-%x"}, "httpHeaders": [{"name": "Authorization", "value": "Bearer s3cr3t"}]}]}}}`, sum)
	c, err := parseRefs(t, in, f)
	if err != nil {
		t.Fatal(err)
	}
	if fileByPath(c, "/c") == nil {
		t.Errorf("files %+v, want /c from the fetched config", c.Files)
	}
	if got := f.headers["https://cfg.test/c.gz"].Get("Authorization"); got != "Bearer s3cr3t" {
		t.Errorf("Authorization sent %q", got)
	}
	for name, c := range map[string]struct{ in, want string }{
		"hash mismatch": {strings.Replace(in, fmt.Sprintf("%x", sum[:2]), "0000", 1), "ignition.config.merge[0]: https://cfg.test/c.gz: contents do not match sha512-"},
		"broken child":  {`{"ignition": {"version": "3.1.0", "config": {"merge": [{"source": "https://cfg.test/bad"}]}}}`, `test:https://cfg.test/bad:1:67: storage.files[0].path: path "rel" is not absolute`},
		"spec 2 child":  {`{"ignition": {"version": "3.1.0", "config": {"merge": [{"source": "https://cfg.test/spec2"}]}}}`, "test:https://cfg.test/spec2:1:26: ignition.version: Ignition spec 2.x"},
		"not found":     {`{"ignition": {"version": "3.1.0", "config": {"replace": {"source": "https://cfg.test/none?sig=SECRET"}}}}`, "test:config.ign:1:57: ignition.config.replace: GET https://cfg.test/none?sig=SECRET: HTTP 404"},
		"no value":      {`{"ignition": {"version": "3.1.0", "config": {"merge": [{"source": "https://cfg.test/c.gz", "httpHeaders": [{"name": "A"}]}]}}}`, `httpHeaders: "A" has no value`},
	} {
		_, err := parseRefs(t, c.in, f)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", name, err, c.want)
		}
	}
	// The nested merge fetches c.gz without the outer reference's headers.
	f.headers = nil
	if _, err := parseRefs(t, `{"ignition": {"version": "3.1.0", "config": {"merge": [{"source": "https://cfg.test/nested", "httpHeaders": [{"name": "X-Token", "value": "t0k"}]}]}}}`, f); err != nil {
		t.Fatal(err)
	}
	if f.headers["https://cfg.test/nested"].Get("X-Token") != "t0k" || f.headers["https://cfg.test/c.gz"].Get("X-Token") != "" {
		t.Errorf("headers %v: want X-Token on the nested config's request only", f.headers)
	}
}

// Cycles, depth and fan-out end with an error, never a hang.
func TestReferenceLimits(t *testing.T) {
	ref := func(urls ...string) string {
		var refs []string
		for _, u := range urls {
			refs = append(refs, `{"source": "`+u+`"}`)
		}
		return `{"ignition": {"version": "3.0.0", "config": {"merge": [` + strings.Join(refs, ",") + `]}}}`
	}
	pages := map[string]string{
		"https://c.test/a": ref("https://c.test/b"),
		"https://c.test/b": ref("https://c.test/a"),
	}
	for i := 0; i < 20; i++ {
		pages[fmt.Sprintf("https://c.test/deep%d", i)] = ref(fmt.Sprintf("https://c.test/deep%d", i+1))
	}
	// A binary tree of distinct configs, 6 deep: 126 references.
	fan := func(i int) string { return "https://c.test/fan?n=" + url.QueryEscape(fmt.Sprint(i)) }
	for i := 0; i < 63; i++ {
		pages[fan(i)] = ref(fan(2*i+1), fan(2*i+2))
	}
	for i := 63; i < 127; i++ {
		pages[fan(i)] = ref()
	}
	for name, c := range map[string]struct{ in, want string }{
		"cycle":   {ref("https://c.test/a"), "https://c.test/a is already being merged (a cycle: https://c.test/a -> https://c.test/b -> https://c.test/a)"},
		"depth":   {ref("https://c.test/deep0"), fmt.Sprintf("configs referenced more than %d deep", MaxReferenceDepth)},
		"fan-out": {ref(fan(0)), fmt.Sprintf("more than %d referenced configs in one Ignition config", MaxReferences)},
	} {
		f := &fakeFetch{pages: pages}
		_, err := parseRefs(t, c.in, f)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", name, err, c.want)
		}
		if f.calls > MaxReferences {
			t.Errorf("%s: %d fetches, more than %d", name, f.calls, MaxReferences)
		}
	}
}

// A fetcher that does not fetch (a dry run) leaves the reference out with
// a warning; the rest of the config stays, and an unfetched replace plans
// nothing of the config it would replace.
func TestReferenceNotFetched(t *testing.T) {
	notFetched := func(context.Context, string, http.Header) ([]byte, error) {
		return nil, fmt.Errorf("%w: a dry run", ErrNotFetched)
	}
	merge := `{"ignition": {"version": "3.1.0", "config": {"merge": [{"source": "https://c.test/m"}]}}, "storage": {"files": [{"path": "/kept"}]}}`
	c, err := ParseWith(context.Background(), testOrigin, []byte(merge), Options{Fetch: notFetched})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Files) != 1 || len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0].Message, "ignition.config.merge[0]: https://c.test/m not fetched") {
		t.Errorf("files %+v, warnings %v", c.Files, c.Warnings)
	}
	replace := strings.Replace(merge, `"merge": [{"source": "https://c.test/m"}]`, `"replace": {"source": "https://c.test/m"}`, 1)
	c, err = ParseWith(context.Background(), testOrigin, []byte(replace), Options{Fetch: notFetched})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Files) != 0 || len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0].Message, "applied instead of this one") {
		t.Errorf("files %+v, warnings %v", c.Files, c.Warnings)
	}
	if !errors.Is(fmt.Errorf("x: %w", ErrNotFetched), ErrNotFetched) {
		t.Fatal("ErrNotFetched does not wrap")
	}
}

// A key a child's spec version lacks is ignored there, so it does not
// hide the parent's value; a child's header without value deletes the
// parent's header of that name.
func TestMergeIgnoredKeysAndHeaderDeletion(t *testing.T) {
	child := `{"ignition": {"version": "3.0.0"}, "passwd": {"users": [{"name": "a", "shouldExist": true}]}}`
	parent := `{"ignition": {"version": "3.2.0", "config": {"merge": [{"source": "` + dataURL(child) + `"}]}}, "passwd": {"users": [{"name": "a", "uid": 1001}]}}`
	c, err := parseRefs(t, parent, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Users) != 1 || c.Users[0].UID == nil || *c.Users[0].UID != 1001 {
		t.Errorf("users %+v", c.Users)
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0].String(), "needs spec 3.2.0") {
		t.Errorf("warnings %v, want the child's one", c.Warnings)
	}

	p := &parser{set: &docSet{ignored: map[*node]bool{}}}
	r := &renderer{set: p.set}
	tree := func(s string) *node {
		n, err := decodeTree([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	merged := r.mergeObject(
		tree(`{"contents": {"httpHeaders": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}}`),
		tree(`{"contents": {"httpHeaders": [{"name": "A"}, {"name": "C", "value": "3"}]}}`), "storage.files")
	var names []string
	for _, h := range merged.get("contents").val.get("httpHeaders").val.elems {
		names = append(names, h.get("name").val.str)
	}
	if strings.Join(names, ",") != "B,C" {
		t.Errorf("headers %q, want B,C", names)
	}
}

func gzBytes(s string) []byte {
	b, _ := base64.StdEncoding.DecodeString(gz(s))
	return b
}
