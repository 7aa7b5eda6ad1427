package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provision-dev/provision/test/faithful"
)

// An Ignition config as openSUSE's generator writes them: it enables units
// the image has and the config does not define.
const imageUnitsIgnition = `{"ignition":{"version":"3.4.0"},"systemd":{"units":[
{"name":"sshd.service","enabled":true},
{"name":"podman.socket","enabled":true},
{"name":"chronyd.service","enabled":true},
{"name":"serial-getty@ttyS1.service","enabled":true}]}}
`

func writeFile(t *testing.T, dir, name, data string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Without --root, units only the image can have are warnings; with a
// --root that lacks them they are errors; with one that has them, neither.
func TestValidateImageUnits(t *testing.T) {
	dir := t.TempDir()
	ign := writeFile(t, dir, "config.ign", imageUnitsIgnition)

	code, out, errs := runArgs("validate", ign)
	if code != exitOK || !strings.Contains(out, "valid") {
		t.Fatalf("offline: exit %d\n%s%s", code, out, errs)
	}
	for _, u := range []string{"sshd.service", "podman.socket", "chronyd.service", "serial-getty@ttyS1.service"} {
		if !strings.Contains(errs, "warning: file:"+ign+":") || !strings.Contains(errs, "unit "+u+" is not defined by this config; assumed to exist in the image (checked only with --root)") {
			t.Errorf("offline: no warning for %s:\n%s", u, errs)
		}
	}

	bare := t.TempDir()
	writeFile(t, bare, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\n")
	writeFile(t, bare, "usr/lib/systemd/system/chronyd.service", "[Install]\nWantedBy=multi-user.target\n")
	code, _, errs = runArgs("validate", ign, "--root", bare)
	if code != exitInvalid {
		t.Fatalf("--root without the units: exit %d, want 2\n%s", code, errs)
	}
	for _, u := range []string{"sshd.service", "podman.socket"} {
		if !strings.Contains(errs, "unit "+u+": not found in") {
			t.Errorf("--root: no error for %s:\n%s", u, errs)
		}
	}
	if strings.Contains(errs, "chronyd.service: not found") || strings.Contains(errs, "checked only with --root") {
		t.Errorf("--root: chronyd.service is in the tree, and nothing is assumed:\n%s", errs)
	}

	writeFile(t, bare, "usr/lib/systemd/system/sshd.service", "[Install]\nWantedBy=multi-user.target\n")
	writeFile(t, bare, "usr/lib/systemd/system/podman.socket", "[Install]\nWantedBy=sockets.target\n")
	writeFile(t, bare, "usr/lib/systemd/system/serial-getty@.service", "[Install]\nWantedBy=getty.target\n")
	if code, out, errs := runArgs("validate", "--root", bare, ign); code != exitOK || errs != "" {
		t.Errorf("--root with the units: exit %d\n%s%s", code, out, errs)
	}
}

// Parse errors, key errors and plan errors of every document come in one
// run, sorted by document, line and column; a network-config error points
// at its key.
func TestValidateOnePass(t *testing.T) {
	dir := t.TempDir()
	mime := writeFile(t, dir, "user-data.mime", `Content-Type: multipart/mixed; boundary="XX"
MIME-Version: 1.0

--XX
Content-Type: text/cloud-config

#cloud-config
hostname: [unclosed
--XX
Content-Type: text/cloud-config

#cloud-config
timezone: Mars/Phobos
packages: 3
users:
  - name: "bad name!"
--XX--
`)
	code, _, errs := runArgs("validate", mime)
	if code != exitInvalid {
		t.Fatalf("exit %d, want 2\n%s", code, errs)
	}
	want := []string{
		"file:" + mime + "#part-001:2:12: invalid YAML",
		"file:" + mime + "#part-002:2:11: unknown timezone \"Mars/Phobos\"",
		"file:" + mime + "#part-002:3:11: packages: expected list",
		"file:" + mime + "#part-002:5:5: invalid user name \"bad name!\"",
	}
	assertOrdered(t, errs, want)

	seed := t.TempDir()
	writeFile(t, seed, "meta-data", "instance-id: one-pass\n")
	writeFile(t, seed, "user-data", "#cloud-config\nwrite_files:\n  - path: relative\n    content: x\n")
	writeFile(t, seed, "network-config", "version: 2\nethernets:\n  eth0:\n    dhcp4: maybe\n    addresses: [300.1.1.1/24]\n")
	code, _, errs = runArgs("validate", seed)
	if code != exitInvalid {
		t.Fatalf("seed: exit %d, want 2\n%s", code, errs)
	}
	assertOrdered(t, errs, []string{
		"dir:" + seed + ":network-config:4:5: network: ethernets.eth0.dhcp4: expected a boolean",
		"dir:" + seed + ":user-data:3:5: file: path \"relative\" is not absolute",
	})
}

func assertOrdered(t *testing.T, text string, want []string) {
	t.Helper()
	last := -1
	for _, w := range want {
		i := strings.Index(text, w)
		if i < 0 {
			t.Errorf("missing %q in:\n%s", w, text)
			continue
		}
		if i < last {
			t.Errorf("%q out of order in:\n%s", w, text)
		}
		last = i
	}
}

// --root takes a disk image: a faithful MicroOS disk (GPT, btrfs, snapper
// layout), whose default subvolume is mounted read-only and checked.
func TestValidateRootImage(t *testing.T) {
	dir := t.TempDir()
	ign := writeFile(t, dir, "config.ign", imageUnitsIgnition)
	img := writeFile(t, dir, "not-a-disk.raw", strings.Repeat("\x00", 1<<20))
	if code, _, errs := runArgs("validate", "--root", img, ign); code != exitInvalid || !strings.Contains(errs, "--root "+img+":") {
		t.Errorf("an image without a root filesystem: exit %d\n%s", code, errs)
	}
	if os.Geteuid() != 0 {
		t.Skip("mounting a disk image needs root")
	}
	for _, tool := range []string{"mkfs.btrfs", "btrfs", "sfdisk", "mkfs.vfat", "mcopy"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("building a faithful disk needs %s", tool)
		}
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		t.Skip("no loop devices")
	}
	stage := t.TempDir()
	writeFile(t, stage, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\n")
	writeFile(t, stage, "etc/group", "root:x:0:\n")
	writeFile(t, stage, "usr/lib/systemd/system/sshd.service", "[Install]\nWantedBy=multi-user.target\n")
	for _, d := range []string{"var", "home", "root", "srv", "opt", "usr/local", "boot/grub2", "proc", "sys", "dev", "run", "tmp"} {
		os.MkdirAll(filepath.Join(stage, d), 0o755)
	}
	disk, err := faithful.Build(t.TempDir(), faithful.Options{Variant: faithful.A, Stage: stage, Size: 400 << 20})
	if err != nil {
		t.Fatal(err)
	}
	code, _, errs := runArgs("validate", "--root", disk.Path, ign)
	if code != exitInvalid || !strings.Contains(errs, "unit podman.socket: not found") || strings.Contains(errs, "sshd.service") {
		t.Errorf("--root IMAGE: exit %d, want 2 with podman.socket (and chronyd.service) missing and sshd.service found:\n%s", code, errs)
	}
	if m, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(m), "provision-medium-") {
		t.Errorf("the image is still mounted:\n%s", m)
	}
}

// openSUSE's fuel-ignition writes its own "human_read" key; Ignition warns
// about unknown keys and goes on, and so does validate. Broken JSON that
// names the ignition section is an Ignition error with its position.
func TestValidateIgnitionLikeIgnition(t *testing.T) {
	dir := t.TempDir()
	fuel := writeFile(t, dir, "config.ign", `{"ignition": {"version": "3.2.0"},
 "passwd": {"users": [{"name": "root", "sshAuthorizedKeys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBz0rJQmH9g1qWbqFJXkE1Hj3v0mJ8yqXWlqfC0hT5pG u@h"]}]},
 "systemd": {"units": [{"name": "sshd.service", "enabled": true}]},
 "human_read": "root can log in with a key"}
`)
	code, out, errs := runArgs("validate", fuel)
	if code != exitOK || !strings.Contains(errs, `human_read: unknown key "human_read" ignored, as Ignition does`) {
		t.Errorf("fuel-ignition style config: exit %d\n%s%s", code, out, errs)
	}
	if code, _, _ := runArgs("validate", "--strict", fuel); code != exitInvalid {
		t.Errorf("--strict: exit %d, want 2 (warnings are errors)", code)
	}
	broken := writeFile(t, dir, "broken.ign", `{"ignition": {"version": "3.4.0"}, "passwd": {"users": [{"name": "a",}]}}`)
	if code, _, errs := runArgs("validate", broken); code != exitInvalid || !strings.Contains(errs, "file:"+broken+":1:70: invalid JSON") {
		t.Errorf("broken Ignition JSON: exit %d\n%s", code, errs)
	}
}
