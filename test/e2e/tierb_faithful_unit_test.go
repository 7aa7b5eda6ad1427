package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestLoaderKeys(t *testing.T) {
	k := loaderKeys("# comment\ntitle  T\noptions a=1  b\noptions c\nlinux /x/linux\n\ninitrd /x/initrd\n")
	if k["options"] != "a=1  b c" || k["linux"] != "/x/linux" || k["initrd"] != "/x/initrd" || k["title"] != "T" {
		t.Errorf("loaderKeys = %q", k)
	}
}

// PickLoaderEntry on a FAT image made with mkfs.vfat and mtools: no
// default picks the first entry, a default (or a glob) names one.
func TestPickLoaderEntry(t *testing.T) {
	for _, tool := range []string{"mkfs.vfat", "mcopy", "mtype", "mdir"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
	entry := func(n string) TreeEntry {
		return TreeEntry{Mode: 0o644, Data: []byte("title T\noptions root=UUID=u rootflags=subvol=@/.snapshots/" + n + "/snapshot\nlinux /t/linux-" + n + "\ninitrd /t/initrd-" + n + "\n")}
	}
	for _, c := range []struct{ conf, want string }{
		{"timeout 5\n", "tok-1.conf"},
		{"timeout 5\ndefault tok-2.conf\n", "tok-2.conf"},
		{"default tok-*\n", "tok-2.conf"},
	} {
		dir := t.TempDir()
		img, err := VFATImage(dir, "esp.img", "EFI", Tree{
			"loader/loader.conf":        {Mode: 0o644, Data: []byte(c.conf)},
			"loader/entries/tok-1.conf": entry("1"),
			"loader/entries/tok-2.conf": entry("2"),
			"t/linux-2":                 {Mode: 0o644, Data: []byte("kernel 2")},
			"t/initrd-2":                {Mode: 0o644, Data: []byte("initrd 2")},
		})
		if err != nil {
			t.Fatal(err)
		}
		e, err := PickLoaderEntry(img)
		if err != nil {
			t.Fatal(err)
		}
		if e.Name != c.want {
			t.Errorf("loader.conf %q: picked %s, want %s", c.conf, e.Name, c.want)
		}
		if e.Name == "tok-2.conf" {
			k, i, err := ExtractLoaderEntry(img, e, dir)
			if err != nil {
				t.Fatal(err)
			}
			if b, _ := os.ReadFile(k); string(b) != "kernel 2" {
				t.Errorf("extracted kernel %q", b)
			}
			if b, _ := os.ReadFile(i); string(b) != "initrd 2" {
				t.Errorf("extracted initrd %q", b)
			}
		}
	}
}

// The appended archive starts on a 4-byte boundary with the newc magic.
func TestNestedEtcInitrd(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base.img")
	if err := os.WriteFile(base, []byte("12345"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := NestedEtcInitrd(dir, base)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	if !bytes.HasPrefix(b, []byte("12345\x00\x00\x00070701")) {
		t.Errorf("appended archive is not aligned: %q", b[:20])
	}
	if !bytes.Contains(b, []byte("sysroot-etc.mount.d/e2e-sysroot-source.conf")) || !bytes.Contains(b, []byte("What=/sysroot/etc")) {
		t.Errorf("archive lacks the sysroot-etc.mount drop-in")
	}
}
