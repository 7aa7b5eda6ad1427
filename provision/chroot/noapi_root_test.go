package chroot_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/provision/chroot"
)

// NoAPI: the tree gets its own filesystems only (a tmpfs /var from its
// fstab here), no /proc, /sys, /dev, /run or /tmp, and no program runs.
func TestNoAPIMountsOnlyTheTargetsOwn(t *testing.T) {
	requireRoot(t)
	dir := tinyTree(t, "")
	if err := os.WriteFile(filepath.Join(dir, "etc/fstab"), []byte("tmpfs /var tmpfs mode=0755 0 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := setup(t, dir, chroot.Options{NoAPI: true})
	mounts := strings.Join(mountsUnder(t, dir), " ")
	if !strings.Contains(mounts, filepath.Join(dir, "var")) {
		t.Errorf("the target's own /var is not mounted: %s", mounts)
	}
	for _, api := range []string{"proc", "sys", "dev", "run", "tmp"} {
		if strings.Contains(mounts, filepath.Join(dir, api)) {
			t.Errorf("/%s mounted with NoAPI: %s", api, mounts)
		}
	}
	if _, err := env.Run(context.Background(), modules.Command{Argv: []string{"/bin/true"}}); err == nil || !strings.Contains(err.Error(), "NoAPI") {
		t.Errorf("a program ran in a NoAPI tree: %v", err)
	}
	if err := env.Close(); err != nil {
		t.Fatal(err)
	}
	checkNoMounts(t, dir, 0)
}

// A tree with nothing to mount (NoAPI, no fstab) gets no mount at all,
// not even the tree bound onto itself, and closes cleanly.
func TestNothingToMountMountsNothing(t *testing.T) {
	requireRoot(t)
	dir := tinyTree(t, "")
	env := setup(t, dir, chroot.Options{NoAPI: true})
	if m := mountsUnder(t, dir); len(m) != 0 {
		t.Errorf("mounted with nothing to mount: %v", m)
	}
	if err := env.Close(); err != nil {
		t.Fatal(err)
	}
	checkNoMounts(t, dir, 0)
}

// Only: of the target's fstab mounts, those the paths lie on are mounted
// (the one at /var for a file below it, /srv for a file two levels down,
// /home for itself), the others are not, and a path on the root itself
// needs none.
func TestOnlyMountsWhatThePathsLieOn(t *testing.T) {
	requireRoot(t)
	dir := tinyTree(t, "")
	fstab := "tmpfs /var tmpfs mode=0755 0 0\ntmpfs /home tmpfs mode=0755 0 0\ntmpfs /srv tmpfs mode=0755 0 0\ntmpfs /opt tmpfs mode=0755 0 0\n"
	if err := os.WriteFile(filepath.Join(dir, "etc/fstab"), []byte(fstab), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"var", "home", "srv", "opt"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	for _, c := range []struct {
		only          []string
		want, wantNot []string
	}{
		{[]string{"/var/lib/provision/instance-id"}, []string{"var"}, []string{"home", "srv", "opt"}},
		{[]string{"/srv/data/x", "/home"}, []string{"srv", "home"}, []string{"var", "opt"}},
		{[]string{"/etc/hostname"}, nil, []string{"var", "home", "srv", "opt"}},
	} {
		env := setup(t, dir, chroot.Options{NoAPI: true, Only: c.only})
		mounts := mountsUnder(t, dir)
		for _, m := range c.want {
			if !slices.Contains(mounts, filepath.Join(dir, m)) {
				t.Errorf("Only %v: /%s not mounted: %v", c.only, m, mounts)
			}
		}
		for _, m := range c.wantNot {
			if slices.Contains(mounts, filepath.Join(dir, m)) {
				t.Errorf("Only %v: /%s mounted: %v", c.only, m, mounts)
			}
		}
		if err := env.Close(); err != nil {
			t.Fatal(err)
		}
		checkNoMounts(t, dir, 0)
	}
}
