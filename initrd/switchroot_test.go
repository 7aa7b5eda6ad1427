package initrd

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestDeleteTree(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "lib/modules/6.1"), 0o755))
	must(os.WriteFile(filepath.Join(root, "init"), []byte("#!/bin/sh\n"), 0o755))
	must(os.WriteFile(filepath.Join(root, "lib/modules/6.1/btrfs.ko"), []byte("x"), 0o644))
	must(os.WriteFile(filepath.Join(outside, "keep"), []byte("x"), 0o644))
	// A symlink to a directory elsewhere must be removed, never followed.
	must(os.Symlink(outside, filepath.Join(root, "link")))
	var st unix.Stat_t
	must(unix.Stat(root, &st))
	if err := DeleteTree(root, uint64(st.Dev)); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(root)
	if len(ents) != 0 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		sort.Strings(names)
		t.Errorf("left behind: %s", strings.Join(names, " "))
	}
	if _, err := os.Stat(filepath.Join(outside, "keep")); err != nil {
		t.Errorf("followed a symlink out of the tree: %v", err)
	}
}

func TestDeleteTreeOtherDevice(t *testing.T) {
	// Everything in the tree looks like it is on another device: nothing may
	// be entered or removed, as with /sysroot and the API mounts.
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "sysroot/etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := DeleteTree(root, ^uint64(0)); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"sysroot/etc", "f"} {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Errorf("%s removed although on another device: %v", p, err)
		}
	}
}

func TestSwitchRootRefusesNonInitramfs(t *testing.T) {
	var st unix.Statfs_t
	if err := unix.Statfs("/", &st); err != nil || st.Type == ramfsMagic || st.Type == tmpfsMagic {
		t.Skip("/ is a ramfs/tmpfs here: the safety check cannot be exercised")
	}
	err := SwitchRoot(t.TempDir(), "/sbin/init", nil, nil)
	if err == nil || !strings.Contains(err.Error(), "not an initramfs") {
		t.Errorf("SwitchRoot on a real root: %v", err)
	}
}
