package e2e

// Tier B on faithful openSUSE-shaped disks (package test/faithful): the
// prepared Debian root is laid out as variant A, B or C and booted the way
// the image's boot loader would boot it. A and B (GRUB) pass only root=:
// the btrfs default subvolume decides. C (systemd-boot) is booted from the
// ESP's loader.conf and entries, which the harness reads with mtools as
// the firmware and systemd-boot would.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/provision-dev/provision/test/faithful"
)

// faithfulSize is the sparse size of a faithful tier B disk: the Debian
// root, its copy in snapshot 2 and the journal.
const faithfulSize = int64(3) << 30

// BuildFaithfulTierB lays the prepared root out as the variant in dir. The
// stage is not modified; faithful removes /etc/machine-id from snapshot 1
// (PrepareTierB wrote "uninitialized" there) and writes jeos-firstboot's
// /var/lib/YaST2/reconfig_system. C's ESP gets the tier's kernel and the
// initramfs dracut built with our module.
// initrd is the initramfs to boot (for A and C, NestedEtcInitrd's).
func BuildFaithfulTierB(dir string, v faithful.Variant, sys *TierBSystem, initrd string) (*faithful.Disk, error) {
	return BuildFaithfulTierBSELinux(dir, v, sys, initrd, "")
}

// BuildFaithfulTierBSELinux is BuildFaithfulTierB with /etc/selinux/config
// set to the mode (faithful copies Debian's policy "default" to
// "targeted") and, unless the mode is "", the whole root labelled with
// that policy before snapshot 1 is made read-only.
func BuildFaithfulTierBSELinux(dir string, v faithful.Variant, sys *TierBSystem, initrd, selinux string) (*faithful.Disk, error) {
	return faithful.Build(dir, faithful.Options{
		Variant: v, Stage: sys.Root, Size: faithfulSize,
		Kernel: sys.Kernel.Vmlinuz, KernelVersion: sys.Kernel.Version, Initrd: initrd,
		Cmdline: "console=ttyS0", SELinux: selinux, Label: selinux != "",
	})
}

// LoaderEntry is the systemd-boot entry the harness boots.
type LoaderEntry struct {
	Name    string // file name below /loader/entries
	Options string // the options lines, joined
	Linux   string // ESP path
	Initrd  string // ESP path
	Default string // loader.conf's default line, "" if none
}

func mtoolsRun(args ...string) (string, error) {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s: %w\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String(), nil
}

// loaderKeys parses "key value" lines of loader.conf or an entry; repeated
// keys are joined with a space (several options lines).
func loaderKeys(text string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, _ := strings.Cut(line, " ")
		v = strings.TrimSpace(v)
		if old, ok := m[k]; ok && k == "options" {
			v = old + " " + v
		}
		m[k] = v
	}
	return m
}

// PickLoaderEntry does what systemd-boot does without EFI variables:
// loader.conf's default (a glob) names the entry, else the first entry.
// Of several matches the last in file name order is taken (sd-boot sorts
// newer versions first; the names here differ only by snapshot number).
func PickLoaderEntry(espImg string) (*LoaderEntry, error) {
	conf, err := mtoolsRun("mtype", "-i", espImg, "::/loader/loader.conf")
	if err != nil {
		return nil, err
	}
	def := loaderKeys(conf)["default"]
	out, err := mtoolsRun("mdir", "-b", "-i", espImg, "::/loader/entries")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, l := range strings.Fields(out) {
		if n := path.Base(l); strings.HasSuffix(n, ".conf") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		return nil, fmt.Errorf("%s: no entries in /loader/entries:\n%s", espImg, out)
	}
	pick := names[0]
	if def != "" {
		var match []string
		for _, n := range names {
			if ok, _ := path.Match(def, n); ok || n == def || n == def+".conf" {
				match = append(match, n)
			}
		}
		if len(match) == 0 {
			return nil, fmt.Errorf("%s: loader.conf default %q matches none of %v", espImg, def, names)
		}
		pick = match[len(match)-1]
	}
	text, err := mtoolsRun("mtype", "-i", espImg, "::/loader/entries/"+pick)
	if err != nil {
		return nil, err
	}
	k := loaderKeys(text)
	e := &LoaderEntry{Name: pick, Options: k["options"], Linux: k["linux"], Initrd: k["initrd"], Default: def}
	if e.Linux == "" || e.Initrd == "" || strings.Contains(e.Initrd, " ") {
		return nil, fmt.Errorf("%s: entry %s: want one linux and one initrd line:\n%s", espImg, pick, text)
	}
	return e, nil
}

// ExtractLoaderEntry copies the entry's kernel and initrd off the ESP into
// dir and returns their host paths.
func ExtractLoaderEntry(espImg string, e *LoaderEntry, dir string) (kernel, initrd string, err error) {
	kernel, initrd = filepath.Join(dir, "esp-linux"), filepath.Join(dir, "esp-initrd")
	for _, f := range [][2]string{{e.Linux, kernel}, {e.Initrd, initrd}} {
		_ = os.Remove(f[1])
		if _, err := mtoolsRun("mcopy", "-n", "-i", espImg, "::"+f[0], f[1]); err != nil {
			return "", "", err
		}
	}
	return kernel, initrd, nil
}

// ReadJournalBoot reads one boot of a persistent journal: n counts from 1
// for the oldest boot (journalctl -b n).
func ReadJournalBoot(dir string, n int) ([]JournalEntry, string, error) {
	out, err := run("", "journalctl", "-D", dir, "--no-pager", "-o", "short-monotonic", "-b", fmt.Sprint(n))
	if err != nil {
		return nil, out, err
	}
	return ParseJournal(out), out, nil
}

// nestedEtcInitrd is appended (as a second cpio archive) to the tier B
// initramfs for the nested-/etc variants A and C. It emulates, in the
// initrd, what openSUSE's newer systemd and image do and Debian bookworm's
// systemd 252 does not:
//
//   - fstab's "/etc /etc none bind,x-initrd.mount" names /etc of the real
//     root: systemd >= 254 (fstab-generator: resolve bind mount source when
//     in initrd, systemd PR #28385, issue #6827) makes the source
//     /sysroot/etc; 252 bind-mounts the initrd's own /etc over the root's.
//   - the bind mount inherits "ro" from /sysroot; MicroOS's /etc is
//     writable at run time (faithful's MountInitrd remounts it rw as
//     writable-etc.service does).
var nestedEtcInitrd = Tree{
	"etc/systemd/system/sysroot-etc.mount.d/e2e-sysroot-source.conf": {Mode: 0o644, Data: []byte(
		"# e2e: systemd 252 lacks PR #28385 (bind sources in the initrd are below /sysroot)\n" +
			"[Unit]\nWants=e2e-writable-etc.service\n\n[Mount]\nWhat=/sysroot/etc\n")},
	"etc/systemd/system/e2e-writable-etc.service": {Mode: 0o644, Data: []byte(`[Unit]
Description=e2e: make the bind-mounted /sysroot/etc writable (as writable-etc)
DefaultDependencies=no
After=sysroot-etc.mount
Before=initrd-fs.target initrd-switch-root.target
ConditionPathIsMountPoint=/sysroot/etc

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/bin/mount -o remount,bind,rw /sysroot/etc
`)},
}

// NestedEtcInitrd writes the tier's initramfs with nestedEtcInitrd
// appended into dir and returns its path.
func NestedEtcInitrd(dir, initrd string) (string, error) {
	base, err := os.ReadFile(initrd)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	buf.Write(base)
	// The kernel looks for the next archive's magic on a 4-byte boundary.
	for buf.Len()%4 != 0 {
		buf.WriteByte(0)
	}
	c := NewCPIO(&buf)
	nestedEtcInitrd.WriteCPIO(c)
	if err := c.Close(); err != nil {
		return "", err
	}
	out := filepath.Join(dir, "tierb-initrd-nested-etc.img")
	return out, os.WriteFile(out, buf.Bytes(), 0o644)
}
