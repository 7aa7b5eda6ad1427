package cloudinit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/provision-dev/provision/provision/config"
)

// The keys the parser reads are exactly the table's applied and unapplied
// keys: a key added to the parser and not to the table (so not to the
// schema), or left in the table after the parser stopped reading it, fails.
func TestKeyTableMatchesParser(t *testing.T) {
	p := &parser{ctx: context.Background(), cfg: &config.Config{}}
	var read []string
	for k := range p.readKeys(&node{kind: kMap}) {
		read = append(read, k)
	}
	sort.Strings(read)
	if want := knownKeys(keyApplied, keyUnapplied); !reflect.DeepEqual(read, want) {
		t.Errorf("the parser reads\n%q\nthe key table of schema.go declares\n%q", read, want)
	}
}

// Internal keys pass silently, ignored ones draw "not supported", others
// "unknown": the warning follows the table.
func TestKeyTableDecidesWarnings(t *testing.T) {
	var doc strings.Builder
	doc.WriteString("#cloud-config\nfrobnicate: 1\n")
	for _, k := range knownKeys(keyInternal, keyIgnored) {
		v := "{}"
		if strings.HasPrefix(k, "merge_") {
			v = "[]"
		}
		fmt.Fprintf(&doc, "%s: %s\n", k, v)
	}
	cfg, err := Parse(context.Background(), DataSet{UserData: &Blob{Data: []byte(doc.String())}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, w := range cfg.Warnings {
		got[w.Message] = true
	}
	for _, k := range knownKeys(keyIgnored) {
		if !got[k+": not supported by provision; ignored"] {
			t.Errorf("no warning for the ignored key %s", k)
		}
	}
	if !got[`unknown cloud-config key "frobnicate"`] {
		t.Error("no warning for an unknown key")
	}
	if len(cfg.Warnings) != len(knownKeys(keyIgnored))+1 {
		t.Errorf("warnings %v: internal keys must pass silently", cfg.Warnings)
	}
}

func TestSchemaDocument(t *testing.T) {
	var s struct {
		Schema     string                    `json:"$schema"`
		Properties map[string]map[string]any `json:"properties"`
		Additional any                       `json:"additionalProperties"`
	}
	if err := json.Unmarshal(Schema(), &s); err != nil {
		t.Fatal(err)
	}
	if s.Additional != true {
		t.Error("unknown top-level keys must stay allowed (cloud-init warns about them)")
	}
	var names []string
	for k := range s.Properties {
		names = append(names, k)
	}
	sort.Strings(names)
	if want := knownKeys(keyApplied, keyUnapplied, keyInternal, keyIgnored); !reflect.DeepEqual(names, want) {
		t.Errorf("schema properties %q, want the table's %q", names, want)
	}
	for name, p := range s.Properties {
		ignoredKey := cloudConfigKeys()[name].status == keyIgnored
		if (p["deprecated"] == true) != ignoredKey {
			t.Errorf("%s: deprecated is %v; it must mark exactly the keys provision ignores", name, p["deprecated"])
		}
		if d, _ := p["description"].(string); d == "" {
			t.Errorf("%s has no description", name)
		}
	}
	if !bytes.Equal(Schema(), Schema()) {
		t.Error("the schema is not the same twice (map order leaked)")
	}
}

// validator runs a standard JSON Schema validator (python3-jsonschema) on
// instances; it returns, per instance, its errors ("" when valid). The
// schema itself is checked against its meta-schema first.
func validator(t *testing.T, instances []any) []string {
	t.Helper()
	if err := exec.Command("python3", "-c", "import jsonschema").Run(); err != nil {
		t.Skip("python3-jsonschema is not installed (apt-get install python3-jsonschema): the schema is not validated")
	}
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	insts, err := json.Marshal(instances)
	if err != nil {
		t.Fatal(err)
	}
	const script = `
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
cls = jsonschema.validators.validator_for(schema)
cls.check_schema(schema)
v = cls(schema)
out = []
for inst in json.load(open(sys.argv[2])):
    errs = sorted(v.iter_errors(inst), key=lambda e: [str(p) for p in e.absolute_path])
    out.append("; ".join("/".join(str(p) for p in e.absolute_path) + ": " + e.message for e in errs))
json.dump(out, sys.stdout)
`
	cmd := exec.Command("python3", "-c", script, write("schema.json", Schema()), write("instances.json", insts))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3 jsonschema: %v\n%s", err, stderr.String())
	}
	var res []string
	if err := json.Unmarshal(out, &res); err != nil || len(res) != len(instances) {
		t.Fatalf("python3 jsonschema printed %q: %v", out, err)
	}
	return res
}

// example is one cloud-config the repository ships.
type example struct {
	name string
	data []byte
}

const repoRoot = "../.."

// shippedExamples finds every cloud-config of the repository: seeds, the
// acceptance corpus, code blocks of the README and doc/, and the user-data
// of this package's cases that parse without error.
func shippedExamples(t *testing.T) []example {
	t.Helper()
	var out []example
	add := func(name string, data []byte) {
		if first, _, _ := strings.Cut(string(data), "\n"); strings.TrimSpace(first) == "#cloud-config" {
			out = append(out, example{name, data})
		}
	}
	for _, pat := range []string{"test/seeds/*/user-data", "test/accept/testdata/*/user-data"} {
		files, _ := filepath.Glob(filepath.Join(repoRoot, pat))
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			add(f, data)
		}
	}
	docs, _ := filepath.Glob(filepath.Join(repoRoot, "doc/*.md"))
	for _, f := range append(docs, filepath.Join(repoRoot, "README.md")) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, b := range codeBlocks(string(data)) {
			// A cloud-config may follow the command that uses it.
			if at := strings.Index(b, "\n#cloud-config\n"); at >= 0 {
				b = b[at+1:]
			}
			add(fmt.Sprintf("%s block %d", f, i+1), []byte(b))
		}
	}
	cases, _ := filepath.Glob("testdata/cases/*.txt")
	for _, f := range cases {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		s := parseCase(t, data)
		ud, ok := s["user-data"]
		if !ok || strings.Contains(string(s["options"]), "strict") {
			continue
		}
		if _, err := Parse(context.Background(), DataSet{UserData: &Blob{Data: ud}}, Options{}); err == nil {
			add(f, ud)
		}
	}
	if len(out) < 3 {
		t.Fatalf("found only %d shipped cloud-configs; the search is broken", len(out))
	}
	return out
}

// codeBlocks returns the fenced (```) and indented (4 spaces or a tab)
// code blocks of a Markdown text, without their indentation.
func codeBlocks(md string) []string {
	var blocks []string
	var cur []string
	fenced, indented := false, false
	flush := func() {
		if len(cur) > 0 {
			blocks = append(blocks, strings.Join(cur, "\n")+"\n")
		}
		cur = nil
	}
	for _, l := range strings.Split(md, "\n") {
		switch {
		case strings.HasPrefix(strings.TrimSpace(l), "```"):
			if fenced {
				flush()
			}
			fenced = !fenced
		case fenced:
			cur = append(cur, l)
		case strings.HasPrefix(l, "    ") || strings.HasPrefix(l, "\t"):
			indented = true
			cur = append(cur, strings.TrimPrefix(strings.TrimPrefix(l, "    "), "\t"))
		case indented && strings.TrimSpace(l) == "":
			cur = append(cur, "")
		default:
			if indented {
				flush()
			}
			indented = false
		}
	}
	flush()
	return blocks
}

func TestSchemaAcceptsShippedExamples(t *testing.T) {
	examples := shippedExamples(t)
	var insts []any
	for _, e := range examples {
		v, err := yamlToPlain(e.data)
		if err != nil {
			t.Fatalf("%s: %v", e.name, err)
		}
		insts = append(insts, v)
	}
	for i, res := range validator(t, insts) {
		if res != "" {
			t.Errorf("%s does not validate: %s", examples[i].name, res)
		}
	}
	t.Logf("%d shipped cloud-configs validated", len(examples))
}

func TestSchemaRejectsWrongTypes(t *testing.T) {
	docs := []string{
		"packages: 3",
		"packages: [3]",
		"users: [{name: alice, uid: [1]}]",
		"write_files: [{path: /x, permissions: '0999'}]",
		"write_files: [{content: x}]",
		"write_files: [{path: /x, encoding: rot13}]",
		"chpasswd: {users: [{name: root}]}",
		"keyboard: {model: pc105}",
		"runcmd: echo hi",
		"package_update: maybe",
	}
	var insts []any
	for _, d := range docs {
		v, err := yamlToPlain([]byte(d))
		if err != nil {
			t.Fatal(err)
		}
		insts = append(insts, v)
	}
	for i, res := range validator(t, insts) {
		if res == "" {
			t.Errorf("%q validates; it must not", docs[i])
		}
		// The parser rejects it too: the schema says no more than provision.
		if _, err := Parse(context.Background(), DataSet{UserData: &Blob{Data: []byte("#cloud-config\n" + docs[i])}}, Options{}); err == nil {
			t.Errorf("%q: the parser accepts what the schema rejects", docs[i])
		}
	}
}

// probes are values of every JSON type, tried at each key.
var probes = []any{"x", "", 3, 0, 1, 420, -1, 1.5, true, false, nil,
	[]any{}, []any{"x"}, []any{3}, []any{nil}, []any{[]any{}}, []any{[]any{"x", "1"}}, []any{map[string]any{}},
	map[string]any{}, map[string]any{"a": "x"}, map[string]any{"a": []any{}}, map[string]any{"a": map[string]any{}}}

// Every key of the schema, top-level and inside users, write_files,
// chpasswd, keyboard and repositories, gets every probe; the schema and
// the parser must agree on whether the document is valid.
func TestSchemaAgreesWithParser(t *testing.T) {
	type probe struct {
		doc  map[string]any
		desc string
	}
	var ps []probe
	wrap := map[string]func(k string, v any) map[string]any{
		"": func(k string, v any) map[string]any { return map[string]any{k: v} },
		"users[]": func(k string, v any) map[string]any {
			return map[string]any{"users": []any{map[string]any{"name": "u", k: v}}}
		},
		"write_files[]": func(k string, v any) map[string]any {
			return map[string]any{"write_files": []any{map[string]any{"path": "/x", k: v}}}
		},
		"chpasswd": func(k string, v any) map[string]any { return map[string]any{"chpasswd": map[string]any{k: v}} },
		"keyboard": func(k string, v any) map[string]any {
			return map[string]any{"keyboard": map[string]any{"layout": "us", k: v}}
		},
		"zypper.repos[]": func(k string, v any) map[string]any {
			return map[string]any{"zypper": map[string]any{"repos": []any{map[string]any{"id": "r", "baseurl": "http://r", k: v}}}}
		},
	}
	keys := map[string][]string{"": knownKeys(keyApplied, keyUnapplied, keyInternal)}
	for k := range userFields() {
		keys["users[]"] = append(keys["users[]"], k)
	}
	for k := range writeFileSchema()["properties"].(map[string]js) {
		keys["write_files[]"] = append(keys["write_files[]"], k)
	}
	keys["chpasswd"] = []string{"users", "list", "expire"}
	keys["keyboard"] = []string{"layout", "model", "variant", "options"}
	keys["zypper.repos[]"] = []string{"id", "baseurl", "enabled", "gpgcheck", "autorefresh", "name"}
	for where, ks := range keys {
		sort.Strings(ks)
		for _, k := range ks {
			for _, v := range probes {
				ps = append(ps, probe{wrap[where](k, v), fmt.Sprintf("%s %s: %s", where, k, mustJSON(t, v))})
			}
		}
	}
	insts := make([]any, len(ps))
	for i, p := range ps {
		insts[i] = p.doc
	}
	res := validator(t, insts)
	// Whether a legacy user: mapping needs a name depends on the image;
	// the schema allows what some image allows.
	opts := Options{DefaultUser: &config.User{Name: "linux", LockPassword: true}}
	for i, p := range ps {
		// JSON is YAML: the parser reads the same document.
		_, err := Parse(context.Background(), DataSet{UserData: &Blob{Data: append([]byte("#cloud-config\n"), mustJSON(t, p.doc)...)}}, opts)
		schemaOK, parserOK := res[i] == "", err == nil
		switch {
		case schemaOK && !parserOK:
			t.Errorf("%s: the schema accepts it, the parser says %v", p.desc, err)
		case !schemaOK && parserOK:
			t.Errorf("%s: the parser accepts it, the schema says %s", p.desc, res[i])
		}
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestKeyTableOnlyForKeysNotRead: a config of keys the parser reads never
// asks the key table (every key's schema, built on first use); a key it
// does not read does.
func TestKeyTableOnlyForKeysNotRead(t *testing.T) {
	orig := cloudConfigKeys
	t.Cleanup(func() { cloudConfigKeys = orig })
	asked := 0
	cloudConfigKeys = func() map[string]keySpec { asked++; return orig() }
	parse := func(doc string) {
		t.Helper()
		if _, err := Parse(context.Background(), DataSet{UserData: &Blob{Data: []byte(doc)}}, Options{}); err != nil {
			t.Fatal(err)
		}
	}
	parse("#cloud-config\nhostname: h\nusers: [alice]\nwrite_files: [{path: /etc/x, content: x}]\nruncmd: [\"true\"]\n")
	if asked != 0 {
		t.Errorf("a config of keys the parser reads asked the key table %d times", asked)
	}
	parse("#cloud-config\nhostname: h\nfrobnicate: 1\n")
	if asked == 0 {
		t.Error("an unknown key did not ask the key table")
	}
}
