package ignition

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse: bad input never panics or hangs; a config that parses
// carries positions inside the document.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.ign")
	for _, s := range seeds {
		if data, err := os.ReadFile(s); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(`{"ignition":{"version":"3.0.0"},"storage":{"files":[{"path":"/a","contents":{"source":"data:;base64,H4sIAAAAAAAA/w==","compression":"gzip"}}]}}`))
	f.Add([]byte(`{"ignition":{"version":"3.5.0"},"systemd":{"units":[{"name":"a.service","contents":"[Unit]\n\\\n","dropins":[{"name":"a.conf"}]}]}}`))
	f.Add([]byte(`{"ignition":{"version":"2.2.0"}}`))
	// Merges and replaces of data: URLs (read without a fetcher), nested,
	// with headers that only a merge may leave without a value.
	f.Add([]byte(`{"ignition":{"version":"3.1.0","config":{"merge":[{"source":"data:,{"ignition":{"version":"3.0.0"},"storage":{"directories":[{"path":"/a"}]}}"}]}},"storage":{"files":[{"path":"/a"}]}}`))
	f.Add([]byte(`{"ignition":{"version":"3.3.0","config":{"replace":{"source":"data:,{"ignition":{"version":"3.3.0","config":{"merge":[{"source":"data:,x"}]}}}","compression":null}}}}`))
	f.Add([]byte(`{"ignition":{"version":"3.1.0"},"storage":{"files":[{"path":"/a","contents":{"source":"https://h/x","httpHeaders":[{"name":"A","value":"b"},{"name":"a"}]}}]}}`))
	f.Add([]byte(`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(testOrigin, data)
		if err != nil {
			return
		}
		lines := 1
		for _, b := range data {
			if b == '\n' {
				lines++
			}
		}
		for _, u := range c.Users {
			if u.Origin.Line < 1 || u.Origin.Line > lines {
				t.Fatalf("user origin %v outside the document", u.Origin)
			}
		}
		for _, fl := range c.Files {
			if fl.Origin.Line < 1 || fl.Origin.Line > lines {
				t.Fatalf("file origin %v outside the document", fl.Origin)
			}
		}
	})
}
