package units

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/provision-dev/provision/modules/rootfs"
)

// FuzzInstall feeds arbitrary unit files to the [Install] parser and the
// link computation: errors are fine, panics and hangs are not, and every
// link computed stays under /etc/systemd/system.
func FuzzInstall(f *testing.F) {
	for _, c := range fixture {
		f.Add([]byte(c), "x@y.service")
	}
	f.Add([]byte("[Install]\nWantedBy=%n%N%p%P%i%I%j%J%%\nAlias=a@.service\nDefaultInstance=\\\n"), "a@.service")
	f.Add([]byte("[Install]\nAlso=x.service\nWantedBy='a b' \"c\n"), "x.service")
	f.Fuzz(func(t *testing.T, data []byte, name string) {
		var info installInfo
		_ = parseInstall(data, "f", &info)
		dir := t.TempDir()
		n, ok := parseUnitName(name)
		if !ok {
			return
		}
		file := n.full
		if n.instanced {
			file = n.templateName()
		}
		p := filepath.Join(dir, "usr/lib/systemd/system", file)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return
		}
		root, _ := rootfs.New(dir)
		links, err := newView(root).enableLinks(name)
		if err != nil {
			return
		}
		for _, l := range links {
			if filepath.Dir(filepath.Dir(l.path)) != configDir && filepath.Dir(l.path) != configDir {
				t.Fatalf("link %s outside %s", l.path, configDir)
			}
		}
	})
}
