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
