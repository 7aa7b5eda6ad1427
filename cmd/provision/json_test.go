package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/provision-dev/provision/provision/report"
)

// header is what every JSON document starts with (doc/json.md).
type header struct {
	Version int    `json:"version"`
	Kind    string `json:"kind"`
}

// decodeDocument checks data is one document of the documented shape: the
// version, a known kind, and no member the Go type of that kind lacks.
func decodeDocument(t *testing.T, name string, data []byte) header {
	t.Helper()
	var h header
	if err := json.Unmarshal(data, &h); err != nil {
		t.Fatalf("%s: %v\n%s", name, err, data)
	}
	if h.Version != report.Version {
		t.Errorf("%s: version %d, want %d", name, h.Version, report.Version)
	}
	var into any
	switch h.Kind {
	case report.KindPlan, report.KindResult, report.KindStatus:
		into = &report.Report{}
	case report.KindValidation:
		into = &report.Validation{}
	default:
		t.Fatalf("%s: kind %q", name, h.Kind)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		t.Errorf("%s: does not decode into %T: %v", name, into, err)
	}
	if dec.More() {
		t.Errorf("%s: more than one document", name)
	}
	if v, ok := into.(*report.Validation); ok {
		for _, in := range v.Inputs {
			if in.Version != report.Version || in.Kind != report.KindPlan {
				t.Errorf("%s: input %q: version %d, kind %q", name, in.Path, in.Version, in.Kind)
			}
		}
	}
	return h
}

// The commands print one document of each kind, of the documented shape.
func TestJSONEveryKind(t *testing.T) {
	useStatusPaths(t)
	seed := t.TempDir()
	os.WriteFile(filepath.Join(seed, "user-data"), []byte("#cloud-config\nhostname: h1\n"), 0o644)
	os.WriteFile(filepath.Join(seed, "meta-data"), []byte("instance-id: iid-json\n"), 0o644)
	report := filepath.Join(t.TempDir(), "report.json")
	for kind, args := range map[string][]string{
		"plan":       {"--dry-run", "--json", "--source", seed},
		"result":     {"run", "--json", "--root", t.TempDir(), "--source", seed, "--report", report},
		"status":     {"status", "--json"},
		"validation": {"validate", "--json", seed, filepath.Join(seed, "missing")},
	} {
		_, out, errs := runArgs(args...)
		if h := decodeDocument(t, kind, []byte(out)); h.Kind != kind {
			t.Errorf("%q: kind %q, want %q\n%s", args, h.Kind, kind, errs)
		}
	}
	// report.json is the result document run --json printed.
	data, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	if h := decodeDocument(t, "report.json", data); h.Kind != "result" {
		t.Errorf("report.json: kind %q", h.Kind)
	}
}

// The examples of doc/json.md decode into the Go types, one of each kind:
// the documentation cannot drift from the code.
func TestJSONDocExamples(t *testing.T) {
	doc, err := os.ReadFile("../../doc/json.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```json\n(.*?)```").FindAllSubmatch(doc, -1)
	seen := map[string]bool{}
	for i, b := range blocks {
		h := decodeDocument(t, "doc/json.md example "+string(rune('1'+i)), b[1])
		seen[h.Kind] = true
	}
	for _, k := range []string{report.KindPlan, report.KindResult, report.KindStatus, report.KindValidation} {
		if !seen[k] {
			t.Errorf("doc/json.md has no example of kind %q", k)
		}
	}
}
