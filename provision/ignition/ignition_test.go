package ignition

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provision-dev/provision/provision/config"
)

var update = flag.Bool("update", false, "rewrite golden files")

var testOrigin = config.Origin{Source: "test", File: "config.ign"}

// dump renders a Config as one JSON line per item, origins as strings and
// contents as text, so golden files are readable.
func dump(c *config.Config) string {
	var b strings.Builder
	line := func(kind string, v any) {
		j, err := json.Marshal(v)
		if err != nil {
			panic(err)
		}
		fmt.Fprintf(&b, "%s %s\n", kind, j)
	}
	type group config.Group
	type user config.User
	type key config.AuthorizedKey
	type file config.File
	type dir config.Directory
	type lnk config.Link
	type unit config.Unit
	for _, g := range c.Groups {
		line("group", struct {
			group
			Origin string
		}{group(g), g.Origin.String()})
	}
	for _, u := range c.Users {
		line("user", struct {
			user
			Origin string
		}{user(u), u.Origin.String()})
	}
	for _, k := range c.SSHKeys {
		line("key", struct {
			key
			Origin string
		}{key(k), k.Origin.String()})
	}
	for _, f := range c.Files {
		mode := ""
		if f.Mode != nil {
			mode = fmt.Sprintf("%04o", uint32(*f.Mode))
		}
		var contents *string
		if f.Contents != nil {
			s := string(f.Contents)
			contents = &s
		}
		line("file", struct {
			file
			Origin   string
			Contents *string
			Mode     string
		}{file(f), f.Origin.String(), contents, mode})
	}
	for _, d := range c.Directories {
		mode := ""
		if d.Mode != nil {
			mode = fmt.Sprintf("%04o", uint32(*d.Mode))
		}
		line("directory", struct {
			dir
			Origin string
			Mode   string
		}{dir(d), d.Origin.String(), mode})
	}
	for _, l := range c.Links {
		line("link", struct {
			lnk
			Origin string
		}{lnk(l), l.Origin.String()})
	}
	for _, u := range c.Units {
		line("unit", struct {
			unit
			Origin string
		}{unit(u), u.Origin.String()})
	}
	for _, w := range c.Warnings {
		fmt.Fprintf(&b, "warning %s\n", w)
	}
	return b.String()
}

func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/*.ign")
	if err != nil || len(inputs) == 0 {
		t.Fatal("no testdata/*.ign", err)
	}
	for _, in := range inputs {
		t.Run(filepath.Base(in), func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			c, err := Parse(testOrigin, data)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Validate(); err != nil {
				t.Errorf("the model refuses the result: %v", err)
			}
			got := dump(c)
			want := strings.TrimSuffix(in, ".ign") + ".golden"
			if *update {
				if err := os.WriteFile(want, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			w, err := os.ReadFile(want)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if string(w) != got {
				t.Errorf("%s differs (run with -update to accept):\n--- want\n%s--- got\n%s", want, w, got)
			}
		})
	}
}

func gz(s string) string {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return base64.StdEncoding.EncodeToString(b.Bytes())
}

func TestErrors(t *testing.T) {
	v := func(version, rest string) string {
		return `{"ignition": {"version": "` + version + `"}` + rest + "}"
	}
	bomb := func() string {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		w.Write(make([]byte, MaxDecompressed+1))
		w.Close()
		return base64.StdEncoding.EncodeToString(b.Bytes())
	}()
	cases := []struct {
		name, in, want string
		unsupported    bool
	}{
		{"empty", "", "test:config.ign: empty Ignition config", false},
		{"syntax", "{\"ignition\": {\"version\": \"3.0.0\"},\n  \"passwd\": {\"users\": [}\n}", "test:config.ign:2:24: invalid JSON: invalid character '}'", false},
		{"truncated", `{"ignition": {"version": "3.0.0"}`, "unexpected end of JSON input", false},
		{"trailing garbage", `{"ignition": {"version": "3.0.0"}}x`, "test:config.ign:1:35: invalid JSON: invalid character 'x' after top-level value", false},
		{"literal", "{\"ignition\": {\"version\": \"3.0.0\"},\n \"passwd\": tru}", "test:config.ign:2:15: invalid JSON: invalid character '}' in literal true", false},
		{"trailing", `{"ignition": {"version": "3.0.0"}} {}`, "test:config.ign:1:36: invalid JSON: invalid character '{' after top-level value", false},
		{"duplicate key", "{\"ignition\": {\"version\": \"3.0.0\"},\n \"passwd\": {}, \"passwd\": {}}", "test:config.ign:2:16: invalid JSON: duplicate key \"passwd\" (first at 2:2)", false},
		{"not object", `[1]`, "must be a JSON object", false},
		{"no ignition", `{"passwd": {}}`, `the "ignition" section with a "version" is missing`, false},
		{"no version", `{"ignition": {}}`, "ignition.version is missing", false},
		{"spec 2", v("2.3.0", ""), "test:config.ign:1:26: ignition.version: Ignition spec 2.x is not supported; convert", true},
		{"spec 1", `{"ignitionVersion": 1}`, "Ignition spec 1 is not supported", true},
		{"spec 4", v("4.0.0", ""), `spec "4.0.0" is not supported (3.0.0 to 3.6.0 are)`, true},
		{"spec 3.7", v("3.7.0", ""), `spec "3.7.0" is not supported`, true},
		{"experimental", v("3.7.0-experimental", ""), `spec "3.7.0-experimental" is not supported`, true},
		{"bad version", v("3.1", ""), `"3.1" is not a valid version`, false},
		{"disks", "{\"ignition\": {\"version\": \"3.0.0\"},\n  \"storage\": {\"disks\": [{\"device\": \"/dev/sda\"}]}}", "test:config.ign:2:24: storage.disks: provision applies a config inside a snapshot", true},
		{"raid", v("3.0.0", `, "storage": {"raid": [{}]}`), "storage.raid:", true},
		{"luks", v("3.2.0", `, "storage": {"luks": [{"name": "x"}]}`), "storage.luks:", true},
		{"filesystems", v("3.0.0", `, "storage": {"filesystems": [{"device": "/dev/sda1"}]}`), "storage.filesystems:", true},
		{"disks alternative", v("3.0.0", `, "storage": {"disks": [{"device": "/dev/sda"}]}`), "not supported by this release; instead, lay out the disks when the image is built", true},
		{"filesystems alternative", v("3.0.0", `, "storage": {"filesystems": [{"device": "/dev/sda1"}]}`), "mount a filesystem that exists with a .mount unit in systemd.units", true},
		{"kargs", v("3.3.0", `, "kernelArguments": {"shouldExist": ["quiet"]}`), "kernelArguments.shouldExist: changing kernel arguments is: not supported", true},
		{"kargs alternative", v("3.3.0", `, "kernelArguments": {"shouldNotExist": ["quiet"]}`), "not supported by this release; instead, set them in the boot loader's configuration", true},
		{"config merge without fetcher", `{"ignition": {"version": "3.1.0", "config": {"merge": [{"source": "https://a/b"}]}}}`, "test:config.ign:1:56: ignition.config.merge[0]: fetching https://a/b: referenced configs cannot be fetched here", false},
		{"config replace without fetcher", `{"ignition": {"version": "3.1.0", "config": {"replace": {"source": "https://a/b"}}}}`, "ignition.config.replace: fetching https://a/b: referenced configs cannot be fetched here", false},
		{"config merge s3", `{"ignition": {"version": "3.1.0", "config": {"merge": [{"source": "s3://bucket/key"}]}}}`, "ignition.config.merge[0].source: fetching s3: URLs is not supported by this release: it needs AWS credentials", true},
		{"config merge no source", `{"ignition": {"version": "3.1.0", "config": {"merge": [{"verification": {}}]}}}`, "ignition.config.merge[0]: source is required", false},
		{"config merge twice", `{"ignition": {"version": "3.1.0", "config": {"merge": [{"source": "data:,{}"}, {"source": "data:,{}"}]}}}`, "ignition.config.merge[1]: data: URL is merged twice (also at 1:56)", false},
		{"config merge bad hash", `{"ignition": {"version": "3.1.0", "config": {"merge": [{"source": "data:,{}", "verification": {"hash": "sha1-00"}}]}}}`, `hash function "sha1" is not supported`, false},
		{"config merge headers on data", `{"ignition": {"version": "3.1.0", "config": {"merge": [{"source": "data:,{}", "httpHeaders": [{"name": "A", "value": "b"}]}]}}}`, "ignition.config.merge[0].httpHeaders: HTTP headers need an http or https source", false},
		{"tls", `{"ignition": {"version": "3.1.0", "security": {"tls": {"certificateAuthorities": [{"source": "data:,x"}]}}}}`, "custom certificate authorities are", true},
		{"proxy", `{"ignition": {"version": "3.1.0", "proxy": {"httpsProxy": "https://p"}}}`, "ignition.proxy.httpsProxy: fetching through a proxy is", true},
		{"shouldExist false", v("3.2.0", `, "passwd": {"users": [{"name": "a", "shouldExist": false}]}`), "deleting users (shouldExist: false) is", true},
		{"group shouldExist false", v("3.2.0", `, "passwd": {"groups": [{"name": "a", "shouldExist": false}]}`), "deleting groups", true},
		{"user no name", v("3.0.0", `, "passwd": {"users": [{"uid": 5}]}`), "passwd.users[0]: name is required", false},
		{"uid string", v("3.0.0", `, "passwd": {"users": [{"name": "a", "uid": "5"}]}`), "passwd.users[0].uid: must be an integer, not a string", false},
		{"uid float", v("3.0.0", `, "passwd": {"users": [{"name": "a", "uid": 5.5}]}`), "passwd.users[0].uid: must be an integer, not 5.5", false},
		{"dup user", v("3.0.0", `, "passwd": {"users": [{"name": "a"}, {"name": "a"}]}`), `user "a" is listed twice`, false},
		{"relative path", v("3.0.0", `, "storage": {"files": [{"path": "etc/x"}]}`), `storage.files[0].path: path "etc/x" is not absolute`, false},
		{"dirty path", v("3.0.0", `, "storage": {"files": [{"path": "/etc/../x"}]}`), `is not clean`, false},
		{"dup path", v("3.0.0", `, "storage": {"files": [{"path": "/a"}], "directories": [{"path": "/a"}]}`), "/a is defined twice in storage", false},
		{"below link", v("3.0.0", `, "storage": {"links": [{"path": "/l", "target": "/t"}], "files": [{"path": "/l/f"}]}`), "file /l/f is below the link /l", false},
		{"mode range", v("3.0.0", `, "storage": {"files": [{"path": "/a", "mode": 4096}]}`), "storage.files[0].mode: 4096 is not a valid mode", false},
		{"mode octal string", v("3.0.0", `, "storage": {"files": [{"path": "/a", "mode": "0644"}]}`), "mode: must be an integer, not a string", false},
		{"overwrite without source", v("3.0.0", `, "storage": {"files": [{"path": "/a", "overwrite": true}]}`), "overwrite is true but contents.source is not set", false},
		{"user id and name", v("3.0.0", `, "storage": {"files": [{"path": "/a", "user": {"id": 1, "name": "x"}}]}`), "storage.files[0].user: set either id or name, not both", false},
		{"bad compression", v("3.0.0", `, "storage": {"files": [{"path": "/a", "contents": {"source": "data:,x", "compression": "xz"}}]}`), `unknown compression "xz"`, false},
		{"remote gzip", v("3.0.0", `, "storage": {"files": [{"path": "/a", "contents": {"source": "https://x/y", "compression": "gzip"}}]}`), "gzip compression of remote (http/https) contents is", true},
		{"bad gzip", v("3.0.0", `, "storage": {"files": [{"path": "/a", "contents": {"source": "data:,notgzip", "compression": "gzip"}}]}`), "gzip:", false},
		{"gzip bomb", v("3.0.0", `, "storage": {"files": [{"path": "/a", "contents": {"source": "data:;base64,`+bomb+`", "compression": "gzip"}}]}`), "larger than 64 MiB once decompressed", false},
		{"hash mismatch", v("3.0.0", `, "storage": {"files": [{"path": "/a", "contents": {"source": "data:;base64,`+gz("x")+`", "compression": "gzip", "verification": {"hash": "sha256-`+strings.Repeat("0", 64)+`"}}}]}`), "contents do not match sha256-000", false},
		{"hash malformed", v("3.0.0", `, "storage": {"files": [{"path": "/a", "contents": {"source": "https://x", "verification": {"hash": "md5-00"}}}]}`), `hash function "md5" is not supported`, false},
		{"hash short", v("3.0.0", `, "storage": {"files": [{"path": "/a", "contents": {"source": "https://x", "verification": {"hash": "sha512-00"}}}]}`), "must be 128 hex digits", false},
		{"hash without source", v("3.0.0", `, "storage": {"files": [{"path": "/a", "contents": {"verification": {"hash": "sha512-00"}}}]}`), "verification.hash is set but source is not", false},
		{"tftp", v("3.0.0", `, "storage": {"files": [{"path": "/a", "contents": {"source": "tftp://h/f"}}]}`), "storage.files[0].contents.source: fetching tftp: URLs is not supported by this release: TFTP is a protocol provision does not speak at first boot; serve the file over https:// (or http://) instead", true},
		{"s3", v("3.0.0", `, "storage": {"files": [{"path": "/a", "contents": {"source": "s3://bucket/key"}}]}`), "fetching s3: URLs is not supported by this release: it needs AWS credentials and the AWS SDK, which provision does not carry at first boot; give a presigned https:// URL of the object instead", true},
		{"arn", v("3.2.0", `, "storage": {"files": [{"path": "/a", "append": [{"source": "arn:aws:s3:us-west-2:123456789012:accesspoint/test/object/some/path"}]}]}`), "storage.files[0].append[0].source: fetching arn: URLs is not supported by this release: it needs AWS credentials", true},
		{"gs", v("3.1.0", `, "storage": {"files": [{"path": "/a", "contents": {"source": "gs://bucket/key"}}]}`), "fetching gs: URLs is not supported by this release: it needs Google Cloud credentials and its client library, which provision does not carry at first boot; give a signed https:// URL", true},
		{"replace tftp", `{"ignition": {"version": "3.1.0", "config": {"replace": {"source": "tftp://h/c.ign"}}}}`, "ignition.config.replace.source: fetching tftp: URLs", true},
		{"bad scheme", v("3.0.0", `, "storage": {"files": [{"path": "/a", "contents": {"source": "ftp://h/f"}}]}`), `unknown URL scheme "ftp"`, false},
		{"bad data url", v("3.0.0", `, "storage": {"files": [{"path": "/a", "contents": {"source": "data:text/plain"}}]}`), "data: URL has no comma", false},
		{"bad base64", v("3.0.0", `, "storage": {"files": [{"path": "/a", "contents": {"source": "data:;base64,!!!"}}]}`), "invalid base64", false},
		{"bad percent", v("3.0.0", `, "storage": {"files": [{"path": "/a", "contents": {"source": "data:,%zz"}}]}`), "invalid percent-encoding", false},
		{"http headers on data", v("3.1.0", `, "storage": {"files": [{"path": "/a", "contents": {"source": "data:,x", "httpHeaders": [{"name": "A", "value": "b"}]}}]}`), "storage.files[0].contents.httpHeaders: HTTP headers need an http or https source", false},
		{"http headers without source", v("3.1.0", `, "storage": {"files": [{"path": "/a", "contents": {"httpHeaders": [{"name": "A", "value": "b"}]}}]}`), "HTTP headers need an http or https source", false},
		{"http header twice", v("3.1.0", `, "storage": {"files": [{"path": "/a", "contents": {"source": "https://x", "httpHeaders": [{"name": "A", "value": "b"}, {"name": "a", "value": "c"}]}}]}`), `storage.files[0].contents.httpHeaders[1]: header "a" is given twice (also at 1:125)`, false},
		{"http header no name", v("3.1.0", `, "storage": {"files": [{"path": "/a", "contents": {"source": "https://x", "httpHeaders": [{"value": "b"}]}}]}`), `httpHeaders[0]: name is required`, false},
		{"http header bad name", v("3.1.0", `, "storage": {"files": [{"path": "/a", "contents": {"source": "https://x", "httpHeaders": [{"name": "A B", "value": "b"}]}}]}`), `"A B" is not a valid HTTP header name`, false},
		{"http header empty value", v("3.1.0", `, "storage": {"files": [{"path": "/a", "append": [{"source": "https://x", "httpHeaders": [{"name": "A", "value": ""}]}]}]}`), `storage.files[0].append[0].httpHeaders[0].value: the value of "A" must not be empty`, false},
		{"http header no value", v("3.1.0", `, "storage": {"files": [{"path": "/a", "contents": {"source": "https://x", "httpHeaders": [{"name": "A"}]}}]}`), `header "A" has no value`, false},
		{"http header line break", v("3.1.0", `, "storage": {"files": [{"path": "/a", "contents": {"source": "https://x", "httpHeaders": [{"name": "A", "value": "b\r\nX: y"}]}}]}`), `must not be empty nor hold a line break`, false},
		{"append without source", v("3.0.0", `, "storage": {"files": [{"path": "/a", "append": [{}]}]}`), "source is required for an append fragment", false},
		{"link no target", v("3.3.0", `, "storage": {"links": [{"path": "/l"}]}`), "storage.links[0]: target is required", false},
		{"unit name", v("3.0.0", `, "systemd": {"units": [{"name": "foo"}]}`), `systemd.units[0].name: "foo" is not a systemd unit name`, false},
		{"unit contents", v("3.0.0", `, "systemd": {"units": [{"name": "a.service", "contents": "[Unit\n"}]}`), "systemd.units[0].contents: invalid unit contents", false},
		{"dropin name", v("3.0.0", `, "systemd": {"units": [{"name": "a.service", "dropins": [{"name": "x.txt"}]}]}`), `drop-in name "x.txt" must be a file name ending in .conf`, false},
		{"dup unit", v("3.0.0", `, "systemd": {"units": [{"name": "a.service"}, {"name": "a.service"}]}`), "unit a.service is listed twice", false},
		{"unit path conflict", v("3.0.0", `, "storage": {"files": [{"path": "/etc/systemd/system/a.service"}]}, "systemd": {"units": [{"name": "a.service", "contents": "[Unit]\n"}]}`), "/etc/systemd/system/a.service is also written by the systemd unit", false},
		{"wrong type list", v("3.0.0", `, "storage": {"files": {}}`), "storage.files: must be a list, not an object", false},
		{"enabled string", v("3.0.0", `, "systemd": {"units": [{"name": "a.service", "enabled": "yes"}]}`), "systemd.units[0].enabled: must be true or false, not a string", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(testOrigin, []byte(c.in))
			if err == nil {
				t.Fatalf("no error, want %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error\n  %v\nwant it to contain\n  %s", err, c.want)
			}
			if !strings.HasPrefix(err.Error(), "test:config.ign") {
				t.Errorf("error %q does not start with the origin", err)
			}
			if got := errors.Is(err, ErrUnsupported); got != c.unsupported {
				t.Errorf("errors.Is(err, ErrUnsupported) = %v, want %v", got, c.unsupported)
			}
		})
	}
}

// TestAllErrorsReported: several problems give several errors, each with
// its own position.
func TestAllErrorsReported(t *testing.T) {
	in := "{\"ignition\": {\"version\": \"3.0.0\"},\n\"storage\": {\"files\": [{\"path\": \"a\"}, {\"path\": \"/b\", \"mode\": -1}]},\n\"systemd\": {\"units\": [{\"name\": \"x\"}]}}"
	_, err := Parse(testOrigin, []byte(in))
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 errors, got %d:\n%v", len(lines), err)
	}
	for i, want := range []string{"test:config.ign:2:32:", "test:config.ign:2:61:", "test:config.ign:3:32:"} {
		if !strings.HasPrefix(lines[i], want) {
			t.Errorf("error %d = %q, want prefix %q", i, lines[i], want)
		}
	}
}

func TestDefaults(t *testing.T) {
	in := `{"ignition": {"version": "3.3.0"}, "storage": {
		"files": [{"path": "/f", "contents": {"source": "data:,x"}}, {"path": "/g"}],
		"directories": [{"path": "/d"}],
		"links": [{"path": "/l", "target": "rel/t"}, {"path": "/h", "target": "rel/t", "hard": true}]}}`
	c, err := Parse(testOrigin, []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	f := c.Files[0]
	if f.Mode == nil || *f.Mode != 0o644 || f.Overwrite == nil || *f.Overwrite {
		t.Errorf("file with contents: mode %v overwrite %v, want 0644 and false", f.Mode, f.Overwrite)
	}
	if g := c.Files[1]; g.Mode != nil || g.Contents != nil || *g.Overwrite {
		t.Errorf("file without contents: mode %v contents %v: an existing file must keep its mode", g.Mode, g.Contents)
	}
	if d := c.Directories[0]; d.Mode != nil {
		t.Errorf("directory mode %v: unset lets an existing directory keep its mode (new ones get 0755)", *d.Mode)
	}
	if l := c.Links[0]; l.Target != "rel/t" || l.Hard || *l.Overwrite {
		t.Errorf("symlink %+v", l)
	}
	if l := c.Links[1]; l.Target != "/rel/t" || !l.Hard {
		t.Errorf("hard link target %q, want it joined to the root", l.Target)
	}
}

func TestPosition(t *testing.T) {
	data := []byte("ab\ncdé\nf")
	for _, c := range []struct{ off, line, col int }{{0, 1, 1}, {2, 1, 3}, {3, 2, 1}, {7, 2, 4}, {8, 3, 1}, {100, 3, 2}} {
		l, col := position(data, c.off)
		if l != c.line || col != c.col {
			t.Errorf("position(%d) = %d:%d, want %d:%d", c.off, l, col, c.line, c.col)
		}
	}
}

// An unknown key, or one from a later spec, is a warning naming it (and
// the key it was probably meant to be) and is ignored, as Ignition does;
// the rest of the config still applies.
func TestUnknownKeysWarn(t *testing.T) {
	v := func(version, rest string) string {
		return `{"ignition": {"version": "` + version + `"}` + rest + `}`
	}
	cases := []struct{ name, in, want string }{
		{"unknown key", "{\"ignition\": {\"version\": \"3.2.0\"},\n\"storage\": {\"files\": [{\"path\": \"/a\",\n  \"overwite\": true}]}}", `test:config.ign:3:3: storage.files[0].overwite: unknown key "overwite" ignored, as Ignition does (did you mean "overwrite"?)`},
		{"unknown top key", v("3.0.0", `, "sytemd": {}`), `test:config.ign:1:36: sytemd: unknown key "sytemd" ignored, as Ignition does (did you mean "systemd"?)`},
		{"generator key", v("3.2.0", `, "human_read": "root password set"`), `human_read: unknown key "human_read" ignored, as Ignition does`},
		{"key too new", v("3.0.0", `, "kernelArguments": {}`), `kernelArguments: key "kernelArguments" needs spec 3.3.0 or later: ignored in this 3.0.0 config`},
		{"shouldExist too new", v("3.1.0", `, "passwd": {"users": [{"name": "a", "shouldExist": true}]}`), `needs spec 3.2.0`},
		{"http headers in 3.0", v("3.0.0", `, "storage": {"files": [{"path": "/a", "contents": {"source": "data:,x", "httpHeaders": []}}]}`), "needs spec 3.1.0"},
		{"column counts characters", "{\"ignition\": {\"version\": \"3.0.0\"}, \"passwd\": {\"users\": [{\"gecos\": \"é\", \"x\": 1, \"name\": \"a\"}]}}", "test:config.ign:1:72: passwd.users[0].x"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Parse(testOrigin, []byte(c.in))
			if err != nil {
				t.Fatalf("error %v; want a warning", err)
			}
			var all []string
			for _, w := range cfg.Warnings {
				all = append(all, w.String())
			}
			if !strings.Contains(strings.Join(all, "\n"), c.want) {
				t.Errorf("warnings %q lack %q", all, c.want)
			}
		})
	}
}

// Ignition creates a user with "*" when the config has no passwordHash, so
// no password login; an empty passwordHash sets "*" on an existing user too.
func TestPasswordDefaults(t *testing.T) {
	in := `{"ignition": {"version": "3.4.0"}, "passwd": {"users": [
		{"name": "nohash"}, {"name": "empty", "passwordHash": ""}, {"name": "hashed", "passwordHash": "$6$s$h"}]}}`
	c, err := Parse(testOrigin, []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		initial string
		pw      config.Password
	}{
		{"*", config.Password{}},
		{"", config.Password{Kind: config.PasswordHash, Value: "*"}},
		{"", config.Password{Kind: config.PasswordHash, Value: "$6$s$h"}},
	}
	for i, u := range c.Users {
		if u.InitialPassword != want[i].initial || u.Password != want[i].pw {
			t.Errorf("%s: initial %q, password %+v; want %q, %+v", u.Name, u.InitialPassword, u.Password, want[i].initial, want[i].pw)
		}
	}
}
