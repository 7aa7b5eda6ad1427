package provision

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"

	udiff "github.com/aymanbagabas/go-udiff"
	"golang.org/x/sys/unix"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/provision/config"
)

// diffFileLimit bounds the content a diff shows of one file; larger files
// are summarised by size.
const diffFileLimit = 1 << 20

// fileState is a path as it is before or after the run.
type fileState struct {
	exists   bool
	mode     fs.FileMode
	uid, gid uint32
	target   string // symlink
	data     []byte // regular file, up to diffFileLimit
	size     int64
}

func readState(p string) fileState {
	fi, err := os.Lstat(p)
	if err != nil {
		return fileState{}
	}
	s := fileState{exists: true, mode: fi.Mode(), size: fi.Size()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.uid, s.gid = st.Uid, st.Gid
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		s.target, _ = os.Readlink(p)
	case fi.Mode().IsRegular() && fi.Size() <= diffFileLimit:
		s.data, _ = os.ReadFile(p)
	}
	return s
}

// beforeJournal records each path as it was before the first change the
// run makes to it: rootfs calls Preserve before every write, rename and
// removal, as it does for the undo journal.
type beforeJournal struct {
	mu     sync.Mutex
	before map[string]fileState
	order  []string
}

// Preserve implements rootfs.Journal.
func (j *beforeJournal) Preserve(host string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, ok := j.before[host]; !ok {
		j.before[host] = readState(host)
		j.order = append(j.order, host)
	}
	return nil
}

// planDiff applies the plan's file changes to a scratch view of the tree
// at dir and returns a unified diff of every file they change, then the
// full text of every script the run would execute. Steps that run
// programs (package managers) are not simulated. mask hides secrets.
// scratch says dir is a throwaway tree (the base tree) that may be changed
// in place; otherwise the steps go to an overlay of it, which needs root.
func planDiff(ctx context.Context, steps []modules.Step, cfg *config.Config, dir string, scratch bool, mask func(string) string) (string, error) {
	work := dir
	if !scratch {
		merged, release, err := overlayView(dir)
		if err != nil {
			return "", err
		}
		defer release()
		work = merged
	}
	root, err := rootfs.New(work)
	if err != nil {
		return "", err
	}
	j := &beforeJournal{before: map[string]fileState{}}
	root.Journal = j
	env := &modules.Env{Root: root, Console: io.Discard}
	var notes []string
	for _, s := range steps {
		if s.Apply == nil || s.Module == "scripts" {
			continue
		}
		if err := env.EndBatches(s.Batch); err != nil {
			notes = append(notes, fmt.Sprintf("# would fail: %v", err))
		}
		switch err := s.Apply(ctx, env); {
		case err == nil:
		case errors.Is(err, modules.ErrNoExecutor):
			notes = append(notes, fmt.Sprintf("# runs a program, not simulated: %s", s))
		default:
			notes = append(notes, fmt.Sprintf("# would fail: %s: %v", s, err))
		}
	}
	if err := env.EndBatches(""); err != nil {
		notes = append(notes, fmt.Sprintf("# would fail: %v", err))
	}
	var b strings.Builder
	paths := append([]string(nil), j.order...)
	sort.Strings(paths)
	changed := map[string]bool{}
	for _, host := range paths {
		changed[host] = true
	}
	for _, host := range paths {
		rel, err := filepath.Rel(work, host)
		if err != nil || strings.HasPrefix(rel, "..") {
			continue
		}
		p := "/" + filepath.ToSlash(rel)
		if orig := strings.TrimSuffix(host, "-"); orig != host && changed[orig] {
			// shadow-utils' backup of an account file: its content is
			// the file's old state, shown in that file's diff.
			fmt.Fprintf(&b, "# %s: the backup of the previous %s\n", p, strings.TrimSuffix(p, "-"))
			continue
		}
		writeFileDiff(&b, p, j.before[host], readState(host))
	}
	for _, n := range notes {
		b.WriteString(n + "\n")
	}
	writeScripts(&b, cfg)
	return mask(b.String()), nil
}

// writeFileDiff describes one path's change: a unified diff of a text
// file, or what changed of a symlink, directory, binary or large file.
func writeFileDiff(b *strings.Builder, p string, old, cur fileState) {
	meta := func(s fileState) string {
		return fmt.Sprintf("mode %s, owner %d:%d", rootfs.FormatMode(s.mode), s.uid, s.gid)
	}
	switch {
	case !old.exists && !cur.exists:
		return
	case old.exists && !cur.exists:
		fmt.Fprintf(b, "--- %s\n+++ /dev/null\n# removed\n", p)
		return
	case cur.mode&fs.ModeSymlink != 0:
		if old.exists && old.mode&fs.ModeSymlink != 0 && old.target == cur.target {
			return
		}
		fmt.Fprintf(b, "# symlink %s -> %s", p, cur.target)
		if old.exists {
			fmt.Fprintf(b, " (was %s)", describeState(old))
		}
		b.WriteString("\n")
		return
	case cur.mode.IsDir():
		if !old.exists {
			fmt.Fprintf(b, "# new directory %s (%s)\n", p, meta(cur))
		} else if meta(old) != meta(cur) {
			fmt.Fprintf(b, "# directory %s: %s, was %s\n", p, meta(cur), meta(old))
		}
		return
	case !cur.mode.IsRegular():
		fmt.Fprintf(b, "# %s: %s\n", p, cur.mode.Type())
		return
	}
	oldLabel := p
	if !old.exists {
		oldLabel = "/dev/null"
	}
	if old.exists && meta(old) != meta(cur) {
		fmt.Fprintf(b, "# %s: %s, was %s\n", p, meta(cur), meta(old))
	} else if !old.exists {
		fmt.Fprintf(b, "# new file %s (%s)\n", p, meta(cur))
	}
	switch {
	case cur.size > diffFileLimit || old.size > diffFileLimit:
		fmt.Fprintf(b, "# %s: %d bytes, was %d (too large to show)\n", p, cur.size, old.size)
	case isBinary(old.data) || isBinary(cur.data):
		if !bytes.Equal(old.data, cur.data) {
			fmt.Fprintf(b, "# binary file %s: %d bytes, was %d\n", p, cur.size, old.size)
		}
	default:
		b.WriteString(udiff.Unified(oldLabel, p, string(old.data), string(cur.data)))
	}
}

func describeState(s fileState) string {
	switch {
	case s.mode&fs.ModeSymlink != 0:
		return "a symlink to " + s.target
	case s.mode.IsDir():
		return "a directory"
	}
	return fmt.Sprintf("a file of %d bytes", s.size)
}

func isBinary(b []byte) bool { return bytes.IndexByte(b, 0) >= 0 }

// writeScripts prints every script the run would execute, whole.
func writeScripts(b *strings.Builder, cfg *config.Config) {
	for _, s := range cfg.Scripts {
		name := s.Name
		if name == "" {
			name = string(s.Kind)
		}
		fmt.Fprintf(b, "# script %s (%s) [%s]:\n", name, s.Kind, s.Origin)
		body := string(s.Body)
		if body == "" && len(s.Argv) > 0 {
			body = strings.Join(s.Argv, " ")
		}
		for _, l := range strings.Split(strings.TrimRight(body, "\n"), "\n") {
			b.WriteString("| " + l + "\n")
		}
	}
}

// errDiffNeedsRoot: a diff against a real tree applies the plan to an
// overlay of it, which only root can mount.
var errDiffNeedsRoot = errors.New("--diff against --root mounts an overlay of the tree to apply the plan to, which needs root (without --root the diff is against the built-in base tree)")

// overlayView mounts a writable overlay over dir (read-only lower layer)
// in a temporary directory and returns the merged view.
func overlayView(dir string) (string, func(), error) {
	if os.Geteuid() != 0 {
		return "", nil, errDiffNeedsRoot
	}
	tmp, err := os.MkdirTemp("", "provision-diff-")
	if err != nil {
		return "", nil, err
	}
	upper, work, merged := filepath.Join(tmp, "upper"), filepath.Join(tmp, "work"), filepath.Join(tmp, "merged")
	for _, d := range []string{upper, work, merged} {
		if err := os.Mkdir(d, 0o755); err != nil {
			os.RemoveAll(tmp)
			return "", nil, err
		}
	}
	opts := "lowerdir=" + dir + ",upperdir=" + upper + ",workdir=" + work
	if err := unix.Mount("overlay", merged, "overlay", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		os.RemoveAll(tmp)
		return "", nil, fmt.Errorf("mounting an overlay of %s for the diff: %w", dir, err)
	}
	return merged, func() {
		if err := unix.Unmount(merged, 0); err != nil {
			_ = unix.Unmount(merged, unix.MNT_DETACH)
		}
		os.RemoveAll(tmp)
	}, nil
}
