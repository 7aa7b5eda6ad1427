// Package cloudinitdiff is the differential test of the cloud-config keys
// provision applies against the real cloud-init 22.4.2, Debian bookworm's
// package: one Debian tree with cloud-init installed is built once and
// cached; for every configuration, the real cloud-init applies it in one
// copy of the tree (in a chroot, from a NoCloud seed) and provision in
// another, and the files the key is about are compared. Where provision
// differs on purpose the difference itself is asserted.
//
// It needs root (chroot, loop devices, btrfs), debootstrap and Debian's
// package mirror; without them it skips, saying which is missing.
package cloudinitdiff

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/provision-dev/provision/test/testbin"
)

// The Debian tree: bookworm with cloud-init and the clients the keys
// configure (chrony for ntp, ca-certificates, openssh-server for host
// keys; systemd for systemctl, which enables units offline). The package
// list and the suite are part of the cache key.
const (
	debSuite  = "bookworm"
	debMirror = "http://deb.debian.org/debian"
	// cloudInitUpstream is the version the comparison is written for;
	// Debian's revision (22.4.2-1+deb12u4 when this was written) is
	// logged.
	cloudInitUpstream = "22.4.2-"
	// treeFormat is bumped whenever buildTree changes what it caches.
	treeFormat = "1"
)

var debPackages = []string{"cloud-init", "chrony", "ca-certificates", "openssh-server", "systemd"}

// cacheDir is shared with the VM tier's downloads.
func cacheDir() string {
	if d := os.Getenv("PROVISION_E2E_CACHE"); d != "" {
		return d
	}
	return "/var/cache/provision-e2e"
}

// suite is what every case shares: the provision binary, and a btrfs
// filesystem on a loop device whose subvolume base holds the pristine
// tree at base/tree; each side of a case is a snapshot of base, so a
// copy costs nothing and swap files land on btrfs as on MicroOS.
type suite struct {
	binary  string
	work    string // temporary directory of the run
	mnt     string // where the btrfs is mounted
	loopDev string // /dev/loopN holding it
	base    string // mnt/base/tree
	version string // the installed cloud-init's Debian version
	copies  int    // snapshots made so far; the cases run one at a time
}

var (
	setupOnce sync.Once
	shared    *suite
	setupErr  error
	skipWhy   string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		shared.close()
	}
	os.Exit(code)
}

// need returns the suite, building it on first use, or skips the test
// saying what is missing.
func need(t *testing.T) *suite {
	t.Helper()
	if testing.Short() {
		t.Skip("differential test against cloud-init: not in -short mode (it debootstraps a Debian tree once)")
	}
	setupOnce.Do(func() {
		skipWhy, setupErr = prerequisites()
		if skipWhy != "" || setupErr != nil {
			return
		}
		shared, setupErr = newSuite()
	})
	if skipWhy != "" {
		t.Skip(skipWhy)
	}
	if setupErr != nil {
		t.Fatalf("suite setup: %v", setupErr)
	}
	return shared
}

func prerequisites() (skip string, err error) {
	if os.Geteuid() != 0 {
		return "differential test against cloud-init needs root (chroot, loop device, btrfs)", nil
	}
	for _, tool := range []string{"debootstrap", "mkfs.btrfs", "btrfs", "losetup", "unshare", "chroot", "tar", "lsattr"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Sprintf("differential test against cloud-init needs %s (apt-get install debootstrap btrfs-progs util-linux e2fsprogs)", tool), nil
		}
	}
	return "", nil
}

func newSuite() (*suite, error) {
	tarball, version, err := cachedTree()
	if err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp("", "provision-cloudinitdiff-")
	if err != nil {
		return nil, err
	}
	s := &suite{work: work, version: version}
	ok := false
	defer func() {
		if !ok {
			s.close()
		}
	}()
	s.binary = filepath.Join(work, "provision")
	if err := testbin.Build(s.binary); err != nil {
		return nil, err
	}
	img := filepath.Join(work, "btrfs.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		return nil, err
	}
	// Room for the tree (about 450 MB, shared by every snapshot) and a
	// few swap files.
	if err := os.Truncate(img, 3<<30); err != nil {
		return nil, err
	}
	if _, err := run("", "mkfs.btrfs", "-q", img); err != nil {
		return nil, err
	}
	dev, err := attachLoop(img)
	if err != nil {
		return nil, err
	}
	s.loopDev = dev
	s.mnt = filepath.Join(work, "mnt")
	if err := os.MkdirAll(s.mnt, 0o755); err != nil {
		return nil, err
	}
	if _, err := run("", "mount", s.loopDev, s.mnt); err != nil {
		return nil, err
	}
	if _, err := run("", "btrfs", "subvolume", "create", filepath.Join(s.mnt, "base")); err != nil {
		return nil, err
	}
	s.base = filepath.Join(s.mnt, "base", "tree")
	if err := os.MkdirAll(s.base, 0o755); err != nil {
		return nil, err
	}
	if _, err := run("", "tar", "--numeric-owner", "--xattrs", "-C", s.base, "-xf", tarball); err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

func (s *suite) close() {
	if s.mnt != "" {
		if _, err := run("", "umount", s.mnt); err != nil {
			// A namespace still holding it lets go shortly.
			_, _ = run("", "umount", "--lazy", s.mnt)
		}
	}
	if s.loopDev != "" {
		_, _ = run("", "losetup", "--detach", s.loopDev)
	}
	os.RemoveAll(s.work)
}

// cachedTree returns the tarball of the Debian tree and the installed
// cloud-init's version, building it on the first call per cache
// directory: debootstrap's minbase, then apt-get in the chroot (it
// resolves what debootstrap's own resolver cannot: cloud-init's
// python3-cryptography needs a virtual package). A few minutes once;
// every later run unpacks the tarball.
func cachedTree() (tarball, version string, err error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s", treeFormat, debSuite, debMirror, strings.Join(debPackages, ","))
	key := hex.EncodeToString(h.Sum(nil))[:16]
	tarball = filepath.Join(cacheDir(), "cloudinit-"+debSuite+"-"+key+".tar")
	versionFile := tarball + ".version"
	if b, err := os.ReadFile(versionFile); err == nil {
		if _, err := os.Stat(tarball); err == nil {
			return tarball, strings.TrimSpace(string(b)), nil
		}
	}
	if err := os.MkdirAll(cacheDir(), 0o755); err != nil {
		return "", "", err
	}
	tmp, err := os.MkdirTemp(cacheDir(), "cloudinit-build-")
	if err != nil {
		return "", "", err
	}
	defer os.RemoveAll(tmp)
	root := filepath.Join(tmp, "root")
	if _, err := run("", "debootstrap", "--variant=minbase", debSuite, root, debMirror); err != nil {
		return "", "", err
	}
	// No package's maintainer script may start its daemon on this host.
	if err := os.WriteFile(filepath.Join(root, "usr/sbin/policy-rc.d"), []byte("#!/bin/sh\nexit 101\n"), 0o755); err != nil {
		return "", "", err
	}
	env := []string{"env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND=noninteractive", "LANG=C"}
	install := append(append([]string{root}, env...), "apt-get", "install", "-y", "-q", "--no-install-recommends")
	if _, err := run("", "chroot", append(install, debPackages...)...); err != nil {
		return "", "", err
	}
	policy, err := run("", "chroot", append(append([]string{root}, env...), "apt-cache", "policy", "cloud-init")...)
	if err != nil {
		return "", "", err
	}
	for _, line := range strings.Split(policy, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Installed: "); ok {
			version = v
		}
	}
	if !strings.HasPrefix(version, cloudInitUpstream) {
		return "", "", fmt.Errorf("the tree has cloud-init %q, not %s*: the comparison is written for 22.4.2\n%s", version, cloudInitUpstream, policy)
	}
	// apt's downloads are not part of the image.
	if err := removeGlob(filepath.Join(root, "var/cache/apt/archives/*.deb")); err != nil {
		return "", "", err
	}
	part := tarball + ".part"
	if _, err := run("", "tar", "--numeric-owner", "--xattrs", "-C", root, "-cf", part, "."); err != nil {
		return "", "", err
	}
	if err := os.Rename(part, tarball); err != nil {
		return "", "", err
	}
	return tarball, version, os.WriteFile(versionFile, []byte(version+"\n"), 0o644)
}

func removeGlob(pattern string) error {
	files, err := filepath.Glob(pattern)
	if err != nil {
		return err
	}
	for _, f := range files {
		if err := os.Remove(f); err != nil {
			return err
		}
	}
	return nil
}

// run runs a host command and returns its output, or an error carrying
// the command line and the output.
func run(dir, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out.String())
	}
	return out.String(), nil
}

// copyOf makes a snapshot of the pristine tree for one side of a case
// and returns its tree; the snapshot is deleted when the test ends.
func (s *suite) copyOf(t *testing.T, name string) string {
	t.Helper()
	s.copies++ // a case may make several copies of one name (two instances)
	sub := filepath.Join(s.mnt, fmt.Sprintf("%s-%s-%d", strings.NewReplacer("/", "-", " ", "_").Replace(t.Name()), name, s.copies))
	if _, err := run("", "btrfs", "subvolume", "snapshot", filepath.Join(s.mnt, "base"), sub); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		var err error
		// The namespace cloud-init ran in may take a moment to let go
		// of its mounts below the snapshot.
		for i := 0; i < 50; i++ {
			if _, err = run("", "btrfs", "subvolume", "delete", sub); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Errorf("deleting %s: %v", sub, err)
	})
	return filepath.Join(sub, "tree")
}

// attachLoop attaches img to a free loop device that cloud-init will take
// for the device it is: cc_mounts looks for a first partition by appending
// "1" and "p1" to the name, so /dev/loop1 on a machine that also has
// /dev/loop11 is taken for a partition it cannot find, and the entry
// left with its numbers unconverted crashes the module (cloud-init 22.4).
func attachLoop(img string) (string, error) {
	var lastErr error
	for n := range 256 {
		dev := fmt.Sprintf("/dev/loop%d", n)
		if exists("/", dev+"1") || exists("/", dev+"p1") {
			continue
		}
		if _, err := run("", "losetup", dev, img); err != nil {
			lastErr = err // busy, or no such device node yet
			continue
		}
		return dev, nil
	}
	// None of those: whatever is free (the kernel makes a new one).
	dev, err := run("", "losetup", "--find", "--show", img)
	if err != nil {
		return "", fmt.Errorf("%w (and before: %v)", err, lastErr)
	}
	return strings.TrimSpace(dev), nil
}
