package faithful

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestLabelA builds A with the host's Debian refpolicy in the stage and
// Label set: the snapshot, its nested /etc and every sibling subvolume are
// labelled as matchpathcon says, and the snapshot is still read-only.
func TestLabelA(t *testing.T) {
	busybox := requireRootTier(t)
	for _, tool := range []string{"setfiles", "matchpathcon"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("root tier: %s not installed (packages policycoreutils, selinux-utils)", tool)
		}
	}
	const policy = "/etc/selinux/default/contexts/files/file_contexts"
	if _, err := os.Stat(policy); err != nil {
		t.Skipf("root tier: the host has no Debian policy to copy into the stage (package selinux-policy-default): %v", err)
	}
	stage := makeStage(t, busybox, map[string]string{"etc/selinux/config": "SELINUX=disabled\nSELINUXTYPE=default\n"})
	if _, err := run("cp", "-a", "/etc/selinux/default", filepath.Join(stage, "etc/selinux/")); err != nil {
		t.Fatal(err)
	}
	d, err := Build(t.TempDir(), Options{Variant: A, Stage: stage, SELinux: "permissive", Label: true})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Inspect(d)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { must(t, s.Close()) }()
	snap := s.Snapshot(1)
	fc, err := FileContexts(snap)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(fc, "/etc/selinux/targeted/contexts/files/file_contexts") {
		t.Errorf("file_contexts %s, want targeted's", fc)
	}
	checks := map[string]string{ // booted path -> host path
		"/":                              snap,
		"/etc":                           filepath.Join(snap, "etc"),
		"/etc/shadow":                    filepath.Join(snap, "etc/shadow"),
		"/etc/passwd":                    filepath.Join(snap, "etc/passwd"),
		"/etc/selinux/config":            filepath.Join(snap, "etc/selinux/config"),
		"/etc/fstab":                     filepath.Join(snap, "etc/fstab"),
		"/bin/sh":                        filepath.Join(snap, "bin/sh"),
		"/bin/busybox":                   filepath.Join(snap, "bin/busybox"),
		"/home":                          filepath.Join(s.Top, "@/home"),
		"/home/alice/.profile":           filepath.Join(s.Top, "@/home/alice/.profile"),
		"/root":                          filepath.Join(s.Top, "@/root"),
		"/root/.profile":                 filepath.Join(s.Top, "@/root/.profile"),
		"/var/lib/foo/data":              filepath.Join(s.Var, "lib/foo/data"),
		"/var/lib/YaST2/reconfig_system": filepath.Join(s.Var, "lib/YaST2/reconfig_system"),
		"/usr/local/bin/tool":            filepath.Join(s.Top, "@/usr/local/bin/tool"),
		"/opt/app/run":                   filepath.Join(s.Top, "@/opt/app/run"),
		"/.snapshots/1/info.xml":         filepath.Join(s.Top, "@/.snapshots/1/info.xml"),
		"/boot/writable/grubenv":         filepath.Join(s.Top, "@/boot/writable/grubenv"),
		"/boot/grub2/x86_64-efi":         filepath.Join(s.Top, "@/boot/grub2/x86_64-efi"),
	}
	types := map[string]bool{}
	for p, host := range checks {
		want, err := WantLabel(fc, p, host)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		got, err := Label(host)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if got != want {
			t.Errorf("%s: label %q, want %q (matchpathcon)", p, got, want)
		}
		types[got] = true
		t.Logf("%s: %s", p, got)
	}
	if len(types) < 5 {
		t.Errorf("only %d distinct labels %v: the policy gives these paths more", len(types), keys(types))
	}
	if !s.ReadOnly["@/.snapshots/1/snapshot"] {
		t.Errorf("snapshot 1 is not read-only after labelling")
	}
}
