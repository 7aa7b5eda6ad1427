package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// provision seed builds an image that provision --dry-run --source reads
// back into a plan; bad input exits 2.
func TestSeedCommand(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ud := write("user-data", "#cloud-config\nhostname: seeded-host\n")
	comb := filepath.Dir(write("comb/script", "#!/bin/sh\n# combustion: network\necho hi\n"))
	for _, c := range []struct {
		args []string
		plan string
	}{
		{[]string{"--format", "nocloud", "-o", filepath.Join(dir, "n.iso"), ud}, "seeded-host"},
		{[]string{"--format", "nocloud", "--vfat", ud, "-o", filepath.Join(dir, "n.img")}, "seeded-host"}, // flags after inputs
		{[]string{"--format", "configdrive", "--iso", "-o", filepath.Join(dir, "c.iso"), ud}, "seeded-host"},
		{[]string{"--format", "combustion", "-o", filepath.Join(dir, "s.img"), comb}, "combustion script"},
	} {
		var out, errb bytes.Buffer
		if code := run(append([]string{"seed"}, c.args...), &out, &errb); code != exitOK {
			t.Fatalf("seed %q: exit %d: %s", c.args, code, errb.String())
		}
		img := c.args[slices.Index(c.args, "-o")+1]
		out.Reset()
		errb.Reset()
		if code := run([]string{"--dry-run", "--source", img}, &out, &errb); code != exitOK {
			t.Fatalf("dry run of %s: exit %d: %s", img, code, errb.String())
		}
		if !strings.Contains(out.String(), "# source image:"+img) || !strings.Contains(out.String(), c.plan) {
			t.Errorf("dry run of %s printed:\n%s", img, out.String())
		}
	}

	noScript := filepath.Dir(write("noscript/other", "x"))
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--format", "nocloud", "-o", filepath.Join(dir, "x.iso"), filepath.Join(dir, "missing")}, "no such file"},
		{[]string{"--format", "combustion", "-o", filepath.Join(dir, "x.img"), noScript}, "no script"},
		{[]string{"--format", "nocloud", ud}, "-o IMAGE is required"},
		{[]string{"-o", filepath.Join(dir, "x.iso"), ud}, "--format is required"},
		{[]string{"--format", "nocloud", "--iso", "--vfat", "-o", filepath.Join(dir, "x.iso"), ud}, "not both"},
		{[]string{"--format", "floppy", "-o", filepath.Join(dir, "x.iso"), ud}, `format "floppy"`},
		{[]string{"--bogus"}, "flag provided but not defined"},
	} {
		var out, errb bytes.Buffer
		if code := run(append([]string{"seed"}, c.args...), &out, &errb); code != exitInvalid || !strings.Contains(errb.String(), c.want) {
			t.Errorf("seed %q: exit %d, stderr %q; want exit 2 with %q", c.args, code, errb.String(), c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "x.img")); err == nil {
		t.Error("a failed build left an image behind")
	}
}

// seed validates what it packs, in validate's words, and writes nothing
// when the config is invalid; --no-validate packs it anyway.
func TestSeedValidates(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "user-data")
	if err := os.WriteFile(bad, []byte("#cloud-config\nwrite_files:\n  - path: /etc/x\n    permissions: '0o9999'\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "seed.iso")
	code, _, verrs := runArgs("validate", bad)
	if code != exitInvalid {
		t.Fatalf("validate of the bad user-data: exit %d: %s", code, verrs)
	}
	if err := os.WriteFile(img, []byte("old image"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runArgs("seed", "--format", "nocloud", "-o", img, bad)
	if code != exitInvalid || out != "" || !strings.Contains(errs, "permissions:") || !strings.Contains(errs, "not written") {
		t.Errorf("seed of an invalid config: exit %d, stdout %q, stderr %q; want 2 with the errors", code, out, errs)
	}
	// The same message validate prints for the file, naming the image.
	if msg := lastLine(verrs); !strings.Contains(errs, msg[strings.Index(msg, "user-data:"):]) || !strings.Contains(errs, img+":user-data:4:18:") {
		t.Errorf("seed says\n%s\nvalidate says\n%s", errs, verrs)
	}
	if b, _ := os.ReadFile(img); string(b) != "old image" {
		t.Error("an invalid config replaced the image")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Errorf("temporary files left: %v", ents)
	}
	if code, _, errs := runArgs("seed", "--format", "nocloud", "-o", img, bad, "--no-validate"); code != exitOK {
		t.Errorf("--no-validate: exit %d: %s", code, errs)
	}
	if code, _, errs := runArgs("validate", img); code != exitInvalid {
		t.Errorf("validate of the --no-validate image: exit %d: %s", code, errs)
	}
}

// An Ignition medium: ignition/config.ign on a FAT drive labelled
// ignition, read back by the dry run.
func TestSeedIgnition(t *testing.T) {
	dir := t.TempDir()
	ign := filepath.Join(dir, "config.ign")
	cfg := `{"ignition": {"version": "3.3.0"}, "storage": {"files": [{"path": "/etc/hostname", "mode": 420, "overwrite": true, "contents": {"source": "data:,ign-host"}}]}}`
	if err := os.WriteFile(ign, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "ignition.img")
	code, out, errs := runArgs("seed", "--format", "ignition", ign, "-o", img)
	if code != exitOK || !strings.Contains(out, `vfat "ignition", 1 file(s)`) {
		t.Fatalf("seed --format ignition: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs = runArgs("--dry-run", "--source", img)
	if code != exitOK || !strings.Contains(out, "write /etc/hostname (8 bytes") || !strings.Contains(out, "ignition:"+img+":ignition/config.ign") {
		t.Errorf("dry run of the Ignition image: exit %d\n%s%s", code, out, errs)
	}
	if err := os.WriteFile(ign, []byte(`{"ignition": {"version": "3.3.0"}, "passwd": {"users": [{"name": 7}]}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := runArgs("seed", "--format", "ignition", "-o", img, ign); code != exitInvalid || !strings.Contains(errs, "ignition:") {
		t.Errorf("seed of an invalid Ignition config: exit %d, stderr %q", code, errs)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
