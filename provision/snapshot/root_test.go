package snapshot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/provision/snapshot/btrfs"
	"github.com/provision-dev/provision/provision/snapshot/internal/treestate"
	"github.com/provision-dev/provision/provision/snapshot/journal"
)

// Root tier: real btrfs and ext4 on loop devices.

func requireRoot(t testing.TB, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("root tier: needs root (loop devices and mount)")
	}
	for _, tool := range append([]string{"mount", "umount", "losetup"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("root tier: %s not installed", tool)
		}
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		t.Skip("root tier: no loop device support (/dev/loop-control)")
	}
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func mount(t testing.TB, opts, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, "mount", "-o", opts, src, dst)
	t.Cleanup(func() { exec.Command("umount", "-l", dst).Run() })
}

// btrfsEnv is a loop btrfs with a root subvolume mounted like the initrd
// mounts /sysroot, and @var mounted separately (writes there are journaled).
type btrfsEnv struct {
	img, top, root, outside string
	snapper                 bool
	swap                    bool   // /var is snapshotted into the transaction, not journaled
	varPath                 string // the /var subvolume from the top level
	rootID                  uint64
	rootBefore, outBefore   treestate.State
	subvolsBefore           []string
}

// layoutSwap is the snapper layout with /var in @/var (openSUSE), not
// mounted anywhere, so the transaction snapshots it instead of journaling.
const layoutPlain, layoutSnapper, layoutSwap = "plain", "snapper", "snapper-swap"

func newBtrfs(t testing.TB, layout string) *btrfsEnv {
	t.Helper()
	requireRoot(t, "mkfs.btrfs", "btrfs")
	dir := t.TempDir()
	e := &btrfsEnv{img: filepath.Join(dir, "img"), top: filepath.Join(dir, "top"),
		root: filepath.Join(dir, "sysroot"), outside: filepath.Join(dir, "var"),
		snapper: layout == layoutSnapper || layout == layoutSwap, swap: layout == layoutSwap, varPath: "@var"}
	if e.swap {
		e.varPath = "@/var"
	}
	run(t, "truncate", "-s", "300M", e.img)
	run(t, "mkfs.btrfs", "-q", e.img)
	mount(t, "loop", e.img, e.top)
	run(t, "btrfs", "-q", "subvolume", "create", filepath.Join(e.top, "@"))
	run(t, "btrfs", "-q", "subvolume", "create", filepath.Join(e.top, e.varPath))
	rootPath := "@"
	if e.snapper {
		rootPath = "@/.snapshots/1/snapshot"
		run(t, "btrfs", "-q", "subvolume", "create", filepath.Join(e.top, "@/.snapshots"))
		os.Mkdir(filepath.Join(e.top, "@/.snapshots/1"), 0o755)
		run(t, "btrfs", "-q", "subvolume", "create", filepath.Join(e.top, rootPath))
		info := snapperInfo{Type: "single", Num: 1, Description: "first root filesystem"}
		if err := os.WriteFile(filepath.Join(e.top, "@/.snapshots/1/info.xml"), info.marshal(), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	rootAbs := filepath.Join(e.top, rootPath)
	if err := treestate.Populate(rootAbs); err != nil {
		t.Fatal(err)
	}
	if err := treestate.Populate(filepath.Join(e.top, e.varPath)); err != nil {
		t.Fatal(err)
	}
	if e.swap {
		// MicroOS since 2025: /etc is a subvolume nested in the root
		// snapshot, named by a bind line in fstab; one more nested below
		// it (what transactional-update's sync point looks like).
		nestEtc(t, rootAbs)
		fst := "UUID=x / btrfs ro 0 0\nUUID=x /.snapshots btrfs subvol=@/.snapshots 0 0\n" +
			"UUID=x /var btrfs subvol=@/var,x-initrd.mount 0 0\n/etc /etc none bind,x-initrd.mount 0 0\n"
		if err := os.WriteFile(filepath.Join(rootAbs, "etc/fstab"), []byte(fst), 0o644); err != nil {
			t.Fatal(err)
		}
		run(t, "btrfs", "-q", "subvolume", "create", filepath.Join(rootAbs, "etc/nested.d"))
		os.WriteFile(filepath.Join(rootAbs, "etc/nested.d/conf"), []byte("deep\n"), 0o644)
	}
	if e.snapper {
		os.MkdirAll(filepath.Join(rootAbs, "etc/snapper/configs"), 0o755)
		os.Mkdir(filepath.Join(rootAbs, ".snapshots"), 0o750)
		cfg := "SUBVOLUME=\"/\"\nFSTYPE=\"btrfs\"\nNUMBER_CLEANUP=\"yes\"\n"
		if err := os.WriteFile(filepath.Join(rootAbs, "etc/snapper/configs/root"), []byte(cfg), 0o640); err != nil {
			t.Fatal(err)
		}
		// MicroOS keeps its root snapshots read-only.
		run(t, "btrfs", "property", "set", rootAbs, "ro", "true")
	}
	id, err := btrfs.SubvolID(rootAbs)
	if err != nil {
		t.Fatal(err)
	}
	e.rootID = id
	run(t, "btrfs", "subvolume", "set-default", strconv.FormatUint(id, 10), e.top)
	mount(t, "loop,subvol="+rootPath, e.img, e.root)
	if e.snapper {
		mount(t, "loop,subvol=@/.snapshots", e.img, filepath.Join(e.root, ".snapshots"))
	}
	if e.swap {
		e.outside = filepath.Join(e.top, e.varPath) // seen through the top level only
	} else {
		mount(t, "loop,subvol=@var", e.img, e.outside)
	}
	e.rootBefore = e.capture(t, e.root)
	e.outBefore = e.capture(t, e.outside)
	e.subvolsBefore = e.subvols(t)
	return e
}

// nestEtc turns root's /etc into a nested subvolume with the same content,
// as openSUSE's setup-etc-subvol does on an image.
func nestEtc(t testing.TB, root string) {
	t.Helper()
	etc := filepath.Join(root, "etc")
	run(t, "mv", etc, etc+".old")
	run(t, "btrfs", "-q", "subvolume", "create", etc)
	run(t, "cp", "-a", etc+".old/.", etc+"/")
	run(t, "rm", "-rf", etc+".old")
}

func (e *btrfsEnv) capture(t testing.TB, dir string) treestate.State {
	t.Helper()
	s, err := treestate.Capture(dir, treestate.Options{Skip: func(rel string) bool { return rel == ".snapshots" }})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (e *btrfsEnv) defaultID(t testing.TB) (uint64, string) {
	t.Helper()
	out := run(t, "btrfs", "subvolume", "get-default", e.top)
	m := regexp.MustCompile(`^ID (\d+) .* path (\S+)`).FindStringSubmatch(out)
	if m == nil {
		if strings.HasPrefix(out, "ID 5 ") {
			return 5, "<FS_TREE>"
		}
		t.Fatalf("get-default: %q", out)
	}
	id, _ := strconv.ParseUint(m[1], 10, 64)
	return id, m[2]
}

func (e *btrfsEnv) subvols(t testing.TB) []string {
	t.Helper()
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(run(t, "btrfs", "subvolume", "list", e.top)), "\n") {
		if i := strings.Index(l, " path "); i >= 0 {
			out = append(out, l[i+6:])
		}
	}
	sort.Strings(out)
	return out
}

// apply is what the engine does between Begin and Commit: writes into the
// snapshot and into the separately mounted /var. With swapVar, /var is the
// subvolume varPath, snapshotted into the transaction and mounted (as the
// chroot does) while it is written.
func apply(txn Txn, outside string, swapVar string) error {
	if swapVar != "" {
		snap, err := txn.(SubvolumeSnapshotter).SnapshotSubvolume("/var", swapVar)
		if err != nil {
			return err
		}
		bt := txn.(*btrfsTxn)
		mnt, err := os.MkdirTemp("", "var-")
		if err != nil {
			return err
		}
		defer os.Remove(mnt)
		if err := syscall.Mount(bt.dev, mnt, "btrfs", 0, "subvol="+snap); err != nil {
			return err
		}
		defer syscall.Unmount(mnt, 0)
		outside = mnt
		// Written without the journal, as a script would.
		r, err := rootfs.New(mnt)
		if err != nil {
			return err
		}
		if err := treestate.Change(r); err != nil {
			return err
		}
		outside = ""
	}
	for _, dir := range []string{txn.Root(), outside} {
		if dir == "" {
			continue
		}
		r, err := rootfs.New(dir)
		if err != nil {
			return err
		}
		r.Journal = txn.Journal()
		if err := treestate.Change(r); err != nil {
			return err
		}
	}
	return nil
}

func (e *btrfsEnv) swapVar() string {
	if e.swap {
		return e.varPath
	}
	return ""
}

func (e *btrfsEnv) expectUntouched(t testing.TB) {
	t.Helper()
	if id, p := e.defaultID(t); id != e.rootID {
		t.Errorf("default subvolume %d (%s), want the old root %d", id, p, e.rootID)
	}
	if got := e.subvols(t); strings.Join(got, " ") != strings.Join(e.subvolsBefore, " ") {
		t.Errorf("subvolumes %v, want %v", got, e.subvolsBefore)
	}
	for _, d := range treestate.Diff(e.rootBefore, e.capture(t, e.root)) {
		t.Error("old root: " + d)
	}
	for _, d := range treestate.Diff(e.outBefore, e.capture(t, e.outside)) {
		t.Error("/var: " + d)
	}
	e.expectNoState(t)
	if e.snapper {
		if ents, _ := os.ReadDir(filepath.Join(e.top, "@/.snapshots")); len(ents) != 1 {
			t.Errorf("snapper directories left: %v", ents)
		}
	}
}

func (e *btrfsEnv) expectNoState(t testing.TB) {
	t.Helper()
	if _, err := os.Lstat(filepath.Join(e.top, StateDirName)); !os.IsNotExist(err) {
		t.Errorf("%s left in the top level: %v", StateDirName, err)
	}
}

// expectCommitted checks the default is a new, fully provisioned snapshot
// and the old root is unchanged; it returns the new default's path.
func (e *btrfsEnv) expectCommitted(t testing.TB) string {
	t.Helper()
	id, p := e.defaultID(t)
	if id == e.rootID {
		t.Fatalf("default is still the old root %d", id)
	}
	if err := treestate.CheckChanged(filepath.Join(e.top, p)); err != nil {
		t.Errorf("new default %s not fully provisioned: %v", p, err)
	}
	if err := treestate.CheckChanged(e.outside); err != nil {
		t.Errorf("/var: %v", err)
	}
	for _, d := range treestate.Diff(e.rootBefore, e.capture(t, e.root)) {
		t.Error("old root changed: " + d)
	}
	e.expectNoState(t)
	if e.snapper {
		if !regexp.MustCompile(`^@/\.snapshots/\d+/snapshot$`).MatchString(p) {
			t.Errorf("new default %s is not in the snapper layout", p)
		}
		info, err := os.ReadFile(filepath.Join(e.top, filepath.Dir(p), "info.xml"))
		if err != nil || strings.Contains(string(info), inProgressKey) || !regexp.MustCompile(`<description>Snapshot Update of #\d+</description>`).Match(info) || !strings.Contains(string(info), "<cleanup>number</cleanup>") {
			t.Errorf("info.xml of %s: %v\n%s", p, err, info)
		}
		ro, err := btrfs.ReadOnly(filepath.Join(e.top, p))
		if err != nil || !ro {
			t.Errorf("new snapshot not read-only like the old root: %v %v", ro, err)
		}
		if e.swap {
			e.expectNestedEtc(t, p)
		}
	} else if !regexp.MustCompile(`^@provision-\d{8}T\d{6}Z(-\d+)?$`).MatchString(p) {
		t.Errorf("new default %s is not a sibling of @", p)
	}
	return p
}

// expectNestedEtc checks that the new root p carries its own writable
// snapshots of the nested /etc and of what is nested in it.
func (e *btrfsEnv) expectNestedEtc(t testing.TB, p string) {
	t.Helper()
	for _, rel := range []string{"etc", "etc/nested.d"} {
		sub := filepath.Join(e.top, p, rel)
		if ok, err := btrfs.IsSubvolume(sub); err != nil || !ok {
			t.Errorf("%s/%s is not a subvolume in the new root (%v)", p, rel, err)
			continue
		}
		if ro, err := btrfs.ReadOnly(sub); err != nil || ro {
			t.Errorf("%s/%s read-only %v (%v), want writable like the original", p, rel, ro, err)
		}
	}
	if b, err := os.ReadFile(filepath.Join(e.top, p, "etc/nested.d/conf")); err != nil || string(b) != "deep\n" {
		t.Errorf("etc/nested.d/conf in the new root: %q %v", b, err)
	}
	want := fmt.Sprintf("%s/etc", p)
	if !slices.Contains(e.subvols(t), want) {
		t.Errorf("subvolume list lacks %s: %v", want, e.subvols(t))
	}
}

func TestBtrfsCommitAndAbort(t *testing.T) {
	for _, layout := range []string{layoutPlain, layoutSnapper, layoutSwap} {
		t.Run(layout, func(t *testing.T) {
			ctx := context.Background()
			e := newBtrfs(t, layout)
			var log strings.Builder
			txn, err := Begin(ctx, e.root, Options{Log: &log})
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := txn.(*btrfsTxn); !ok {
				t.Fatalf("backend %T, want btrfs", txn)
			}
			if !e.swap {
				// @var is mounted (a running system): its name cannot be
				// swapped, the caller falls back to the journal.
				_, err := txn.(SubvolumeSnapshotter).SnapshotSubvolume("/var", e.varPath)
				if !errors.Is(err, ErrNotSwappable) || !strings.Contains(err.Error(), "mounted at "+e.outside) {
					t.Errorf("SnapshotSubvolume of a mounted subvolume: %v, want ErrNotSwappable naming %s", err, e.outside)
				}
			}
			if err := apply(txn, e.outside, e.swapVar()); err != nil {
				txn.Abort(ctx)
				t.Fatal(err)
			}
			if err := txn.Abort(ctx); err != nil {
				t.Fatal(err)
			}
			e.expectUntouched(t)

			txn, err = Begin(ctx, e.root, Options{Log: &log})
			if err != nil {
				t.Fatal(err)
			}
			if err := apply(txn, e.outside, e.swapVar()); err != nil {
				txn.Abort(ctx)
				t.Fatal(err)
			}
			if err := txn.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			if err := txn.Abort(ctx); err == nil {
				t.Error("Abort after Commit succeeded")
			}
			p := e.expectCommitted(t)
			if e.snapper {
				if _, err := exec.LookPath("snapper"); err != nil {
					t.Log("snapper not installed: list check skipped")
					return
				}
				out := run(t, "snapper", "--no-dbus", "-r", e.root, "-c", "root", "list")
				num := strings.Split(p, "/")[2]
				if !regexp.MustCompile(`(?m)^` + num + `[+ ] *\| single .*\| number +\| Snapshot Update of #\d+ +\| *$`).MatchString(out) {
					t.Errorf("snapper list does not show snapshot %s as the next default:\n%s", num, out)
				}
			}
			t.Log(log.String())
		})
	}
}

func TestJournalBackendExt4(t *testing.T) {
	requireRoot(t, "mkfs.ext4")
	dir := t.TempDir()
	img := filepath.Join(dir, "img")
	run(t, "truncate", "-s", "64M", img)
	run(t, "mkfs.ext4", "-q", img)
	mnt := filepath.Join(dir, "mnt")
	mount(t, "loop", img, mnt)
	testJournalBackend(t, mnt)
}

// Crash tests: a helper process (this test binary) runs a transaction and
// SIGKILLs itself at one step; then Recover runs and the result must be
// either the untouched old root or a fully provisioned new default, and a
// second run must succeed.

const helperEnv = "PROVISION_SNAPSHOT_HELPER"

func TestHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		t.Skip("helper for the crash tests")
	}
	ctx := context.Background()
	root, outside, mode := os.Getenv("HELPER_ROOT"), os.Getenv("HELPER_OUTSIDE"), os.Getenv("HELPER_MODE")
	swapVar := os.Getenv("HELPER_SWAP")
	if swapVar != "" {
		outside = ""
	}
	txn, err := Begin(ctx, root, Options{Log: os.Stderr})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	if err := apply(txn, outside, swapVar); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	if mode == "switch-abort" {
		// A commit that failed after switching the default: Abort must
		// switch it back before it can delete the snapshot.
		bt := txn.(*btrfsTxn)
		if err := btrfs.SetDefault(bt.top, bt.snapID); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		mode = "abort"
	}
	if mode == "abort" {
		err = txn.Abort(ctx)
	} else {
		err = txn.Commit(ctx)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	os.Exit(0)
}

// runHelper reports whether the helper was killed at the kill point.
func runHelper(t *testing.T, root, outside, swapVar, mode, kp string) bool {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), helperEnv+"=1", "HELPER_ROOT="+root, "HELPER_OUTSIDE="+outside, "HELPER_SWAP="+swapVar,
		"HELPER_MODE="+mode, KillPointEnv+"="+kp)
	// Its own mount namespace: the top-level mount dies with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	out, err := cmd.CombinedOutput()
	if err == nil {
		return false
	}
	if ee, ok := err.(*exec.ExitError); ok {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return true
		}
	}
	t.Fatalf("helper failed: %v\n%s", err, out)
	return false
}

// abortPoints are steps only an abort passes.
func abortPoint(kp string) bool {
	kp, _, _ = strings.Cut(kp, "#")
	return strings.HasPrefix(kp, "btrfs.abort.") || strings.HasPrefix(kp, "journal.rollback.") || kp == kpJournalAborted
}

func TestBtrfsCrashAtEveryKillPoint(t *testing.T) {
	requireRoot(t, "mkfs.btrfs", "btrfs")
	reached := map[string]bool{}
	// Repeating steps are also killed later, half-way through the apply
	// and through the rollback.
	points := append(KillPoints(), journal.StepRecorded+"#12", journal.StepEntryRestored+"#6")
	// layoutSwap is the snapper layout plus the /var swap; the journaled
	// /var is covered by the plain layout.
	for _, layout := range []string{layoutPlain, layoutSwap} {
		for _, kp := range points {
			if strings.Contains(kp, ".outside") && layout != layoutSwap {
				continue
			}
			if strings.HasPrefix(kp, "journal.") && strings.HasSuffix(kp, ".done") {
				continue // journal backend only
			}
			mode := "commit"
			if abortPoint(kp) {
				mode = "abort"
			}
			if kp == kpBtrfsDefaultReset {
				mode = "switch-abort"
			}
			t.Run(layout+"/"+kp, func(t *testing.T) {
				ctx := context.Background()
				e := newBtrfs(t, layout)
				killed := runHelper(t, e.root, e.outside, e.swapVar(), mode, kp)
				if killed {
					reached[kp] = true
				}
				if err := Recover(ctx, e.root); err != nil {
					t.Fatalf("Recover: %v", err)
				}
				committed := false
				if id, _ := e.defaultID(t); id == e.rootID {
					e.expectUntouched(t)
				} else {
					e.expectCommitted(t)
					committed = true
				}
				if !killed && mode != "commit" {
					e.expectUntouched(t)
				}
				// The run after the crash must work: after a rollback it
				// provisions; after a committed crash the system is
				// provisioned, and a transaction begun and aborted must
				// leave it so.
				txn, err := Begin(ctx, e.root, Options{})
				if err != nil {
					t.Fatal(err)
				}
				if committed {
					if err := txn.Abort(ctx); err != nil {
						t.Fatal(err)
					}
				} else {
					if err := apply(txn, e.outside, e.swapVar()); err != nil {
						txn.Abort(ctx)
						t.Fatal(err)
					}
					if err := txn.Commit(ctx); err != nil {
						t.Fatal(err)
					}
				}
				e.expectCommitted(t)
			})
		}
	}
	for _, kp := range KillPoints() {
		if strings.HasPrefix(kp, "btrfs.") && !reached[kp] {
			t.Errorf("kill point %s never reached", kp)
		}
	}
}

func TestJournalCrashAtEveryKillPoint(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("root tier: the helper needs its own mount namespace")
	}
	reached := map[string]bool{}
	points := append(KillPoints(), journal.StepRecorded+"#12", journal.StepEntryRestored+"#6")
	for _, kp := range points {
		if strings.HasPrefix(kp, "btrfs.") {
			continue
		}
		mode := "commit"
		if abortPoint(kp) {
			mode = "abort"
		}
		t.Run(kp, func(t *testing.T) {
			ctx := context.Background()
			base := t.TempDir()
			root, outside := filepath.Join(base, "root"), "" // the journal covers the whole tree
			if err := os.Mkdir(root, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := treestate.Populate(root); err != nil {
				t.Fatal(err)
			}
			opts := treestate.Options{NoTopTime: true}
			before, _ := treestate.Capture(root, opts)
			if runHelper(t, root, outside, "", mode, kp) {
				reached[kp] = true
			}
			if err := Recover(ctx, root); err != nil {
				t.Fatalf("Recover: %v", err)
			}
			after, _ := treestate.Capture(root, opts)
			diff := treestate.Diff(before, after)
			if len(diff) > 0 {
				if err := treestate.CheckChanged(root); err != nil || mode == "abort" {
					t.Errorf("neither old nor new after recovery: %v\n%s", err, strings.Join(diff, "\n"))
				}
			}
			if _, err := os.Lstat(filepath.Join(root, JournalDirName)); !os.IsNotExist(err) {
				t.Errorf("journal left after recovery: %v", err)
			}
			txn, err := Begin(ctx, root, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if len(diff) == 0 {
				if err := apply(txn, outside, ""); err != nil {
					txn.Abort(ctx)
					t.Fatal(err)
				}
			}
			if err := txn.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			if err := treestate.CheckChanged(root); err != nil {
				t.Error(err)
			}
		})
	}
	for _, kp := range KillPoints() {
		if !strings.HasPrefix(kp, "btrfs.") && !reached[kp] {
			t.Errorf("kill point %s never reached", kp)
		}
	}
}

// The transaction's state is an xattr of its state directory, made durable
// by the snapshot's own commit: no state file, and what recovery reads
// names the snapshot Begin made. A state file an older release left is
// still read.
func TestBtrfsStateIsAnXattr(t *testing.T) {
	ctx := context.Background()
	e := newBtrfs(t, layoutSnapper)
	txn, err := Begin(ctx, e.root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	bt := txn.(*btrfsTxn)
	defer txn.Abort(ctx)
	if _, err := os.Lstat(filepath.Join(bt.stateDir, stateFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s: %v, want no state file", stateFile, err)
	}
	st, err := readState(bt.stateDir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Snapshot == "" || st.Snapshot != bt.st.Snapshot || st.SnapperDir == "" {
		t.Errorf("recorded state %+v, want the snapshot %s and its snapper directory", st, bt.st.Snapshot)
	}
	old := t.TempDir()
	data, _ := json.Marshal(btrfsState{Snapshot: "/@/.snapshots/9/snapshot", Root: "/@/.snapshots/1/snapshot"})
	os.WriteFile(filepath.Join(old, stateFile), data, 0o600)
	if st, err := readState(old); err != nil || st.Snapshot != "/@/.snapshots/9/snapshot" {
		t.Errorf("an older release's state file: %+v, %v", st, err)
	}
	if _, err := readState(t.TempDir()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("no state at all: %v, want fs.ErrNotExist (Begin died before recording one)", err)
	}
}

// TestSnapperWrittenInfoXML: an info.xml that snapper itself writes (with
// libxml2, for a description and userdata that need escaping) reads the
// same with our parser as with encoding/xml, and as snapper was told.
func TestSnapperWrittenInfoXML(t *testing.T) {
	if _, err := exec.LookPath("snapper"); err != nil {
		t.Skip("snapper not installed")
	}
	e := newBtrfs(t, layoutSnapper)
	const desc = `a <b> & "c" 'd' été`
	run(t, "snapper", "--no-dbus", "-r", e.root, "-c", "root", "create", "--description", desc,
		"--cleanup-algorithm", "number", "--userdata", "important=yes,k=<v&w>")
	data, err := os.ReadFile(filepath.Join(e.root, ".snapshots/2/info.xml"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := parseSnapperInfo("info.xml", data)
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	if info.Num != 2 || info.Type != "single" || info.Description != desc || info.Cleanup != "number" || info.Date.IsZero() {
		t.Errorf("read %+v from\n%s", info, data)
	}
	if v, _ := info.get("important"); v != "yes" {
		t.Errorf("userdata important = %q in\n%s", v, data)
	}
	if v, _ := info.get("k"); v != "<v&w>" {
		t.Errorf("userdata k = %q in\n%s", v, data)
	}
	ours, _ := parseInfoXML(data)
	ref, err := referenceInfo(data)
	if err != nil || !sameRawInfo(ours, ref) {
		t.Errorf("ours %+v, encoding/xml %+v (%v)", ours, ref, err)
	}
	// And what we write for the same snapshot is snapper's bytes.
	if got := info.marshal(); !bytes.Equal(got, data) {
		t.Errorf("we write\n%s\nsnapper wrote\n%s", got, data)
	}
}
