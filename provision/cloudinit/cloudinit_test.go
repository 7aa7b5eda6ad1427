package cloudinit

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"reflect"
	"strings"
	"testing"

	"github.com/provision-dev/provision/provision/config"
)

func mustTree(t *testing.T, s string) *node {
	t.Helper()
	n, err := parseYAML([]byte(s), config.Origin{File: "t"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func asJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestMergeParts checks the part-to-part merge against the behaviour
// cloud-init documents (doc/rtd/reference/merging.rst) and implements.
func TestMergeParts(t *testing.T) {
	tests := []struct {
		name  string
		parts []string
		want  string
	}{
		{"default replaces keys and lists",
			[]string{"a: 1\nl: [1, 2]\nd: {x: 1}", "l: [3]\nd: {y: 2}"},
			`{"a":1,"d":{"y":2},"l":[3]}`},
		{"documented runcmd append",
			[]string{
				"merge_how:\n - name: list\n   settings: [append]\n - name: dict\n   settings: [no_replace, recurse_list]\nruncmd: [bash1, bash2]",
				"merge_how:\n - name: list\n   settings: [append]\n - name: dict\n   settings: [no_replace, recurse_list]\nruncmd: [bash3, bash4]"},
			`{"runcmd":["bash1","bash2","bash3","bash4"]}`},
		{"string form prepend",
			[]string{"l: [a]", "merge_how: 'list(prepend)+dict(recurse_list)'\nl: [b]"},
			`{"l":["b","a"]}`},
		{"no_replace keeps scalars, adds new keys",
			[]string{"a: 1\ns: x", "merge_how: dict(no_replace)\na: 2\nb: 3\ns: y"},
			`{"a":1,"b":3,"s":"x"}`},
		{"str append through recurse_str",
			[]string{"s: foo", "merge_how: dict(recurse_str)+str(append)\ns: bar"},
			`{"s":"foobar"}`},
		{"allow_delete",
			[]string{"a: 1\nb: 2", "merge_how: dict(replace,allow_delete)\na: null"},
			`{"b":2}`},
		{"list replace by index under recursion",
			[]string{"l: [1, 2, 3]", "merge_how: dict(recurse_list)+list(replace)\nl: [9]"},
			`{"l":[9,2,3]}`},
		{"nested dicts recurse under no_replace",
			[]string{"d: {a: 1, e: {x: 1}}", "merge_how: dict()\nd: {b: 2, e: {y: 2}}"},
			`{"d":{"a":1,"b":2,"e":{"x":1,"y":2}}}`},
		{"no dict merger drops the part",
			[]string{"a: 1", "merge_how: list(append)\nb: 2"},
			`{"a":1}`},
		{"merge_type used when merge_how absent",
			[]string{"l: [a]", "merge_type: 'list(append)+dict(recurse_array)'\nl: [b]"},
			`{"l":["a","b"]}`},
		{"append a string to a list iterates characters (as Python)",
			[]string{"l: [a]", "merge_how: 'list(append)+dict(recurse_str)'\nl: bc"},
			`{"l":["a","b","c"]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf *node
			for _, p := range tt.parts {
				tree := mustTree(t, p)
				m, err := extractMergers(tree, "")
				if err != nil {
					t.Fatal(err)
				}
				if buf == nil {
					buf = &node{kind: kMap}
				}
				if buf, err = m.merge(buf, tree); err != nil {
					t.Fatal(err)
				}
			}
			if got := asJSON(buf.plain()); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestMergeErrors(t *testing.T) {
	for _, s := range []string{"merge_how: 'dict(replace'", "merge_how: 'frob()'", "merge_how: 5", "merge_how: [{settings: [x]}]"} {
		if _, err := extractMergers(mustTree(t, s), ""); err == nil {
			t.Errorf("%q: no error", s)
		}
	}
	if _, err := extractMergers(mustTree(t, "a: 1"), "bogus"); err == nil {
		t.Error("bad Merge-Type header accepted")
	}
}

func TestYAML11Scalars(t *testing.T) {
	n := mustTree(t, `{a: yes, b: off, c: 0644, d: 0x1F, e: 1_000, f: '0644', g: 1:30, h: 2024-01-02, i: ~, j: 1e3, k: .5, l: !!str 12}`)
	want := map[string]string{"a": "boolean", "b": "boolean", "c": "integer", "d": "integer", "e": "integer", "f": "string",
		"g": "integer", "h": "timestamp", "i": "null", "j": "string", "k": "float", "l": "string"}
	for k, kind := range want {
		if got := n.get(k).kind.String(); got != kind {
			t.Errorf("%s: got %s, want %s", k, got, kind)
		}
	}
	for s, v := range map[string]int64{"0644": 420, "0x1F": 31, "1_000": 1000, "1:30": 90, "-0b11": -3, "0": 0} {
		if got, err := intValue(s); err != nil || got != v {
			t.Errorf("intValue(%q) = %d, %v; want %d", s, got, err, v)
		}
	}
}

func TestYAMLBombAndRecursion(t *testing.T) {
	var b strings.Builder
	b.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 9; i++ {
		prev := "*a" + string(rune('0'+i-1))
		b.WriteString("a" + string(rune('0'+i)) + ": &a" + string(rune('0'+i)) + " [" + strings.Repeat(prev+", ", 9) + prev + "]\n")
	}
	_, err := parseYAML([]byte(b.String()), config.Origin{File: "bomb"}, nil)
	if err == nil || !strings.Contains(err.Error(), "too many") {
		t.Fatalf("alias bomb: got %v", err)
	}
	if _, err := parseYAML([]byte("a: 1\n---\nb: 2\n"), config.Origin{}, nil); err == nil {
		t.Error("two documents accepted")
	}
	if _, err := parseYAML([]byte("a: !!python/object:os.system x\n"), config.Origin{}, nil); err == nil {
		t.Error("unknown tag accepted")
	}
}

func TestDetection(t *testing.T) {
	for in, want := range map[string]string{
		"#cloud-config\n":             typeCloudConfig,
		"  #Cloud-Config\n":           typeCloudConfig,
		"#cloud-config-archive\n":     typeArchive,
		"#!/bin/sh\n":                 typeShellScript,
		"#include-once\nhttp://x":     typeIncludeOnce,
		"#include http://x":           typeInclude,
		"#cloud-boothook\n":           typeBoothook,
		"## template: jinja\n":        typeJinja,
		"#part-handler\n":             typePartHandler,
		"hello":                       "",
		"#cloud-config-jsonp\n[]\n":   typeCloudConfigJP,
		"\n\n#cloud-config\nfoo: 1\n": typeCloudConfig,
	} {
		if got := typeFromStartsWith([]byte(in)); got != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
}

func gz(t *testing.T, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	_, _ = w.Write(data)
	_ = w.Close()
	return buf.Bytes()
}

func TestGzipWholeBlobAndBase64(t *testing.T) {
	ud := gz(t, []byte("#cloud-config\nhostname: zipped\n"))
	cfg, err := Parse(context.Background(), DataSet{UserData: &Blob{Data: ud}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.System.Hostname.Value != "zipped" {
		t.Errorf("hostname %q", cfg.System.Hostname.Value)
	}
	enc := []byte("I2Nsb3VkLWNvbmZp\nZwpob3N0bmFtZTogYjY0Cg==\n")
	dec, err := DecodeBase64UserData(enc)
	if err != nil || string(dec) != "#cloud-config\nhostname: b64\n" {
		t.Fatalf("DecodeBase64UserData: %q, %v", dec, err)
	}
	if _, err := DecodeBase64UserData([]byte("#cloud-config")); err == nil {
		t.Error("non-base64 accepted")
	}
	// Corrupt gzip is an error naming the origin.
	bad := append([]byte{0x1f, 0x8b}, []byte("garbage")...)
	_, err = Parse(context.Background(), DataSet{UserData: &Blob{Origin: config.Origin{Source: "s", File: "user-data"}, Data: bad}}, Options{})
	if err == nil || !strings.Contains(err.Error(), "s:user-data") {
		t.Errorf("corrupt gzip: %v", err)
	}
}

// gzipZeros builds a gzip stream that inflates to n zero bytes, by hand:
// one fixed-Huffman deflate block of a literal 0 and back-references of
// length 258 at distance 1 (13 bits each), so 1 GiB costs ~6.5 MiB of
// memory to build and no time compressing.
func gzipZeros(n int64) []byte {
	var out bytes.Buffer
	out.Write([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff})
	var acc uint64
	var nbits uint
	put := func(v uint64, bits uint) { // LSB-first
		acc |= v << nbits
		nbits += bits
		for nbits >= 8 {
			out.WriteByte(byte(acc))
			acc >>= 8
			nbits -= 8
		}
	}
	rev := func(code uint64, bits uint) uint64 { // Huffman codes go MSB-first
		var r uint64
		for i := uint(0); i < bits; i++ {
			r = r<<1 | code>>i&1
		}
		return r
	}
	put(1, 1)            // BFINAL
	put(1, 2)            // BTYPE=01 fixed Huffman
	put(rev(0x30, 8), 8) // literal 0
	for left := n - 1; left > 0; {
		l := int64(258)
		if left < 258 {
			l = left
		}
		if l < 3 { // too short for a match: literals
			for ; l > 0; l-- {
				put(rev(0x30, 8), 8)
				left--
			}
			continue
		}
		if l == 258 {
			put(rev(0xc5, 8), 8) // code 285
		} else {
			// lengths 3..10 are codes 257..264 (7-bit codes 0000001..); use
			// literals for anything else to keep this simple.
			if l > 10 {
				l = 10
			}
			put(rev(uint64(l-2), 7), 7)
		}
		put(0, 5) // distance code 0 = 1
		left -= l
	}
	put(0, 7) // end of block
	if nbits > 0 {
		put(0, 8-nbits)
	}
	var trailer [8]byte
	binary.LittleEndian.PutUint32(trailer[0:], crc32.ChecksumIEEE(nil)) // never reached
	binary.LittleEndian.PutUint32(trailer[4:], uint32(n))
	out.Write(trailer[:])
	return out.Bytes()
}

func TestGzipBomb(t *testing.T) {
	small := gzipZeros(100_000)
	zr, err := gzip.NewReader(bytes.NewReader(small))
	if err != nil {
		t.Fatal(err)
	}
	var cnt int64
	buf := make([]byte, 32<<10)
	for {
		n, err := zr.Read(buf)
		for _, b := range buf[:n] {
			if b != 0 {
				t.Fatal("non-zero byte from the zero generator")
			}
		}
		cnt += int64(n)
		if err != nil {
			break
		}
	}
	if cnt != 100_000 {
		t.Fatalf("generator inflates to %d bytes, want 100000", cnt)
	}

	bomb := gzipZeros(1 << 30)
	o := config.Origin{Source: "nocloud:/dev/vdb", File: "user-data"}
	_, err = Parse(context.Background(), DataSet{UserData: &Blob{Origin: o, Data: bomb}}, Options{MaxDecompressed: 8 << 20})
	if err == nil || !strings.Contains(err.Error(), "nocloud:/dev/vdb:user-data") || !strings.Contains(err.Error(), "exceeds the limit") {
		t.Fatalf("bomb: %v", err)
	}
	// The same inside a MIME part, and inside write_files.
	mime := "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=XX\n\n--XX\nContent-Type: application/x-gzip\nContent-Transfer-Encoding: base64\n\n" +
		b64(gzipZeros(20<<20)) + "\n--XX--\n"
	_, err = Parse(context.Background(), DataSet{UserData: &Blob{Origin: o, Data: []byte(mime)}}, Options{MaxDecompressed: 1 << 20})
	if err == nil || !strings.Contains(err.Error(), "exceeds the limit") {
		t.Fatalf("MIME bomb: %v", err)
	}
	wf := "#cloud-config\nwrite_files:\n- path: /x\n  encoding: gz+b64\n  content: " + b64(gzipZeros(20<<20)) + "\n"
	_, err = Parse(context.Background(), DataSet{UserData: &Blob{Origin: o, Data: []byte(wf)}}, Options{MaxDecompressed: 1 << 20})
	if err == nil || !strings.Contains(err.Error(), "write_files[0]") {
		t.Fatalf("write_files bomb: %v", err)
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func TestDefaultUserFromCloudCfg(t *testing.T) {
	u, err := DefaultUserFromCloudCfg(map[string][]byte{
		"/etc/cloud/cloud.cfg.d/99-z.cfg": []byte("system_info: {default_user: {shell: /bin/zsh}}\n"),
		"/etc/cloud/cloud.cfg":            []byte("system_info:\n  default_user:\n    name: opensuse\n    groups: adm, wheel\n    sudo: ALL=(ALL) NOPASSWD:ALL\n    lock-passwd: false\n    shell: /bin/bash\n"),
		"/etc/cloud/cloud.cfg.d/10-a.cfg": []byte("system_info: {default_user: {gecos: A, shell: /bin/sh}}\n"),
		"/etc/cloud/cloud.cfg.d/README":   []byte("not yaml: [\n"),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := &config.User{Name: "opensuse", Gecos: "A", Groups: []string{"adm", "wheel"}, Sudo: []string{"ALL=(ALL) NOPASSWD:ALL"}, Shell: "/bin/zsh"}
	u.Origin = config.Origin{}
	if !reflect.DeepEqual(u, want) {
		t.Errorf("got %+v\nwant %+v", u, want)
	}
	if u, err := DefaultUserFromCloudCfg(map[string][]byte{"/etc/cloud/cloud.cfg": []byte("users: [default]\n")}); u != nil || err != nil {
		t.Errorf("no default_user: %v, %v", u, err)
	}
	if _, err := DefaultUserFromCloudCfg(map[string][]byte{"/etc/cloud/cloud.cfg": []byte("system_info: {default_user: {gecos: x}}\n")}); err == nil {
		t.Error("default_user without name accepted")
	}
}

func TestIncludeFetchError(t *testing.T) {
	opts := Options{FetchInclude: func(ctx context.Context, url string) ([]byte, error) {
		return nil, context.DeadlineExceeded
	}}
	_, err := Parse(context.Background(), DataSet{UserData: &Blob{Data: []byte("#include\nhttp://x/y\n")}}, opts)
	if err == nil || !strings.Contains(err.Error(), "http://x/y") {
		t.Fatalf("got %v", err)
	}
	// An include that includes itself stops at the depth limit.
	loop := Options{FetchInclude: func(ctx context.Context, url string) ([]byte, error) {
		return []byte("#include " + url + "\n"), nil
	}}
	_, err = Parse(context.Background(), DataSet{UserData: &Blob{Data: []byte("#include http://loop\n")}}, loop)
	if err == nil || !strings.Contains(err.Error(), "too deeply") {
		t.Fatalf("loop: %v", err)
	}
}

func TestVendorJSON(t *testing.T) {
	for in, want := range map[string]string{
		`"#cloud-config\na: 1"`:             `["#cloud-config\na: 1"]`,
		`["#!/bin/sh", "#cloud-config"]`:    `["#!/bin/sh","#cloud-config"]`,
		`{"cloud-init": "#cloud-config"}`:   `["#cloud-config"]`,
		`{"cloud-init": ["x"], "other": 1}`: `["x"]`,
		`{"nothing": 1}`:                    `null`,
		`null`:                              `null`,
	} {
		got, err := vendorJSON([]byte(in))
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		var s []string
		for _, g := range got {
			s = append(s, string(g))
		}
		if asJSON(s) != want {
			t.Errorf("%s: got %s want %s", in, asJSON(s), want)
		}
	}
	for _, in := range []string{`{"cloud-init": {"cloud-init": "x"}}`, `5`, `{`} {
		if _, err := vendorJSON([]byte(in)); err == nil {
			t.Errorf("%s accepted", in)
		}
	}
}

// TestAptPreserveSourcesList: preserve_sources_list true asks for what
// provision does anyway, so only false (cloud-init's default: render
// sources.list from its template) is reported as not applied.
func TestAptPreserveSourcesList(t *testing.T) {
	for _, c := range []struct {
		value string
		warn  bool
	}{{"true", false}, {"false", true}, {"'maybe'", true}} {
		doc := "#cloud-config\napt:\n  preserve_sources_list: " + c.value + "\n"
		cfg, err := Parse(context.Background(), DataSet{UserData: &Blob{Data: []byte(doc)}}, Options{})
		if err != nil {
			t.Fatalf("%s: %v", c.value, err)
		}
		warned := false
		for _, w := range cfg.Warnings {
			warned = warned || strings.Contains(w.Message, "apt.preserve_sources_list")
		}
		if warned != c.warn {
			t.Errorf("preserve_sources_list: %s: warned %v, want %v (%v)", c.value, warned, c.warn, cfg.Warnings)
		}
	}
}
