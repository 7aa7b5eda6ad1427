package e2e

// The power-loss replay of a btrfs run in which no program runs (the seed
// plUserData(false)): nothing is mounted for programs, /home and /root are
// snapshotted on their first write (the paths the plan names are kept
// first, with one flush), /var as in every run. The raw disk is not what
// the next boot sees: its run recovers first. Each point is therefore
// judged after recovery on a copy of the disk (the default subvolume
// mounted as the next boot mounts it; a journal's paths are rebased onto
// recovery's own top-level mount): the old root with every subvolume, /var
// included, as before the boot byte for byte and nothing left of the
// transaction, or the complete new root with the run's /var and home. The
// next boot's run goes over another copy, as the cut left it.

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/provision-dev/provision/provision/snapshot"
)

// checkRecovered is check for a layout whose run ran no program: recovery
// on one copy of the disk the cut at point n leaves, then the judge; the
// next boot's run on another copy.
func (c *plChecker) checkRecovered(n int, e LogEntry, master string) string {
	var problems []string
	state, fingerprint := "", ""
	c.changes = nil
	err := c.onCopy(master, "point.img", func(dev, _ string) error {
		top := filepath.Join(c.shm, "top")
		// Mounted read-write as the next boot mounts it: btrfs replays
		// its log tree.
		return plMounted(dev, top, "subvolid=5", func() error {
			in, raw, err := inspectTree(top)
			if err != nil {
				return err
			}
			fingerprint = in.Default.Path + " " + strings.Join(in.subvolumePaths(), ",") + " " + digestSum(raw)
			c.changes = append(c.changes, fmt.Sprintf("as the cut left it: default subvolume %s (id %d), subvolumes %v; changes from before:", in.Default.Path, in.Default.ID, in.subvolumePaths()))
			c.changes = append(c.changes, digestChanges(c.before.digest, raw, 25)...)

			// Recovery as the next boot's run begins with it: from the
			// default subvolume, which names the device.
			var log bytes.Buffer
			sysroot := filepath.Join(c.shm, "sysroot")
			recoverErr := plMounted(dev, sysroot, "rw", func() error {
				return snapshot.RecoverLogged(c.t.Context(), sysroot, &log)
			})
			if log.Len() > 0 {
				// It speaks only of what it could not undo.
				recoverErr = errors.Join(recoverErr, fmt.Errorf("recovery said:\n%s", log.String()))
			}
			after, d, err := inspectTree(top)
			if err != nil {
				return err
			}
			state, problems = c.judgeRecovered(top, after, raw, d, recoverErr)
			c.changes = append(c.changes, fmt.Sprintf("after recovery: default subvolume %s (id %d); changes from before:", after.Default.Path, after.Default.ID))
			c.changes = append(c.changes, digestChanges(c.before.digest, d, 25)...)
			return nil
		})
	})
	// The point's copy is detached by now: the next one has the same
	// fsid, which the kernel must not find twice.
	c.conclude(n, e, state, fingerprint, problems, err, func() []string {
		var ps []string
		err := c.onCopy(master, "next.img", func(dev, _ string) error {
			ps = c.nextBoot(dev, filepath.Join(c.shm, "top"))
			return nil
		})
		if err != nil {
			ps = append(ps, "the next boot: "+err.Error())
		}
		return ps
	})
	return state
}

// judgeRecovered judges the top level after recovery (after, in) from what
// the cut left (raw). Recovery must leave no transaction state and
// quarantine no journal. With the old root still the default, the whole
// top level must be as before the boot, /var included: whatever the run
// wrote there is undone. With a new snapper snapshot the default, judge's
// new root (with this seed: its /var and its user's home) must be there.
// The state says what recovery had to do: old and new (nothing),
// recovered-to-old (roll back a transaction that had not written /var),
// recovered-to-old-var-undone (undo the run's writes in /var from its
// journal), new-finished-by-recovery (finish a committed transaction).
func (c *plChecker) judgeRecovered(top string, in *Inspection, raw, after map[string]string, recoverErr error) (string, []string) {
	var problems []string
	if recoverErr != nil {
		problems = append(problems, "recovery fails: "+recoverErr.Error())
	}
	for _, name := range []string{snapshot.StateDirName, snapshot.QuarantineDirName} {
		if _, ok := after[name]; ok {
			left := subDigest(after, name)
			delete(left, ".")
			problems = append(problems, fmt.Sprintf("recovery leaves %s: %v", name, firstN(slices.Sorted(maps.Keys(left)), 10)))
		}
	}
	_, stateLeft := raw[snapshot.StateDirName]
	state, ps := c.judge(top, in, after)
	problems = append(problems, ps...)
	switch state {
	case "old":
		if diff := digestDiff(c.before.digest, after, 10); len(diff) > 0 {
			problems = append(problems, fmt.Sprintf("the old root is the default, but after recovery the top level is not as before the boot: %v", diff))
		}
		switch {
		case len(digestDiff(subDigest(c.before.digest, "@/var"), subDigest(raw, "@/var"), 1)) > 0:
			if !stateLeft {
				problems = append(problems, "the cut left /var changed with the old root the default and no transaction state to undo it")
			}
			return "recovered-to-old-var-undone", problems
		case stateLeft || len(digestDiff(c.before.digest, raw, 1)) > 0:
			return "recovered-to-old", problems
		}
		return "old", problems
	case "new":
		if stateLeft {
			return "new-finished-by-recovery", problems
		}
	}
	return state, problems
}
