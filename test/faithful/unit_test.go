package faithful

import (
	"os"
	"path/filepath"
	"testing"
)

func TestEntryOptions(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"console=ttyS0", "console=ttyS0 root=UUID=U rootflags=subvol=S"},
		{"BOOT_IMAGE=/vmlinuz  root=/dev/vda3 quiet  rootflags=subvol=@/x systemd.machine_id=abc",
			"root=UUID=U quiet rootflags=subvol=S"},
		{"", "root=UUID=U rootflags=subvol=S"},
	} {
		if got := entryOptions(c.in, "U", "S"); got != c.want {
			t.Errorf("entryOptions(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestEntryTitle(t *testing.T) {
	tw := map[string]string{"PRETTY_NAME": "openSUSE MicroOS", "VERSION_ID": "20250401"}
	if got := entryTitle(tw, "6.14"); got != "openSUSE MicroOS 20250401 (Initial Installation)" {
		t.Errorf("title %q", got)
	}
	deb := map[string]string{"PRETTY_NAME": "Debian GNU/Linux 12 (bookworm)", "VERSION": "12 (bookworm)", "VERSION_ID": "12"}
	if got := entryTitle(deb, "6.1"); got != "Debian GNU/Linux 12 (bookworm) (Initial Installation)" {
		t.Errorf("title %q", got)
	}
}

func TestInRootResolvesInsideTheTree(t *testing.T) {
	root := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(root, "usr/lib"), 0o755))
	must(t, os.MkdirAll(filepath.Join(root, "etc"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "usr/lib/os-release"), []byte("ID=x\n"), 0o644))
	// An absolute link must not escape to the host's /usr/lib/os-release.
	must(t, os.Symlink("/usr/lib/os-release", filepath.Join(root, "etc/os-release")))
	must(t, os.Symlink("../../..", filepath.Join(root, "usr/lib/up")))
	if got := inRoot(root, "etc/os-release"); got != filepath.Join(root, "usr/lib/os-release") {
		t.Errorf("inRoot = %s", got)
	}
	if got := inRoot(root, "usr/lib/up/etc"); got != filepath.Join(root, "etc") {
		t.Errorf("inRoot through ../ = %s", got)
	}
	if rel := osRelease(root); rel["ID"] != "x" {
		t.Errorf("osRelease = %v", rel)
	}
}

func TestSetKeys(t *testing.T) {
	p := filepath.Join(t.TempDir(), "default/snapper")
	must(t, setKeys(p, 0o600, [2]string{"A", "1"}))
	must(t, os.WriteFile(p, []byte("# c\nSNAPPER_CONFIGS=\"\"\nDISABLE_APT_SNAPSHOT=\"no\"\n"), 0o640))
	must(t, os.Chmod(p, 0o640))
	must(t, setKeys(p, 0o600, [2]string{"SNAPPER_CONFIGS", "root"}, [2]string{"NEW", "x y"}))
	b, _ := os.ReadFile(p)
	if want := "# c\nSNAPPER_CONFIGS=\"root\"\nDISABLE_APT_SNAPSHOT=\"no\"\nNEW=\"x y\"\n"; string(b) != want {
		t.Errorf("got %q, want %q", b, want)
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want the file's own 0640", st.Mode())
	}
}

func TestGrubenvIsOneBlock(t *testing.T) {
	if b := grubenvBlock(); len(b) != 1024 {
		t.Errorf("grubenv %d bytes", len(b))
	}
}

func TestVariantsAreKnown(t *testing.T) {
	for _, v := range Variants() {
		if _, err := traitsOf(v); err != nil {
			t.Error(err)
		}
	}
	if _, err := traitsOf("G"); err == nil {
		t.Error("variant G accepted")
	}
}
