package provision

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/provision/config"
)

// Two names for one file of the target (merged /usr: /lib is a link to
// usr/lib) are a conflict when they say different things, as the same name
// twice would be; said identically, they agree.
func TestConflictAfterTheTargetsSymlinks(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "usr/lib/systemd/system"), 0o755)
	os.Symlink("usr/lib", filepath.Join(dir, "lib"))
	root, err := rootfs.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	o := func(line int) config.Origin {
		return config.Origin{Source: "dir:/seed", File: "user-data", Line: line, Column: 5}
	}
	file := func(p, body string, line int) config.File {
		return config.File{Origin: o(line), Path: p, Contents: []byte(body)}
	}
	cfg := &config.Config{Files: []config.File{
		file("/lib/systemd/system/app.service", "[Service]\nExecStart=/a\n", 3),
		file("/usr/lib/systemd/system/app.service", "[Service]\nExecStart=/b\n", 9),
	}}
	_, err = Plan(cfg, root)
	if err == nil {
		t.Fatal("no conflict")
	}
	for _, want := range []string{"dir:/seed:user-data:9:5", "/usr/lib/systemd/system/app.service conflicts with the file /lib/systemd/system/app.service defined at dir:/seed:user-data:3:5", "same file"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	cfg.Files[1].Contents = cfg.Files[0].Contents
	if _, err := Plan(cfg, root); err != nil {
		t.Errorf("identical definitions: %v", err)
	}
	// Appends add to a file, whatever its name.
	cfg.Files[1].Contents, cfg.Files[1].Append = []byte("# more\n"), true
	if _, err := Plan(cfg, root); err != nil {
		t.Errorf("an append: %v", err)
	}
	// Without the link, they are two files.
	os.Remove(filepath.Join(dir, "lib"))
	cfg.Files[1].Append = false
	if _, err := Plan(cfg, root); err != nil {
		t.Errorf("two files: %v", err)
	}
}
