package cloudinit

import (
	"bytes"
	"context"
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

// A case file is a small archive: "-- name --" lines start sections. The
// sections user-data, vendor-data, vendor-data2, meta-data, network-config,
// vendor_data.json, vendor_data2.json, meta_data.json and network_data.json
// fill the DataSet; cloud.cfg and cloud.cfg.d/* give the default user;
// "url:X" sections answer #include X; "options" holds words: strict.
func parseCase(t *testing.T, data []byte) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	name := ""
	for _, line := range strings.SplitAfter(string(data), "\n") {
		l := strings.TrimRight(line, "\r\n")
		if strings.HasPrefix(l, "-- ") && strings.HasSuffix(l, " --") && len(l) > 6 {
			name = l[3 : len(l)-3]
			out[name] = []byte{}
			continue
		}
		if name != "" {
			out[name] = append(out[name], line...)
		}
	}
	return out
}

func runCase(t *testing.T, sections map[string][]byte) (*config.Config, error) {
	t.Helper()
	var set DataSet
	blob := func(name string) *Blob {
		d, ok := sections[name]
		if !ok {
			return nil
		}
		return &Blob{Origin: config.Origin{Source: "test", File: name}, Data: d}
	}
	set.UserData = blob("user-data")
	set.VendorData = blob("vendor-data")
	set.VendorData2 = blob("vendor-data2")
	set.MetaData = blob("meta-data")
	set.NetworkConfig = blob("network-config")
	set.VendorDataJSON = blob("vendor_data.json")
	set.VendorData2JSON = blob("vendor_data2.json")
	set.OpenStackMetaData = blob("meta_data.json")
	set.OpenStackNetworkData = blob("network_data.json")
	var opts Options
	cfgFiles := map[string][]byte{}
	for name, d := range sections {
		if name == "cloud.cfg" || strings.HasPrefix(name, "cloud.cfg.d/") {
			cfgFiles["/etc/cloud/"+name] = d
		}
	}
	if len(cfgFiles) > 0 {
		u, err := DefaultUserFromCloudCfg(cfgFiles)
		if err != nil {
			return nil, fmt.Errorf("DefaultUserFromCloudCfg: %w", err)
		}
		opts.DefaultUser = u
	}
	for _, w := range strings.Fields(string(sections["options"])) {
		switch w {
		case "strict":
			opts.Strict = true
		case "fetch":
			opts.FetchInclude = func(ctx context.Context, url string) ([]byte, error) {
				if d, ok := sections["url:"+url]; ok {
					return d, nil
				}
				return nil, errors.New("404 not found")
			}
		default:
			t.Fatalf("unknown option %q", w)
		}
	}
	return Parse(context.Background(), set, opts)
}

// render prints a Config as indented JSON with byte fields as text, so
// golden files are readable and reviewable.
func render(cfg *config.Config, err error) []byte {
	if err != nil {
		return []byte("error:\n" + err.Error() + "\n")
	}
	raw, _ := json.Marshal(cfg)
	var tree any
	_ = json.Unmarshal(raw, &tree)
	var fix func(v any) any
	fix = func(v any) any {
		switch t := v.(type) {
		case map[string]any:
			for k, x := range t {
				if o, ok := x.(map[string]any); ok && k == "Origin" {
					var oc config.Origin
					b, _ := json.Marshal(o)
					_ = json.Unmarshal(b, &oc)
					if x = ""; oc != (config.Origin{}) {
						x = oc.String()
					}
					t[k] = x
				}
				if s, ok := x.(string); ok && (k == "Contents" || k == "Body") {
					if b, err := base64.StdEncoding.DecodeString(s); err == nil {
						t[k] = string(b)
					}
					continue
				}
				if x == nil || x == false || x == "" || x == float64(0) && k != "UID" && k != "GID" && k != "Inactive" && k != "Mode" {
					delete(t, k)
					continue
				}
				if m, ok := x.(map[string]any); ok && len(m) == 0 {
					delete(t, k)
					continue
				}
				if t[k] = fix(x); t[k] == nil {
					delete(t, k)
				}
				if m, ok := t[k].(map[string]any); ok && len(m) == 0 {
					delete(t, k)
				}
			}
			return t
		case []any:
			for i := range t {
				t[i] = fix(t[i])
			}
		}
		return v
	}
	tree = fix(tree)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	_ = enc.Encode(tree)
	return buf.Bytes()
}

func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/cases/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no cases: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".txt")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			got := render(runCase(t, parseCase(t, data)))
			golden := filepath.Join("testdata", "golden", name+".json")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("output differs from %s:\n%s", golden, diffLines(string(want), string(got)))
			}
		})
	}
}

func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d:\n- %s\n+ %s\n", i+1, wl, gl)
			if b.Len() > 2000 {
				break
			}
		}
	}
	return b.String()
}
