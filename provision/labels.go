package provision

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/provision/config"
	"github.com/provision-dev/provision/provision/report"
	"github.com/provision-dev/provision/provision/selinux"
)

// SELinux (SPEC: MicroOS, Leap/SLE Micro ≥ 5.4 and SL Micro run
// enforcing). The initrd has no policy loaded, so what the run writes gets
// no label and would be unlabeled_t after the switch: sshd could not read an
// authorized_keys, login an /etc/shadow. So every path the run created or
// replaced through the modules gets the label the target's own policy
// assigns (file_contexts with .local, .homedirs, .subs), written as the
// security.selinux xattr before the commit.
//
// Programs the run executes (scripts, package managers) write files the
// agent does not know. Decision: where the target has openSUSE's relabel
// machinery (the 98selinux-microos dracut module, or /etc/selinux/.relabelled
// left by it), mark /etc/selinux/.autorelabel as Combustion does, and the
// same boot relabels before the switch to the root; elsewhere label every
// path of the tree (and its mounted /var, /home...) changed since the run
// began, which covers exactly what the programs wrote.

// pathRecorder sits in front of the transaction's journal: every path a
// module changes passes through Preserve before it changes.
type pathRecorder struct {
	next  rootfs.Journal
	mu    sync.Mutex
	seen  map[string]bool
	paths []string
}

func newPathRecorder(next rootfs.Journal) *pathRecorder {
	return &pathRecorder{next: next, seen: map[string]bool{}}
}

// PreserveAll implements rootfs.BatchJournal: the paths are recorded as
// Preserve records them, when they are written.
func (r *pathRecorder) PreserveAll(hosts []string) error {
	if bj, ok := r.next.(rootfs.BatchJournal); ok {
		return bj.PreserveAll(hosts)
	}
	return nil
}

// Preserve implements rootfs.Journal.
func (r *pathRecorder) Preserve(host string) error {
	r.mu.Lock()
	if !r.seen[host] {
		r.seen[host] = true
		r.paths = append(r.paths, host)
	}
	r.mu.Unlock()
	if r.next == nil {
		return nil
	}
	return r.next.Preserve(host)
}

// Paths returns the host paths recorded so far, in the order first seen.
func (r *pathRecorder) Paths() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.paths...)
}

// relabelModule is openSUSE's initrd relabel (microos-tools).
const relabelModule = "/usr/lib/dracut/modules.d/98selinux-microos"

// hasRelabelMachinery reports whether the booted target relabels itself in
// the initrd when /etc/selinux/.autorelabel exists.
func hasRelabelMachinery(root *rootfs.Root) bool {
	return root.Exists(relabelModule) || root.Exists("/etc/selinux/.relabelled")
}

// labelRun labels what the run wrote into the tree at root (mounted as the
// booted system mounts it). programsRan says scripts or packages ran since
// start. It returns how many paths were labelled.
func labelRun(root *rootfs.Root, rec *pathRecorder, programsRan bool, start time.Time, rep *report.Report, console io.Writer) (*runLabels, error) {
	pol, err := selinux.Load(root.Dir)
	if err != nil {
		return nil, fmt.Errorf("reading the target's SELinux policy: %w", err)
	}
	if pol == nil {
		return nil, nil // no policy: no labels, no cost
	}
	rs := rep.BeginStep("selinux", "label", "/", fmt.Sprintf("policy %s (%s)", pol.Type, pol.Mode), "target policy")
	// Users whose homes lie outside the roots the policy's .homedirs
	// covers get the rules genhomedircon would make for them, in the
	// target's .homedirs too, so the booted system's restorecon agrees.
	if err := addHomeRoots(pol, root); err != nil {
		rep.EndStep(rs, err, false)
		return nil, err
	}
	n, err := labelWith(pol, root, rec, programsRan, start, console)
	rep.EndStep(rs, err, false)
	if err != nil {
		return nil, err
	}
	rec.mu.Lock()
	done := len(rec.paths)
	rec.mu.Unlock()
	return &runLabels{pol: pol, done: done, count: n}, nil
}

// runLabels is the labelling state of a run: the policy and how many of
// the recorded paths were labelled.
type runLabels struct {
	pol   *selinux.Policy
	done  int
	count int
}

// addHomeRoots adds the file contexts of new home roots (from the
// target's passwd as the run left it) to pol and the target's
// file_contexts.homedirs.
func addHomeRoots(pol *selinux.Policy, root *rootfs.Root) error {
	lines, err := pol.AddHomeRoots(root.Dir)
	if err != nil {
		return fmt.Errorf("home directory contexts: %w", err)
	}
	if len(lines) == 0 {
		return nil
	}
	p := "/etc/selinux/" + pol.Type + "/contexts/files/file_contexts.homedirs"
	if err := root.AppendFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644, rootfs.RootOwner); err != nil {
		return fmt.Errorf("home directory contexts: %w", err)
	}
	return nil
}

// labelSnapperFiles labels the new snapshot's snapper directory and
// info.xml, which live outside the tree (in /.snapshots as the booted
// system mounts it).
func labelSnapperFiles(l *runLabels, txn Txn) error {
	s, ok := txn.(interface {
		LabelSnapperFiles(label func(host, target string) error) error
	})
	if l == nil || !ok {
		return nil
	}
	return s.LabelSnapperFiles(l.pol.Label)
}

// labelMore labels what was recorded since labelRun (the report's copy).
func labelMore(l *runLabels, root *rootfs.Root, rec *pathRecorder) error {
	if l == nil {
		return nil
	}
	rec.mu.Lock()
	more := append([]string(nil), rec.paths[l.done:]...)
	rec.mu.Unlock()
	for _, p := range more {
		if _, err := os.Lstat(p); err != nil {
			continue
		}
		rel, err := filepath.Rel(root.Dir, p)
		if err != nil || strings.HasPrefix(rel, "..") {
			continue
		}
		if err := l.pol.Label(p, path.Clean("/"+filepath.ToSlash(rel))); err != nil {
			return err
		}
	}
	return nil
}

func labelWith(pol *selinux.Policy, root *rootfs.Root, rec *pathRecorder, programsRan bool, start time.Time, console io.Writer) (int, error) {
	relabel := programsRan && hasRelabelMachinery(root)
	if relabel {
		// Combustion's way: the snapshot was touched while no policy
		// was active, the initrd's relabel runs before the switch.
		if err := root.WriteFile("/etc/selinux/.autorelabel", nil, 0o644, rootfs.RootOwner); err != nil {
			return 0, fmt.Errorf("marking /etc/selinux/.autorelabel: %w", err)
		}
	}
	rec.mu.Lock()
	paths := append([]string(nil), rec.paths...)
	rec.mu.Unlock()
	if programsRan && !relabel {
		changed, err := changedSince(root.Dir, start)
		if err != nil {
			return 0, err
		}
		paths = append(paths, changed...)
	}
	sort.Strings(paths)
	n := 0
	for i, p := range paths {
		if i > 0 && paths[i-1] == p {
			continue
		}
		rel, err := filepath.Rel(root.Dir, p)
		if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			continue
		}
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			continue // removed by the run
		}
		// Clean: the root itself is "/", which the policy labels
		// root_t, where "/." would match nothing but the default.
		if err := pol.Label(p, path.Clean("/"+filepath.ToSlash(rel))); err != nil {
			return n, err
		}
		n++
	}
	how := ""
	if relabel {
		how = "; what programs wrote is relabelled by the target's initrd (/etc/selinux/.autorelabel)"
	}
	fmt.Fprintf(console, "[ OK ] selinux: %d path(s) labelled for policy %s (%s)%s\n", n, pol.Type, pol.Mode, how)
	return n, nil
}

// overlayLayers holds the layers of an overlay /etc (transactional-update 4).
const overlayLayers = "var/lib/overlay"

// apiMounts are the chroot's own filesystems, never part of the target.
var apiMounts = map[string]bool{"proc": true, "sys": true, "dev": true, "run": true, "tmp": true, ".snapshots": true}

// changedSince lists every path below dir whose inode changed at or after
// start (created, written, chowned, renamed into place), crossing into the
// target's mounted /var, /home... but not the API filesystems.
func changedSince(dir string, start time.Time) ([]string, error) {
	var out []string
	since := start.Add(-time.Second) // ctime granularity of some filesystems
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if p != dir && d.IsDir() && filepath.Dir(p) == dir && apiMounts[d.Name()] {
			return filepath.SkipDir
		}
		if d.IsDir() && p == filepath.Join(dir, overlayLayers) {
			// An overlay /etc's layers: their files are /etc's files,
			// labelled by their /etc paths (as openSUSE's relabel
			// leaves the layers out and relabels /etc itself).
			return filepath.SkipDir
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			return nil
		}
		if time.Unix(st.Ctim.Unix()).After(since) {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("finding what the programs changed: %w", err)
	}
	return out, nil
}

// describeLabels says, for a dry run, which policy the target has and how
// many of the paths the plan names will be labelled.
func describeLabels(root string, cfg *config.Config, steps []modules.Step) string {
	pol, err := selinux.Load(root)
	switch {
	case err != nil:
		return "selinux: " + err.Error()
	case pol == nil:
		return "selinux: not enabled in the target (no labels written)"
	}
	paths := map[string]bool{}
	for _, s := range steps {
		if strings.HasPrefix(s.Target, "/") {
			paths[s.Target] = true
		}
	}
	line := fmt.Sprintf("selinux: policy %s (%s, %s): the %d path(s) the plan writes, and the directories it creates, get its labels", pol.Type, pol.Mode, pol.FileContexts, len(paths))
	if needsChroot(cfg) {
		if r, err := rootfs.New(root); err == nil && hasRelabelMachinery(r) {
			line += "; scripts and packages run, so /etc/selinux/.autorelabel is set for the initrd's relabel"
		} else {
			line += "; scripts and packages run, so every path they change is labelled too"
		}
	}
	return line
}
