package main

import (
	"os"
	"path/filepath"
	"testing"
)

// A run is copied into a private mount namespace from the start in the
// initrd and on a target that mounts whatever the config says (an fstab);
// on a plain tree it is decided once the config shows programs.
func TestMountsFromTheStart(t *testing.T) {
	defer func(f func() bool) { inInitrd = f }(inInitrd)
	inInitrd = func() bool { return false }
	plain := t.TempDir()
	if mountsFromTheStart(plain) {
		t.Error("a plain tree without an fstab mounts from the start")
	}
	withFstab := t.TempDir()
	os.MkdirAll(filepath.Join(withFstab, "etc"), 0o755)
	os.WriteFile(filepath.Join(withFstab, "etc/fstab"), []byte("tmpfs /var tmpfs defaults 0 0\n"), 0o644)
	if !mountsFromTheStart(withFstab) {
		t.Error("a tree with an fstab does not mount from the start")
	}
	if !mountsFromTheStart(filepath.Join(plain, "missing")) {
		t.Error("a root that cannot be examined counts as not mounting")
	}
	inInitrd = func() bool { return true }
	if !mountsFromTheStart(plain) {
		t.Error("in the initrd a run does not mount from the start")
	}
}
