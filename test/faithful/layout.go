package faithful

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// snap1 is snapshot 1's subvolume, from the top level.
const snap1 = "@/.snapshots/1/snapshot"

type builder struct {
	t       traits
	o       Options
	d       *Disk
	top     string // the top level (subvolid=5), mounted
	varRoot string // what the system sees as /var: @/var or the /var filesystem
	snap    string // snapshot 1
}

func (b *builder) run(name string, args ...string) error {
	_, err := run(name, args...)
	return err
}

// layout is microos-reality.md §7.2 steps 2-11.
func layout(b *builder) error {
	top, snap, t := b.top, b.snap, b.t
	if t.quotas {
		if err := b.run("btrfs", "quota", "enable", top); err != nil {
			return err
		}
	}
	for _, sv := range []string{"@", "@/.snapshots"} {
		if err := b.run("btrfs", "-q", "subvolume", "create", filepath.Join(top, sv)); err != nil {
			return err
		}
	}
	if err := os.Chmod(filepath.Join(top, "@/.snapshots"), 0o750); err != nil {
		return err
	}
	if err := os.Mkdir(filepath.Join(top, "@/.snapshots/1"), 0o755); err != nil {
		return err
	}
	if err := b.run("btrfs", "-q", "subvolume", "create", snap); err != nil {
		return err
	}
	if t.quotas {
		if err := b.run("btrfs", "qgroup", "create", "1/0", top); err != nil {
			return err
		}
	}
	for _, s := range t.siblings() {
		p := filepath.Join(top, "@", s)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := b.run("btrfs", "-q", "subvolume", "create", p); err != nil {
			return err
		}
		if s == "var" {
			// No copy-on-write, set while empty so the files inherit it.
			if err := b.run("chattr", "+C", p); err != nil {
				return err
			}
		}
	}
	if t.nestedEtc {
		if err := b.run("btrfs", "-q", "subvolume", "create", filepath.Join(snap, "etc")); err != nil {
			return err
		}
	}
	if err := b.run("cp", "-a", b.o.Stage+"/.", snap+"/"); err != nil {
		return err
	}
	if err := b.moveToMounts(); err != nil {
		return err
	}
	if err := b.writeConfig(); err != nil {
		return err
	}
	if b.o.Label {
		// After every file is written, before the snapshot is read-only.
		if err := b.label(); err != nil {
			return err
		}
	}
	out, err := run("btrfs", "inspect-internal", "rootid", snap)
	if err != nil {
		return err
	}
	if err := b.run("btrfs", "subvolume", "set-default", strings.TrimSpace(out), top); err != nil {
		return err
	}
	return b.run("btrfs", "property", "set", "-ts", snap, "ro", "true")
}

// moveToMounts moves what the stage has below each mount point into the
// subvolume or filesystem mounted there and leaves the snapshot's
// directory empty.
func (b *builder) moveToMounts() error {
	dest := map[string]string{}
	for _, s := range b.t.siblings() {
		dest[s] = filepath.Join(b.top, "@", s)
	}
	if b.t.varFS {
		dest["var"] = b.varRoot
	}
	for _, mp := range b.t.mountPoints() {
		dir := filepath.Join(b.snap, mp)
		mode := os.FileMode(0o755)
		switch mp {
		case ".snapshots":
			mode = 0o750
		case "root":
			mode = 0o700
		}
		st, err := os.Lstat(dir)
		switch {
		case os.IsNotExist(err):
			if err := os.MkdirAll(dir, mode); err != nil {
				return err
			}
			if err := os.Chmod(dir, mode); err != nil {
				return err
			}
			if to, ok := dest[mp]; ok {
				if err := os.Chmod(to, mode); err != nil {
					return err
				}
			}
			continue
		case err != nil:
			return err
		case !st.IsDir():
			return fmt.Errorf("faithful: the stage's /%s is not a directory", mp)
		}
		ents, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		if to, ok := dest[mp]; ok {
			// Copy the directory itself too: the subvolume's root gets
			// its mode and owner. Same filesystem: reflinks.
			if err := b.run("cp", "-a", "--reflink=auto", dir+"/.", to+"/"); err != nil {
				return err
			}
		} else if len(ents) > 0 && !(mp == "boot/efi" && b.t.esp) {
			// (makeESP copied the stage's /boot/efi onto the ESP.)
			return fmt.Errorf("faithful: the stage's /%s is not empty and nothing of %s holds its content", mp, b.d.Variant)
		}
		for _, e := range ents {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeConfig writes the files the image build leaves behind.
func (b *builder) writeConfig() error {
	snap, t, d := b.snap, b.t, b.d
	etc := func(p string) string { return filepath.Join(snap, "etc", p) }
	if err := writeFile(etc("fstab"), []byte(fstabText(t, d)), 0o644); err != nil {
		return err
	}
	if err := writeFile(etc("snapper/configs/root"), []byte(snapperConfig(t.quotas)), 0o640); err != nil {
		return err
	}
	for _, p := range []string{"sysconfig/snapper", "default/snapper"} {
		if err := setKeys(etc(p), 0o644, [2]string{"SNAPPER_CONFIGS", "root"}); err != nil {
			return err
		}
	}
	if err := writeFile(filepath.Join(b.top, "@/.snapshots/1/info.xml"), []byte(infoXML(time.Now())), 0o644); err != nil {
		return err
	}
	// First boot: no machine id, jeos-firstboot's marker in /var, and no
	// transactional-update state yet.
	if err := os.Remove(etc("machine-id")); err != nil && !os.IsNotExist(err) {
		return err
	}
	if err := writeFile(filepath.Join(b.varRoot, "lib/YaST2/reconfig_system"), nil, 0o644); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(b.varRoot, "lib/misc/transactional-update.state")); err != nil && !os.IsNotExist(err) {
		return err
	}
	if !t.nestedEtc {
		for _, p := range []string{"lib/overlay/1/etc", "lib/overlay/work-etc"} {
			if err := os.MkdirAll(filepath.Join(b.varRoot, p), 0o755); err != nil {
				return err
			}
		}
	}
	if t.sdboot {
		files := map[string]string{
			"kernel/entry-token": d.EntryToken + "\n",
			"kernel/cmdline":     d.Cmdline + "\n",
		}
		for p, content := range files {
			if err := writeFile(etc(p), []byte(content), 0o644); err != nil {
				return err
			}
		}
		if err := setKeys(etc("sysconfig/bootloader"), 0o644, [2]string{"LOADER_TYPE", "systemd-boot"}); err != nil {
			return err
		}
	} else {
		if err := setKeys(etc("default/grub"), 0o644,
			[2]string{"GRUB_DEFAULT", "saved"},
			[2]string{"GRUB_TIMEOUT", "10"},
			[2]string{"GRUB_CMDLINE_LINUX_DEFAULT", d.Cmdline},
			[2]string{"SUSE_BTRFS_SNAPSHOT_BOOTING", "true"}); err != nil {
			return err
		}
		if err := setKeys(etc("sysconfig/bootloader"), 0o644,
			[2]string{"LOADER_TYPE", "grub2-efi"}, [2]string{"LOADER_LOCATION", "none"}); err != nil {
			return err
		}
		if err := writeFile(filepath.Join(snap, "boot/grub2/grub.cfg"), []byte(grubCfgPlaceholder), 0o600); err != nil {
			return err
		}
		if err := writeFile(filepath.Join(b.top, "@/boot/writable/grubenv"), grubenvBlock(), 0o644); err != nil {
			return err
		}
	}
	if d.SELinux != "" {
		return b.writeSELinux()
	}
	return nil
}

// writeSELinux sets the mode and openSUSE's policy name; a Debian stage
// has its policy as "default", which is copied to "targeted".
func (b *builder) writeSELinux() error {
	dir := filepath.Join(b.snap, "etc/selinux")
	if _, err := os.Stat(filepath.Join(dir, "targeted")); os.IsNotExist(err) {
		if _, err := os.Stat(filepath.Join(dir, "default")); err == nil {
			if err := b.run("cp", "-a", filepath.Join(dir, "default"), filepath.Join(dir, "targeted")); err != nil {
				return err
			}
		}
	}
	return setKeysBare(filepath.Join(dir, "config"), [2]string{"SELINUX", b.d.SELinux}, [2]string{"SELINUXTYPE", "targeted"})
}
