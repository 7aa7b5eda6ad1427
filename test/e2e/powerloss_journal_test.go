package e2e

// The power-loss replay of the undo-journal backend: a plain ext4 root,
// which cannot be snapshotted, so the run changes the tree in place and
// keeps every original in .provision-journal first. At a cut point the
// tree may hold half a run: what decides is what recovery (run first by
// every `provision run`) makes of it. Recovery runs on a copy of the
// replayed disk, and the tree must then be the old one byte for byte (with
// nothing left of the journal) or the complete new one. The next boot's
// run, on another copy of the disk as the cut left it, recovers by itself
// and must end with the complete new tree.
//
// The journal names the paths it keeps as the run saw them, below
// /sysroot, and recovery refuses a journal naming a path outside the root
// it is given: each copy is mounted on /sysroot on the host too, where the
// next boot's initrd mounts it.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/provision-dev/provision/provision/snapshot"
	"github.com/provision-dev/provision/provision/snapshot/journal"
)

// ext4Layout is the tier's busybox root (what the snapper layout's
// snapshot 1 holds, /var included) on one ext4 filesystem filling a 256
// MiB disk without a partition table.
func ext4Layout(t *testing.T, w *world) plLayout {
	dir := t.TempDir()
	list, err := run("", w.busybox, "--list")
	if err != nil {
		t.Fatal(err)
	}
	bb, err := os.ReadFile(w.busybox)
	if err != nil {
		t.Fatal(err)
	}
	uuid := newUUID()
	tree := baseRoot(bb, strings.Fields(list), uuid, Plain)
	tree["etc/fstab"] = TreeEntry{Mode: 0o644, Data: []byte("UUID=" + uuid + " / ext4 defaults 0 1\n")}
	stage := filepath.Join(dir, "stage")
	if err := tree.WriteDir(stage); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "root.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 256<<20); err != nil {
		t.Fatal(err)
	}
	if _, err := run("", "mkfs.ext4", "-q", "-F", "-L", RootLabel, "-U", uuid, "-d", stage, img); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(stage)
	return plLayout{name: "ext4-journal", img: img, dev: "/dev/vda", fstype: "ext4"}
}

// plTreeDigestExt4 is treeDigest without lost+found, which belongs to
// e2fsck, not to the tree.
func plTreeDigestExt4(dir string) (map[string]string, error) {
	d, err := treeDigest(dir)
	for p := range d {
		if p == "lost+found" || strings.HasPrefix(p, "lost+found/") {
			delete(d, p)
		}
	}
	return d, err
}

// plReadBeforeExt4 mounts the built disk read-only and pictures its tree.
func plReadBeforeExt4(img, scratch string) (*plBefore, error) {
	dev, detach, err := plAttach(img, 0)
	if err != nil {
		return nil, err
	}
	top := filepath.Join(scratch, "before")
	var b *plBefore
	err = plMountedAs(dev, "ext4", top, "ro", func() error {
		d, err := plTreeDigestExt4(top)
		if err != nil {
			return err
		}
		b = &plBefore{digest: d}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w (%v)", err, detach())
	}
	return b, detach()
}

// plScriptWrites are what the seed's runcmd writes outside every path a
// module wrote: the journal backend does not undo a script's own writes
// (the run says so when it begins), so a rollback may leave them. Its
// other write, /etc/powerloss/runcmd.txt, is in a directory write_files
// created, which a rollback removes whole.
var plScriptWrites = []string{"var/lib/powerloss-run", "var/lib/powerloss-run/ok"}

// journalsIn lists the journal directories a tree's digest holds, open
// ones and finished ones (.committed, .done) apart.
func journalsIn(d map[string]string) (open, finished []string) {
	prefix := snapshot.JournalDirName + "/"
	for p := range d {
		rest, ok := strings.CutPrefix(p, prefix)
		if !ok || strings.Contains(rest, "/") {
			continue
		}
		if strings.HasSuffix(rest, journal.SuffixCommitted) || strings.HasSuffix(rest, journal.SuffixDone) {
			finished = append(finished, rest)
		} else {
			open = append(open, rest)
		}
	}
	sort.Strings(open)
	sort.Strings(finished)
	return open, finished
}

// newTreeProblems checks that the plain tree at root holds everything the
// run of plUserData(scripts) wrote.
func newTreeProblems(root string, scripts bool) []string {
	return append(newRootProblems(root, filepath.Join(root, "var"), scripts), varProblems(filepath.Join(root, "var"), scripts)...)
}

// judgeJournal judges a tree after recovery (after) from what the cut left
// (raw): with an open journal left, recovery must have rolled the tree back
// to the old one; with a finished one or none, the tree is the old one (the
// run had not begun) or the new one. Recovery must leave no journal.
func (c *plChecker) judgeJournal(top string, raw, after map[string]string, recoverErr error) (string, []string) {
	var problems []string
	if recoverErr != nil {
		problems = append(problems, "recovery fails: "+recoverErr.Error())
	}
	for p := range after {
		if p == snapshot.JournalDirName || strings.HasPrefix(p, snapshot.JournalDirName+"/") || strings.HasPrefix(p, snapshot.JournalDirName+".") {
			problems = append(problems, "recovery leaves "+p)
			break
		}
	}
	open, finished := journalsIn(raw)
	diff := digestDiff(c.before.digest, after, 1<<30)
	if len(diff) == 0 {
		switch {
		case len(open) > 0:
			return "recovered-to-old", problems
		case len(finished) > 0:
			return "recovered-to-old", append(problems, fmt.Sprintf("only a finished journal (%v) was left, and recovery turned the tree into the old one", finished))
		}
		return "old", problems
	}
	if len(open) > 0 {
		if c.scripts && onlyScriptWrites(diff) {
			return "recovered-to-old+script", problems
		}
		return "neither", append(problems, fmt.Sprintf("the journal %v was open (the run had not committed), but after recovery the tree is not the old one: %v", open, firstN(diff, 10)))
	}
	if ps := newTreeProblems(top, c.scripts); len(ps) > 0 {
		return "neither", append(problems, fmt.Sprintf("no open journal was left, and the tree is neither the old one (%v) nor the new one: %s", firstN(diff, 10), strings.Join(ps, "; ")))
	}
	if len(finished) > 0 {
		return "new-removal-pending", problems
	}
	return "new", problems
}

// onlyScriptWrites reports whether every difference is a path the seed's
// script added.
func onlyScriptWrites(diff []string) bool {
	for _, d := range diff {
		kind, p, _ := strings.Cut(d, " ")
		if kind != "added" || !slices.Contains(plScriptWrites, p) {
			return false
		}
	}
	return true
}

func firstN(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], fmt.Sprintf("... %d more", len(s)-n))
	}
	return s
}

// checkJournal is check for the ext4 layout: recovery on one copy of the
// disk the cut at point n leaves, the next boot's run on another.
func (c *plChecker) checkJournal(n int, e LogEntry, master string) string {
	var problems []string
	state := ""
	c.changes = nil
	fingerprint := ""
	err := c.onCopy(master, "point.img", func(dev, top string) error {
		// Mounted read-write as the next boot mounts it: ext4 replays
		// its own journal.
		return plMountedAs(dev, "ext4", top, "rw", func() error {
			raw, err := plTreeDigestExt4(top)
			if err != nil {
				return err
			}
			fingerprint = digestSum(raw)
			var log bytes.Buffer
			recoverErr := snapshot.RecoverLogged(c.t.Context(), top, &log)
			if recoverErr != nil && log.Len() > 0 {
				recoverErr = fmt.Errorf("%w\n%s", recoverErr, log.String())
			}
			after, err := plTreeDigestExt4(top)
			if err != nil {
				return err
			}
			state, problems = c.judgeJournal(top, raw, after, recoverErr)
			open, finished := journalsIn(raw)
			c.changes = append(c.changes, fmt.Sprintf("as the cut left it: open journals %v, finished %v; changes from before:", open, finished))
			c.changes = append(c.changes, digestChanges(c.before.digest, raw, 25)...)
			c.changes = append(c.changes, "after recovery, changes from before:")
			c.changes = append(c.changes, digestChanges(c.before.digest, after, 25)...)
			return nil
		})
	})
	c.conclude(n, e, state, fingerprint, problems, err, func() []string { return c.nextBootJournal(master) })
	return state
}

// plSysroot is where the run in the VM had the tree, and where the host
// mounts each replayed copy.
const plSysroot = "/sysroot"

// needSysroot makes plSysroot an empty directory for the test, removed
// again at its end when the test made it; one that is in use already (a
// mount point, or anything in it) skips the test.
func needSysroot(t *testing.T) {
	st, err := os.Stat(plSysroot)
	if os.IsNotExist(err) {
		if err := os.Mkdir(plSysroot, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(plSysroot) })
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(plSysroot)
	parent, perr := os.Stat("/")
	if err != nil || perr != nil || !st.IsDir() || len(ents) > 0 || st.Sys().(*syscall.Stat_t).Dev != parent.Sys().(*syscall.Stat_t).Dev {
		t.Skipf("the journal backend's replay mounts each copy on %s, where the run had it, and this host's %s is in use (%v, %v)", plSysroot, plSysroot, err, perr)
	}
}

// onCopy puts a fresh copy of master, named name in the scratch
// directory, on a loop device for the length of f, which mounts it on
// plSysroot.
func (c *plChecker) onCopy(master, name string, f func(dev, top string) error) error {
	img := filepath.Join(c.shm, name)
	if err := copySparse(master, img); err != nil {
		c.t.Fatal(err)
	}
	defer os.Remove(img)
	dev, detach, err := plAttach(img, c.l.part)
	if err != nil {
		c.t.Fatal(err)
	}
	defer func() {
		if err := detach(); err != nil {
			c.t.Error(err)
		}
	}()
	return f(dev, plSysroot)
}

// nextBootJournal runs provision on a copy of the disk as the cut left it,
// as the next boot would (it recovers first), and checks that it ends with
// the complete new tree and no journal.
func (c *plChecker) nextBootJournal(master string) []string {
	var problems []string
	var out []byte
	err := c.onCopy(master, "next.img", func(dev, top string) error {
		return plMountedAs(dev, "ext4", top, "rw", func() error {
			cmd := exec.Command(c.binary, "run", "--root", top, "--source", c.seed, "--report", filepath.Join(c.shm, "report.json"))
			// Its own mount namespace, like a boot: what it mounts dies with it.
			cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
			var runErr error
			out, runErr = cmd.CombinedOutput()
			if runErr != nil {
				problems = append(problems, fmt.Sprintf("the next boot's run fails (%v)", runErr))
			}
			d, err := plTreeDigestExt4(top)
			if err != nil {
				return err
			}
			for p := range d {
				if strings.HasPrefix(p, snapshot.JournalDirName) {
					problems = append(problems, "after the next boot's run "+p+" is left over")
					break
				}
			}
			problems = append(problems, newTreeProblems(top, c.scripts)...)
			return nil
		})
	})
	return nextBootVerdict(problems, err, out)
}

// report files point n's problems as a violation: one of a kind (the same
// first problem) is shown in full, the others name the first point that
// showed it.
func (c *plChecker) report(n int, e LogEntry, state string, problems []string) {
	if len(problems) == 0 {
		return
	}
	c.violations++
	kind := plVolatile.ReplaceAllString(problems[0], "*")
	if first, seen := c.kinds[kind]; seen {
		c.t.Errorf("%s: flush point %d (%v), state %q: as at flush point %d: %s", c.l.name, n, e, state, first, strings.TrimSpace(problems[0]))
		return
	}
	c.kinds[kind] = n
	c.t.Errorf("%s: flush point %d (%v), state %q: power lost here leaves:\n  %s\n  on the disk, against the disk before the boot:\n    %s",
		c.l.name, n, e, state, strings.Join(problems, "\n  "), strings.Join(c.changes, "\n    "))
}

// plVolatile are the parts of a problem that differ between points of one
// kind: scratch names and transaction ids.
var plVolatile = regexp.MustCompile(`provision-top-\d+|\d{8}T\d{6}Z-\d+`)
