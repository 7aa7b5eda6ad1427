package provision_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRootTierLazySubvolumes: with no program to run, a subvolume of the
// target's fstab other than /var is snapshotted on its first write only.
// A run that creates a user snapshots /home and leaves /root alone (no
// snapshot made, none to delete at the commit); one that gives root a key
// snapshots /root too, and the key is in the committed /root.
func TestRootTierLazySubvolumes(t *testing.T) {
	for _, c := range []struct {
		name, userData string
		rootWritten    bool
	}{
		{"user only", "#cloud-config\nusers:\n  - name: alice\n    gecos: Alice\n", false},
		{"root's key", "#cloud-config\ndisable_root: false\nusers:\n  - name: alice\n    gecos: Alice\nssh_authorized_keys:\n  - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBq3nNzpTEXbpnr3Nm2BsaM29Y9LgpeGf6VMGAsAXMBY lazy@test\n", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := newBtrfsTarget(t, true)
			sh(t, "btrfs", "-q", "subvolume", "create", filepath.Join(b.top, "@/root"))
			os.WriteFile(filepath.Join(b.top, "@/root/.profile"), []byte("# root's\n"), 0o644)
			fstab := filepath.Join(b.top, b.rootPath, "etc/fstab")
			data, _ := os.ReadFile(fstab)
			uuid := strings.TrimSpace(sh(t, "blkid", "-s", "UUID", "-o", "value", b.img))
			os.WriteFile(fstab, append(data, "UUID="+uuid+" /root btrfs subvol=/@/root 0 0\n"...), 0o644)
			b.before = b.capture(t)
			b.subvolsBefore = b.subvols(t)
			seed := t.TempDir()
			os.WriteFile(filepath.Join(seed, "meta-data"), []byte("instance-id: iid-lazy\n"), 0o644)
			os.WriteFile(filepath.Join(seed, "user-data"), []byte(c.userData), 0o644)
			r := runCLI(t, b.root, seed, "")
			if r.code != 0 {
				t.Fatalf("exit %d\n%s", r.code, r.out)
			}
			for _, w := range []string{"/var: writes go to snapshot", "/home: writes go to snapshot"} {
				if !strings.Contains(r.out, w) {
					t.Errorf("output lacks %q:\n%s", w, r.out)
				}
			}
			if got := strings.Contains(r.out, "/root: writes go to snapshot"); got != c.rootWritten {
				t.Errorf("/root snapshotted: %v, want %v\n%s", got, c.rootWritten, r.out)
			}
			if id, _ := b.defaultSubvol(t); id == b.rootID {
				t.Fatal("not committed")
			}
			if _, err := os.Stat(filepath.Join(b.top, "@/home/alice")); err != nil {
				t.Errorf("alice's home not in the committed /home: %v", err)
			}
			keys, err := os.ReadFile(filepath.Join(b.top, "@/root/.ssh/authorized_keys"))
			if c.rootWritten && (err != nil || !strings.Contains(string(keys), "lazy@test")) {
				t.Errorf("root's key not in the committed /root: %v %q", err, keys)
			}
			if !c.rootWritten && err == nil {
				t.Errorf("/root written: %q", keys)
			}
			if p, _ := os.ReadFile(filepath.Join(b.top, "@/root/.profile")); string(p) != "# root's\n" {
				t.Errorf("/root's own file: %q", p)
			}
			for _, s := range b.subvols(t) {
				if strings.Contains(s, ".provision-") {
					t.Errorf("leftover subvolume %s", s)
				}
			}
			if want := len(b.subvolsBefore) + 1; len(b.subvols(t)) != want {
				t.Errorf("subvolumes %v, want %d", b.subvols(t), want)
			}
		})
	}
}
