package e2e

// Power loss, not a kill: a tier A VM runs `provision run --root` on a
// btrfs root behind dm-log-writes, so the log disk holds every write that
// reached the disk with the flushes between them. On the host the log is
// replayed onto the disk as it was before the boot, and at every FLUSH and
// FUA entry the disk a power cut there would have left is mounted (btrfs
// replays its log tree, as the next boot would) and judged: the default
// subvolume is the old root, byte for byte as before with every other
// subvolume, or the new snapshot with the whole run in it. Then the next
// boot's run goes over it with the same seed and must end with the
// complete new root and nothing left of the interrupted transaction.

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/provision-dev/provision/modules/fstab"
	"github.com/provision-dev/provision/provision/snapshot"
	"github.com/provision-dev/provision/test/faithful"
)

// powerlossModules are loaded after the tier's own: device-mapper and its
// log-writes target (Debian builds both as modules), overlayfs for
// variant B's /etc, and ext4 (with jbd2, mbcache and crc16 by
// modules.dep) for the journal backend's layout.
var powerlossModules = []string{"dm_mod", "dm_log_writes", "overlay", "ext4"}

// powerlossInit is the VM's /init: no switch_root, only the run under the
// log. The data device and its filesystem come from the command line
// (powerloss.data=, powerloss.fstype=, btrfs when not given).
// Every step prints a line the host looks for; a failure powers off at
// once and the host fails on the missing line.
const powerlossInit = `#!/bin/sh
export PATH=/bin
mount -t devtmpfs devtmpfs /dev
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
while read -r m; do
	insmod "/lib/modules/$m" || echo "init: insmod $m failed"
done < /lib/modules/load-order
data=
fstype=btrfs
for w in $(cat /proc/cmdline); do
	case "$w" in
	powerloss.data=*) data="${w#powerloss.data=}" ;;
	powerloss.fstype=*) fstype="${w#powerloss.fstype=}" ;;
	esac
done
fail() { echo "POWERLOSS-FAILED: $*"; poweroff -f; }
n=0
while [ ! -b "$data" ] || [ ! -b /dev/vdb ]; do
	n=$((n + 1)); [ $n -gt 100 ] && fail "no $data or /dev/vdb"
	sleep 0.1
done
dev=$(dmctl create powerloss "$data" /dev/vdb) || fail "dmctl create"
echo "POWERLOSS-DEVICE $dev over $data"
mount -t "$fstype" "$dev" /sysroot || fail "mount $dev as $fstype"
dmctl mark powerloss run-start || fail "mark"
provision run --root /sysroot --source /seed --report /run/report.json
echo "POWERLOSS-RUN-EXIT $?"
dmctl mark powerloss run-end || fail "mark"
umount /sysroot || fail "umount"
dmctl remove powerloss || fail "dmctl remove"
echo POWERLOSS-DONE
sync
poweroff -f
`

const (
	plInstanceID = "iid-powerloss"
	plConfigTxt  = "written by write_files\n"
	plVarTxt     = "in var\n"
	plRunMarker  = "ran\n"
)

// plBlob is a 256 KiB file the run writes: big enough to span many
// extents, incompressible, so a torn write shows in its digest.
func plBlob() []byte {
	b := make([]byte, 0, 256<<10)
	s := sha256.Sum256([]byte("powerloss"))
	for len(b) < 256<<10 {
		b = append(b, s[:]...)
		s = sha256.Sum256(s[:])
	}
	return b
}

// plUserData is the seed: accounts and files, and with scripts a runcmd
// too. A run in which a program runs snapshots /var, /home and /root into
// the transaction; one with no program writes /var in place under the
// undo journal and snapshots /home and /root on their first write only
// (chroot.Options.LazySubvolumes), which is the other path to replay.
func plUserData(scripts bool) string {
	s := `#cloud-config
users:
  - name: alice
    gecos: Alice Powerloss
    shell: /bin/sh
write_files:
  - path: /etc/powerloss/config.txt
    content: "written by write_files\n"
  - path: /etc/powerloss/blob.bin
    encoding: b64
    content: ` + base64.StdEncoding.EncodeToString(plBlob()) + `
  - path: /var/lib/powerloss/data.txt
    content: "in var\n"
`
	if scripts {
		s += `runcmd:
  - echo ran > /etc/powerloss/runcmd.txt
  - mkdir -p /var/lib/powerloss-run && echo ran > /var/lib/powerloss-run/ok
`
	}
	return s
}

// plLayout is one target disk shape.
type plLayout struct {
	name string
	img  string // whole-disk image
	part int    // partition holding the root filesystem, 0: the whole disk
	off  int64  // its first byte in img
	dev  string // the data device in the VM
	// fstype is the root's filesystem: "" is btrfs (judged by the
	// default subvolume), "ext4" a plain tree the journal backend
	// provisions (judged after recovery, see powerloss_journal_test.go).
	fstype string
	// noProg: the run's seed is plUserData(false): no program runs, so
	// /home and /root are snapshotted on their first write, and each point
	// is judged after recovery (checkRecovered).
	noProg bool
}

var (
	dmctlOnce sync.Once
	dmctlPath string
	dmctlErr  error
)

// buildDmctl builds the static device-mapper helper once per test binary.
func buildDmctl(dir string) (string, error) {
	dmctlOnce.Do(func() {
		dmctlPath = filepath.Join(dir, "dmctl")
		cmd := exec.Command("go", "build", "-trimpath", "-o", dmctlPath, "./dmctl")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			dmctlErr = fmt.Errorf("building test/e2e/dmctl: %w\n%s", err, out)
		}
	})
	return dmctlPath, dmctlErr
}

// TestPowerLossReplay replays a run's writes to every flush and FUA point
// on the snapper layout BuildRoot makes, on the faithful openSUSE
// layouts A (nested /etc subvolume) and B (overlay /etc in /var), both
// with a read-only snapshot 1, quotas and a partitioned disk, and on a
// plain ext4 root, which the undo-journal backend provisions.
func TestPowerLossReplay(t *testing.T) {
	w := setup(t)
	ms, err := LoadModules(w.kernel)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ms.Resolve(powerlossModules); err != nil {
		t.Skipf("the kernel %s has no device-mapper log-writes target as a module: %v", w.kernel.Version, err)
	}
	for _, tool := range []string{"losetup", "sfdisk", "mkfs.ext4", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("power-loss replay needs %s: %v", tool, err)
		}
	}
	dmctl, err := buildDmctl(workDir)
	if err != nil {
		t.Fatal(err)
	}
	helper, err := os.ReadFile(dmctl)
	if err != nil {
		t.Fatal(err)
	}
	// The same NoCloud seed for the run in the VM (in the initramfs) and
	// for the next boot's runs on the host; one initramfs per seed, made
	// when a case first needs it (-run may pick one kind only).
	seedsDir := t.TempDir()
	type seeded struct{ initrd, seed string }
	made := map[bool]seeded{}
	seedFor := func(t *testing.T, scripts bool) (string, string) {
		if s, ok := made[scripts]; ok {
			return s.initrd, s.seed
		}
		name := "noprog"
		if scripts {
			name = "scripts"
		}
		seedFiles := Tree{
			"user-data": {Mode: 0o644, Data: []byte(plUserData(scripts))},
			"meta-data": {Mode: 0o644, Data: []byte("instance-id: " + plInstanceID + "\n")},
		}
		seed := filepath.Join(seedsDir, "seed-"+name)
		if err := seedFiles.WriteDir(seed); err != nil {
			t.Fatal(err)
		}
		extra := Tree{
			"init":      {Mode: 0o755, Data: []byte(powerlossInit)},
			"bin/dmctl": {Mode: 0o755, Data: helper},
			"bin/sync":  {Link: "busybox"},
		}
		for p, e := range seedFiles {
			extra["seed/"+p] = e
		}
		initrd := filepath.Join(seedsDir, "initrd-powerloss-"+name+".cpio")
		if err := BuildInitramfsWith(initrd, w.kernel, w.busybox, w.binary, append(append([]string{}, InitrdModules...), powerlossModules...), extra); err != nil {
			t.Fatal(err)
		}
		made[scripts] = seeded{initrd, seed}
		return initrd, seed
	}
	snapper := func(t *testing.T, name string) plLayout {
		d, err := BuildRoot(t.TempDir(), w.busybox, RootOptions{Layout: Snapper})
		if err != nil {
			t.Fatal(err)
		}
		return plLayout{name: name, img: d.Path, dev: "/dev/vda"}
	}
	t.Run("snapper", func(t *testing.T) {
		initrd, seed := seedFor(t, true)
		powerLoss(t, w, initrd, seed, snapper(t, "snapper"))
	})
	// MicroOS from 2025 on (A: /etc a nested subvolume) and SLE/Leap
	// Micro 5.x (B: /etc an overlay whose upper layer is in /var).
	for _, v := range []faithful.Variant{faithful.A, faithful.B} {
		name := "microos-" + string(v)
		t.Run(name, func(t *testing.T) {
			initrd, seed := seedFor(t, true)
			powerLoss(t, w, initrd, seed, faithfulLayout(t, w, v, name))
		})
	}
	t.Run("ext4-journal", func(t *testing.T) {
		needSysroot(t)
		initrd, seed := seedFor(t, true)
		powerLoss(t, w, initrd, seed, ext4Layout(t, w))
	})
	// The most common first boot: accounts and files, no program. Both
	// layouts name @/var in their fstab, so /var is snapshotted at once,
	// and /home on its first write.
	t.Run("snapper-noprog", func(t *testing.T) {
		initrd, seed := seedFor(t, false)
		l := snapper(t, "snapper-noprog")
		l.noProg = true
		powerLoss(t, w, initrd, seed, l)
	})
	// The same with /var and /home named by subvolid= in the fstab: no
	// snapshot of them could be swapped in (it has another id), so the
	// run writes them in place under the undo journal and nothing but the
	// default-subvolume switch commits what it wrote there. The journal's
	// own commit must not reach the disk before that switch: flushed, it
	// would through btrfs's log tree, and a cut between the two would keep
	// the writes beside the old root.
	t.Run("snapper-noprog-subvolid", func(t *testing.T) {
		initrd, seed := seedFor(t, false)
		l := snapper(t, "snapper-noprog-subvolid")
		if err := fstabBySubvolID(l.img, "@/.snapshots/1/snapshot/etc/fstab", "@/var", "@/home"); err != nil {
			t.Fatal(err)
		}
		l.noProg = true
		powerLoss(t, w, initrd, seed, l)
	})
	t.Run("microos-A-noprog", func(t *testing.T) {
		initrd, seed := seedFor(t, false)
		l := faithfulLayout(t, w, faithful.A, "microos-A-noprog")
		l.noProg = true
		powerLoss(t, w, initrd, seed, l)
	})
}

// fstabBySubvolID rewrites the fstab at fstab (a path from the top level
// of the btrfs image img) to name each of subvols by subvolid= rather than
// subvol=.
func fstabBySubvolID(img, fstab string, subvols ...string) error {
	top, err := os.MkdirTemp("", "provision-fstab-")
	if err != nil {
		return err
	}
	defer os.Remove(top)
	if _, err := run("", "mount", "-o", "loop,subvolid=5", img, top); err != nil {
		return err
	}
	defer run("", "umount", top)
	p := filepath.Join(top, fstab)
	data, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	text := string(data)
	for _, sv := range subvols {
		out, err := run("", "btrfs", "inspect-internal", "rootid", filepath.Join(top, sv))
		if err != nil {
			return err
		}
		named := "subvol=/" + sv
		if !strings.Contains(text, named) {
			return fmt.Errorf("%s names no %s", fstab, named)
		}
		text = strings.ReplaceAll(text, named, "subvolid="+strings.TrimSpace(out))
	}
	return os.WriteFile(p, []byte(text), 0o644)
}

// faithfulLayout builds the variant's disk (256 MiB, partitioned) from the
// tier's busybox root.
func faithfulLayout(t *testing.T, w *world, v faithful.Variant, name string) plLayout {
	dir := t.TempDir()
	list, err := run("", w.busybox, "--list")
	if err != nil {
		t.Fatal(err)
	}
	stage := filepath.Join(dir, "stage")
	if err := baseRoot(mustRead(t, w.busybox), strings.Fields(list), newUUID(), Snapper).WriteDir(stage); err != nil {
		t.Fatal(err)
	}
	d, err := faithful.Build(dir, faithful.Options{Variant: v, Stage: stage, Size: 256 << 20})
	if err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(stage)
	l := plLayout{name: name, img: d.Path, part: d.RootPart, dev: fmt.Sprintf("/dev/vda%d", d.RootPart)}
	for _, p := range d.Parts {
		if p.Number == d.RootPart {
			l.off = p.Start
		}
	}
	return l
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// plBefore is the disk as built, before the boot.
type plBefore struct {
	oldID   uint64
	oldRoot string
	subvols []string
	digest  map[string]string // the whole top level
}

// powerLoss boots the layout's disk once under the log and replays it.
func powerLoss(t *testing.T, w *world, initrd, seed string, l plLayout) {
	// Every point's image is a fresh copy: in memory when there is a
	// tmpfs for it.
	scratch := "/dev/shm"
	if st, err := os.Stat(scratch); err != nil || !st.IsDir() {
		scratch = ""
	}
	shm, err := os.MkdirTemp(scratch, "provision-powerloss-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(shm) })
	base := filepath.Join(shm, "base.img")
	if err := copySparse(l.img, base); err != nil {
		t.Fatal(err)
	}
	var before *plBefore
	if l.fstype == "ext4" {
		before, err = plReadBeforeExt4(base, shm)
	} else {
		before, err = plReadBefore(base, l.part, shm)
	}
	if err != nil {
		t.Fatal(err)
	}
	logImg := filepath.Join(filepath.Dir(l.img), "log.img")
	if err := os.WriteFile(logImg, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(logImg, 512<<20); err != nil {
		t.Fatal(err)
	}
	vm := VM{Arch: AMD64, Kernel: w.kernel.Vmlinuz, Initrd: initrd, Root: &RootDisk{Path: l.img},
		Disks: []string{logImg}, Cmdline: []string{"powerloss.data=" + l.dev}, Timeout: 300 * time.Second}
	if l.fstype != "" {
		vm.Cmdline = append(vm.Cmdline, "powerloss.fstype="+l.fstype)
	}
	console, err := os.Create(filepath.Join(filepath.Dir(l.img), "console.log"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := vm.Boot(t.Context(), console)
	console.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"POWERLOSS-RUN-EXIT 0", "POWERLOSS-DONE"} {
		if !strings.Contains(res.Console, want) {
			t.Fatalf("%s: the run under the log did not finish (no %q on the console, timed out: %v):\n%s", l.name, want, res.TimedOut, res.Console)
		}
	}
	t.Logf("%s: the run under dm-log-writes took %s (boot to power-off)", l.name, res.Elapsed.Round(100*time.Millisecond))

	lf, err := os.Open(logImg)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	st, err := lf.Stat()
	if err != nil {
		t.Fatal(err)
	}
	wl, err := ReadWriteLog(lf, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	master := filepath.Join(shm, "replay.img")
	if err := copySparse(base, master); err != nil {
		t.Fatal(err)
	}
	mf, err := os.OpenFile(master, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer mf.Close()

	c := &plChecker{t: t, l: l, scripts: !l.noProg, before: before, seed: seed, binary: w.binary, shm: shm, states: map[string]int{}, trees: map[string]bool{}, kinds: map[string]int{}}
	start := time.Now()
	dirty := true
	lastVerdict := ""
	var flushes, fuas, marks int
	inRun := false
	for _, e := range wl.Entries {
		if err := wl.Apply(e, mf, l.off); err != nil {
			t.Fatal(err)
		}
		switch {
		case e.Flags&LogMark != 0:
			marks++
			inRun = e.Mark == "run-start"
			continue
		case !e.Checkpoint():
			dirty = dirty || e.Sectors > 0
			continue
		}
		if e.Flags&LogFlush != 0 {
			flushes++
		}
		if e.Flags&LogFUA != 0 {
			fuas++
		}
		c.points++
		if inRun {
			c.inRun++
		}
		if !dirty && e.Sectors == 0 {
			// Nothing reached the disk since the last point: the same
			// image, the same verdict.
			c.same++
			c.states[lastVerdict]++
			continue
		}
		dirty = false
		switch {
		case l.fstype == "ext4":
			lastVerdict = c.checkJournal(c.points, e, master)
		case l.noProg:
			lastVerdict = c.checkRecovered(c.points, e, master)
		default:
			lastVerdict = c.check(c.points, e, master)
		}
	}
	// The whole log replayed must be the disk the VM left: proof that
	// the log holds every write and the replay reads it right.
	got, err := fileSum(master)
	if err != nil {
		t.Fatal(err)
	}
	want, err := fileSum(l.img)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("%s: the fully replayed log (%d entries) differs from the disk the VM left: the replay is wrong, no point can be trusted", l.name, len(wl.Entries))
	}
	if c.inRun == 0 {
		t.Errorf("%s: no flush point between the run-start and run-end marks: the run wrote nothing durable?", l.name)
	}
	if l.fstype == "ext4" {
		t.Logf("%s: %d log entries (%d marks), %d flush points checked (%d FLUSH, %d FUA; %d during provision run, the rest the VM's mount and unmount), %d of them byte-identical to the point before; states: %d old tree, %d new tree, %d rolled back to the old tree by recovery, %d rolled back with the script's own writes left (not undone on this backend, as the run says), %d committed with the journal's removal left to recovery; %d points (%d distinct trees) given the next boot's run; %d violations; replay took %s",
			l.name, len(wl.Entries), marks, c.points, flushes, fuas, c.inRun, c.same, c.states["old"], c.states["new"], c.states["recovered-to-old"], c.states["recovered-to-old+script"], c.states["new-removal-pending"], c.followed, len(c.trees), c.violations, time.Since(start).Round(time.Second))
		return
	}
	if l.noProg {
		t.Logf("%s: %d log entries (%d marks), %d flush points checked (%d FLUSH, %d FUA; %d during provision run, the rest the VM's mount and unmount), %d of them byte-identical to the point before; states: %d old root, %d rolled back to the old root by recovery with /var untouched, %d rolled back by recovery undoing the run's writes in /var, %d new root, %d new root with the rest left to recovery; %d points (%d distinct trees) given the next boot's run; %d violations; replay took %s",
			l.name, len(wl.Entries), marks, c.points, flushes, fuas, c.inRun, c.same, c.states["old"], c.states["recovered-to-old"], c.states["recovered-to-old-var-undone"], c.states["new"], c.states["new-finished-by-recovery"], c.followed, len(c.trees), c.violations, time.Since(start).Round(time.Second))
		return
	}
	t.Logf("%s: %d log entries (%d marks), %d flush points checked (%d FLUSH, %d FUA; %d during provision run, the rest the VM's mount and unmount), %d of them byte-identical to the point before; states: %d old root, %d new root, %d new root with the /var swap left to recovery; %d points (%d distinct trees) given the next boot's run; %d violations; replay took %s",
		l.name, len(wl.Entries), marks, c.points, flushes, fuas, c.inRun, c.same, c.states["old"], c.states["new"], c.states["new-swap-pending"], c.followed, len(c.trees), c.violations, time.Since(start).Round(time.Second))
}

// plReadBefore mounts the built disk read-only and records what the old
// root and every subvolume hold.
func plReadBefore(img string, part int, scratch string) (*plBefore, error) {
	dev, detach, err := plAttach(img, part)
	if err != nil {
		return nil, err
	}
	top := filepath.Join(scratch, "before")
	var b *plBefore
	err = plMounted(dev, top, "ro,subvolid=5", func() error {
		in, d, err := inspectTree(top)
		if err != nil {
			return err
		}
		b = &plBefore{oldID: in.Default.ID, oldRoot: in.Default.Path, subvols: in.subvolumePaths(), digest: d}
		return nil
	})
	return b, errors.Join(err, detach())
}

// plAttach puts an image on a loop device; part > 0 names the partition
// to use. detach forgets the btrfs device (the next image has the same
// fsid and an older generation, which the kernel would refuse) and frees
// the loop device.
func plAttach(img string, part int) (string, func() error, error) {
	args := []string{"--show", "-f"}
	if part > 0 {
		args = append(args, "-P")
	}
	out, err := run("", "losetup", append(args, img)...)
	if err != nil {
		return "", nil, err
	}
	loop := strings.TrimSpace(out)
	dev := loop
	if part > 0 {
		dev = fmt.Sprintf("%sp%d", loop, part)
	}
	detach := func() error {
		// A mount namespace's mounts are torn down after its last
		// process exits, in the background: the next image, with the
		// same fsid, must not meet this one still open (a kernel with
		// temp-fsid mounts it beside it, and fstab's UUID= then names
		// this one).
		err := waitReleased(dev)
		_, _ = run("", "btrfs", "device", "scan", "--forget", dev)
		_, derr := run("", "losetup", "-d", loop)
		return errors.Join(err, derr)
	}
	for i := 0; ; i++ {
		if _, err := os.Stat(dev); err == nil {
			return dev, detach, nil
		}
		if i == 0 && part > 0 {
			_, _ = run("", "partx", "-u", loop)
		}
		if i > 250 {
			return "", nil, errors.Join(fmt.Errorf("%s: %s did not appear", img, dev), detach())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitReleased waits until no mounted btrfs has dev as a member any more
// (sysfs lists the devices of mounted filesystems only).
func waitReleased(dev string) error {
	pattern := filepath.Join("/sys/fs/btrfs", "*", "devices", filepath.Base(dev))
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		m, _ := filepath.Glob(pattern)
		if len(m) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s is still a member of a mounted btrfs a minute after its last unmount: %v", dev, m)
		}
	}
}

// plMounted mounts the btrfs dev on dir with opts for the length of f.
func plMounted(dev, dir, opts string, f func() error) error {
	return plMountedAs(dev, "btrfs", dir, opts, f)
}

// plMountedAs mounts dev, a fstype filesystem, on dir with opts for the
// length of f.
func plMountedAs(dev, fstype, dir, opts string, f func() error) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if _, err := run("", "mount", "-t", fstype, "-o", opts, dev, dir); err != nil {
		return err
	}
	err := f()
	if _, uerr := run("", "umount", dir); uerr != nil {
		err = errors.Join(err, uerr)
	}
	return err
}

// plChecker judges the replayed images.
type plChecker struct {
	t             *testing.T
	l             plLayout
	scripts       bool // the seed has a runcmd (plUserData)
	before        *plBefore
	seed, binary  string
	shm           string
	points, inRun int
	same          int
	violations    int
	states        map[string]int
	followed      int             // points given the next boot's run
	trees         map[string]bool // distinct default, subvolumes and files
	changes       []string        // the last point's differences from before, for messages
	kinds         map[string]int  // a violation's first line -> the first point showing it
}

var snapperSnapshot = regexp.MustCompile(`^@/\.snapshots/(\d+)/snapshot$`)

// check judges the disk a power cut at point n (log entry e) leaves and,
// for a tree not seen before, the next boot's run on it. It returns the
// state: old, new or new-swap-pending.
func (c *plChecker) check(n int, e LogEntry, master string) string {
	img := filepath.Join(c.shm, "point.img")
	if err := copySparse(master, img); err != nil {
		c.t.Fatal(err)
	}
	defer os.Remove(img)
	var problems []string
	state := ""
	c.changes = nil
	dev, detach, err := plAttach(img, c.l.part)
	if err != nil {
		c.t.Fatal(err)
	}
	defer func() {
		if err := detach(); err != nil {
			c.t.Error(err)
		}
	}()
	top := filepath.Join(c.shm, "top")
	fingerprint := ""
	// Mounted read-write as the next boot mounts it: btrfs replays its
	// log tree.
	err = plMounted(dev, top, "subvolid=5", func() error {
		in, d, err := inspectTree(top)
		if err != nil {
			return err
		}
		fingerprint = in.Default.Path + " " + strings.Join(in.subvolumePaths(), ",") + " " + digestSum(d)
		state, problems = c.judge(top, in, d)
		c.changes = []string{fmt.Sprintf("default subvolume %s (id %d)", in.Default.Path, in.Default.ID)}
		for _, sv := range in.subvolumePaths() {
			if slices.Contains(c.before.subvols, sv) {
				continue
			}
			ro, err := run("", "btrfs", "property", "get", "-ts", filepath.Join(top, sv), "ro")
			c.changes = append(c.changes, fmt.Sprintf("new subvolume %s: %s", sv, strings.TrimSpace(ro+" "+errString(err))))
		}
		c.changes = append(c.changes, digestChanges(c.before.digest, d, 25)...)
		return nil
	})
	c.conclude(n, e, state, fingerprint, problems, err, func() []string { return c.nextBoot(dev, top) })
	return state
}

// conclude counts a flush point's state and tree, gives it the next
// boot's run when it passed (every point, not a sample: two points with
// the same files can differ in what must be replayed or cleaned up at
// mount) and reports it. mountErr is what kept the image from mounting.
func (c *plChecker) conclude(n int, e LogEntry, state, fingerprint string, problems []string, mountErr error, nextBoot func() []string) {
	if mountErr != nil {
		problems = append(problems, "does not mount as the next boot would: "+mountErr.Error())
	}
	c.states[state]++
	c.trees[fingerprint] = true
	if len(problems) == 0 {
		problems = append(problems, nextBoot()...)
		c.followed++
	}
	c.report(n, e, state, problems)
}

// judge reads the replayed disk's top level.
func (c *plChecker) judge(top string, in *Inspection, d map[string]string) (string, []string) {
	var problems []string
	b := c.before
	if diff := digestDiff(subDigest(b.digest, b.oldRoot), subDigest(d, b.oldRoot), 10); len(diff) > 0 {
		problems = append(problems, fmt.Sprintf("the old root %s changed: %v", b.oldRoot, diff))
	}
	if in.Default.ID == b.oldID {
		// Nothing committed: every subvolume as it was.
		for _, sv := range b.subvols {
			if sv == "@" || sv == "@/.snapshots" || strings.HasPrefix(sv, b.oldRoot) {
				continue
			}
			if diff := digestDiff(subDigest(b.digest, sv), subDigest(d, sv), 10); len(diff) > 0 {
				problems = append(problems, fmt.Sprintf("the old root is the default, but subvolume %s changed: %v", sv, diff))
			}
		}
		return "old", problems
	}
	if !snapperSnapshot.MatchString(in.Default.Path) || in.Default.Path == b.oldRoot {
		return "other", append(problems, fmt.Sprintf("the default subvolume is %q (id %d): neither the old root %s nor a new snapper snapshot", in.Default.Path, in.Default.ID, b.oldRoot))
	}
	root := filepath.Join(top, in.Default.Path)
	vp := varProblems(filepath.Join(top, "@/var"), c.scripts)
	if len(vp) == 0 {
		problems = append(problems, newRootProblems(root, filepath.Join(top, "@/var"), c.scripts)...)
		if !c.scripts {
			// Judged after recovery only (checkRecovered, nextBoot):
			// the /home snapshot taken at the home's creation is swapped
			// in by then. With scripts the judge also sees a swap
			// pending, which it tells by /var alone.
			if st, err := os.Stat(filepath.Join(top, "@/home/alice")); err != nil || !st.IsDir() {
				problems = append(problems, fmt.Sprintf("@/home/alice, the new user's home, is not a directory (%v)", err))
			}
		}
		return "new", problems
	}
	// The commit point passed, the renames of /var did not: the state
	// must name the snapshot that holds the new /var, for recovery to
	// swap it in.
	if _, err := os.Stat(filepath.Join(top, ".provision")); err != nil {
		return "new", append(problems, fmt.Sprintf("the new root is the default, /var is not the run's (%v) and no transaction state is left to finish it", vp))
	}
	for _, sv := range in.subvolumePaths() {
		if strings.HasPrefix(sv, "@/.var.provision-") && !strings.HasSuffix(sv, "-old") && len(varProblems(filepath.Join(top, sv), c.scripts)) == 0 {
			return "new-swap-pending", append(problems, newRootProblems(root, filepath.Join(top, sv), c.scripts)...)
		}
	}
	return "new", append(problems, fmt.Sprintf("the new root is the default, but no /var holds the run's writes: @/var: %v", vp))
}

func wantFile(p, want string) []string {
	b, err := os.ReadFile(p)
	if err != nil {
		return []string{err.Error()}
	}
	if string(b) != want {
		if len(b) > 80 {
			return []string{fmt.Sprintf("%s: %d bytes (sha256 %x), not the run's %d", p, len(b), sha256.Sum256(b), len(want))}
		}
		return []string{fmt.Sprintf("%s = %q, want %q", p, b, want)}
	}
	return nil
}

// newRootProblems checks that the root, with varDir as its /var, holds
// everything the run of plUserData(scripts) wrote.
func newRootProblems(root, varDir string, scripts bool) []string {
	var ps []string
	etc := func(p string) string { return etcPath(root, varDir, p) }
	passwd, err := os.ReadFile(etc("passwd"))
	if err != nil || !strings.Contains(string(passwd), "\nalice:x:") {
		ps = append(ps, fmt.Sprintf("/etc/passwd has no alice (%v)", err))
	}
	shadow, err := os.ReadFile(etc("shadow"))
	if err != nil || !strings.Contains(string(shadow), "\nalice:") {
		ps = append(ps, fmt.Sprintf("/etc/shadow has no alice (%v)", err))
	}
	ps = append(ps, wantFile(etc("powerloss/config.txt"), plConfigTxt)...)
	ps = append(ps, wantFile(etc("powerloss/blob.bin"), string(plBlob()))...)
	if scripts {
		ps = append(ps, wantFile(etc("powerloss/runcmd.txt"), plRunMarker)...)
	}
	return ps
}

// etcPath is where /etc/<p> of the snapshot at root is on the host as it
// boots: its own etc, or the first layer holding it of the /etc overlay
// its fstab names (B: upper in /var/lib/overlay/N/etc, then the lower
// ones). varDir is what is mounted on its /var.
func etcPath(root, varDir, p string) string {
	b, err := os.ReadFile(filepath.Join(root, "etc/fstab"))
	if err != nil {
		return filepath.Join(root, "etc", p)
	}
	entries, err := fstab.Parse(filepath.Join(root, "etc/fstab"), b)
	if err != nil {
		return filepath.Join(root, "etc", p)
	}
	for _, e := range entries {
		if e.File != "/etc" || e.VfsType != "overlay" {
			continue
		}
		var layers []string
		if up, _ := e.Option("upperdir"); up != "" {
			layers = append(layers, up)
		}
		lower, _ := e.Option("lowerdir")
		layers = append(layers, strings.Split(lower, ":")...)
		for _, l := range layers {
			l = "/" + strings.TrimPrefix(strings.TrimPrefix(l, "/sysroot"), "/")
			host := filepath.Join(root, l)
			if l == "/var" || strings.HasPrefix(l, "/var/") {
				host = filepath.Join(varDir, strings.TrimPrefix(l, "/var"))
			}
			if _, err := os.Lstat(filepath.Join(host, p)); err == nil {
				return filepath.Join(host, p)
			}
		}
	}
	return filepath.Join(root, "etc", p)
}

// varProblems checks that a /var holds the writes of the run of
// plUserData(scripts).
func varProblems(v string, scripts bool) []string {
	var ps []string
	ps = append(ps, wantFile(filepath.Join(v, "lib/powerloss/data.txt"), plVarTxt)...)
	if scripts {
		ps = append(ps, wantFile(filepath.Join(v, "lib/powerloss-run/ok"), plRunMarker)...)
	}
	id, err := os.ReadFile(filepath.Join(v, "lib/provision/instance-id"))
	if err != nil || !strings.Contains(string(id), plInstanceID) {
		ps = append(ps, fmt.Sprintf("lib/provision/instance-id: %q (%v)", id, err))
	}
	return ps
}

// nextBoot runs provision on the replayed disk as the next boot would
// (the default subvolume mounted as /sysroot, the same seed) and checks
// the outcome: the complete new root, /var swapped in, nothing left of
// the interrupted transaction, the old root untouched.
func (c *plChecker) nextBoot(dev, top string) []string {
	sysroot := filepath.Join(c.shm, "sysroot")
	var out []byte
	var runErr error
	err := plMounted(dev, sysroot, "rw", func() error {
		cmd := exec.Command(c.binary, "run", "--root", sysroot, "--source", c.seed, "--report", filepath.Join(c.shm, "report.json"))
		// Its own mount namespace, like a boot: what it mounts dies with it.
		cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
		out, runErr = cmd.CombinedOutput()
		return nil
	})
	if err != nil {
		return []string{"the next boot cannot mount it: " + err.Error()}
	}
	if runErr != nil {
		return []string{fmt.Sprintf("the next boot's run fails (%v):\n%s", runErr, out)}
	}
	var problems []string
	err = plMounted(dev, top, "ro,subvolid=5", func() error {
		in, d, err := inspectTree(top)
		if err != nil {
			return err
		}
		state, ps := c.judge(top, in, d)
		problems = append(problems, ps...)
		if state != "new" {
			problems = append(problems, fmt.Sprintf("after the next boot's run the disk is in state %q, want the new root with its /var", state))
		}
		if _, err := os.Stat(filepath.Join(top, snapshot.StateDirName)); err == nil {
			problems = append(problems, "after the next boot's run a transaction state is still in "+snapshot.StateDirName)
		}
		// A journal recovery would not replay is set aside, and what it
		// recorded stays done: a rollback that did not happen.
		if _, err := os.Stat(filepath.Join(top, snapshot.QuarantineDirName)); err == nil {
			problems = append(problems, "after the next boot's run "+snapshot.QuarantineDirName+" holds a journal recovery refused")
		}
		// Snapper must see the new default as a finished snapshot.
		if m := snapperSnapshot.FindStringSubmatch(in.Default.Path); m != nil {
			info, err := os.ReadFile(filepath.Join(top, "@/.snapshots", m[1], "info.xml"))
			if err != nil || !strings.Contains(string(info), "<num>"+m[1]+"</num>") || strings.Contains(string(info), "in-progress") {
				problems = append(problems, fmt.Sprintf("after the next boot's run snapshot %s's info.xml is not a finished snapper snapshot's (%v):\n%s", m[1], err, info))
			}
		}
		for _, sv := range in.subvolumePaths() {
			if strings.Contains(sv, ".provision-") {
				problems = append(problems, "after the next boot's run subvolume "+sv+" is left over")
			}
		}
		return nil
	})
	return nextBootVerdict(problems, err, out)
}

// nextBootVerdict ends a next boot's check: what kept the disk from being
// inspected joins the problems, and any problem comes with what the run
// said.
func nextBootVerdict(problems []string, err error, out []byte) []string {
	if err != nil {
		problems = append(problems, "after the next boot's run: "+err.Error())
	}
	if len(problems) > 0 {
		problems = append(problems, "the next boot's run said:\n"+string(out))
	}
	return problems
}
