// Package journal keeps the original of every path a transaction changes, so
// the change can be undone byte for byte (content, mode, owner, times,
// xattrs, symlink targets) after an abort or a crash. It is the transaction
// for trees that cannot be snapshotted (ext4, xfs, plain directories) and for
// the separately mounted subvolumes (/var, /home ...) next to a btrfs snapshot.
//
// On disk a journal is a directory holding "manifest" (one JSON entry a line,
// appended and fsynced before the caller makes its change) and "data/N"
// (copies of regular files). Its name decides its fate: a plain name is an
// open journal (recovery rolls it back); a name ending in ".committed" or
// ".done" is finished (recovery only deletes it). Renaming the directory is
// therefore the atomic commit point.
package journal

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/provision-dev/provision/modules/fault"
	"github.com/provision-dev/provision/modules/rootfs"
)

// Step names passed to Options.Hook, in the order they happen.
const (
	StepCreated         = "journal.created"
	StepDataCopied      = "journal.preserve.data-copied"
	StepRecorded        = "journal.preserve.recorded"
	StepCommitRenamed   = "journal.commit.renamed"
	StepCommitRemoved   = "journal.commit.removed"
	StepEntryRestored   = "journal.rollback.entry-restored"
	StepRestored        = "journal.rollback.restored"
	StepRollbackRenamed = "journal.rollback.renamed"
	StepRollbackRemoved = "journal.rollback.removed"
)

// Suffixes of finished journals.
const (
	SuffixCommitted = ".committed"
	SuffixDone      = ".done"
)

// Options tune a journal.
type Options struct {
	// Hook is called at every named step (crash tests kill the process there).
	Hook func(step string)
	// Skip reports paths that need no journal (they live in a snapshot that
	// is thrown away as a whole on abort).
	Skip func(hostPath string) bool
	// MapPath, when set, gives the path to record for a host path the
	// journal is asked to preserve (after Skip): the same file by a name
	// that recovery can find again (see RecoverRebased).
	MapPath func(hostPath string) string
	// Lazy defers making the journal on disk (a directory, a manifest and
	// three flushes) to its first record: a btrfs transaction whose writes
	// all land in its snapshot never needs one. Nothing is changed before
	// its record is durable either way.
	Lazy bool
	// Created, when set, is called when the journal is made on disk, its
	// directory and manifest there but not yet flushed: a file it writes
	// (and flushes) in dir is on disk with the journal, for no flush of
	// the directory of its own.
	Created func(dir string) error
	// CommittedElsewhere says the transaction's commit point is not the
	// journal's but one made before Commit (a btrfs default-subvolume
	// switch): Commit then finishes the journal without flushing. A
	// flushed rename would not wait for that commit point — btrfs makes an
	// fsync durable through its log tree, ahead of the filesystem
	// transaction that holds the switch — and a power loss between the two
	// would leave a committed journal, the writes kept, beside the old
	// root. Unflushed, the rename and the removal reach the disk in btrfs's
	// transaction order, never before the switch; lost, they leave an open
	// journal, which recovery discards once it finds the switch made.
	CommittedElsewhere bool
}

// Kinds of entries.
const (
	kindFile    = "file"
	kindSymlink = "symlink"
	kindDir     = "dir"
	kindAbsent  = "absent" // a tombstone: the path did not exist
	kindTimes   = "times"  // only the times of a parent directory
)

type entry struct {
	Seq    int               `json:"seq"`
	Path   string            `json:"path"`
	Kind   string            `json:"kind"`
	Mode   uint32            `json:"mode,omitempty"` // permission bits incl. setuid/setgid/sticky
	UID    int               `json:"uid"`
	GID    int               `json:"gid"`
	Atime  int64             `json:"atime,omitempty"` // ns since the epoch
	Mtime  int64             `json:"mtime,omitempty"`
	Target string            `json:"target,omitempty"`
	Xattrs map[string][]byte `json:"xattrs,omitempty"`
	// Inline: the original's bytes are Data, in the record itself (a
	// small file), not a copy in data/SEQ: one flush keeps both.
	Inline bool   `json:"inline,omitempty"`
	Data   []byte `json:"data,omitempty"`
}

// maxInline is the largest original kept in its record rather than in a
// file of its own: account databases, configuration files, keys.
const maxInline = 64 << 10

// Journal records originals. It is safe for concurrent use.
type Journal struct {
	dir  string
	opts Options

	mu        sync.Mutex
	manifest  *os.File
	seq       int
	seenFull  map[string]bool
	seenTimes map[string]bool
	// absent are the paths recorded as not existing: a rollback removes
	// each with all it holds, so nothing below one needs a record.
	absent   map[string]bool
	closed   bool // no more Preserve
	finished bool // committed or rolled back
}

// Dir is the journal's directory.
func (j *Journal) Dir() string { return j.dir }

// Create starts a journal in dir, which must not exist yet; its parent is
// created when missing.
func Create(dir string, opts Options) (*Journal, error) {
	j := &Journal{dir: filepath.Clean(dir), opts: opts, seenFull: map[string]bool{}, seenTimes: map[string]bool{}, absent: map[string]bool{}}
	if opts.Lazy {
		if _, err := os.Lstat(j.dir); err == nil {
			return nil, fmt.Errorf("journal: %s: %w", j.dir, fs.ErrExist)
		}
		return j, nil
	}
	if err := j.create(); err != nil {
		return nil, err
	}
	return j, nil
}

// create makes the journal on disk, durably, before anything is recorded.
func (j *Journal) create() error {
	dir := j.dir
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o700); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	f, err := rootfs.OpenFile(filepath.Join(dir, "manifest"), unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if j.opts.Created != nil {
		if err := j.opts.Created(dir); err != nil {
			f.Close()
			return fmt.Errorf("journal: %w", err)
		}
	}
	// The empty manifest needs no flush of its own: flushing the
	// directory makes its entry and the new inode durable together, and
	// every record is flushed when appended.
	if err := syncDir(dir); err != nil {
		f.Close()
		return err
	}
	if err := syncDir(filepath.Dir(dir)); err != nil {
		f.Close()
		return err
	}
	j.manifest = f
	j.hook(StepCreated)
	return nil
}

func (j *Journal) hook(step string) {
	if j.opts.Hook != nil {
		j.opts.Hook(step)
	}
}

// Preserve records the current state of hostPath (and the times of its
// parent directory) before the caller changes it. Only the first call for a
// path records anything: the original is what must come back.
func (j *Journal) Preserve(hostPath string) error { return j.PreserveAll([]string{hostPath}) }

// PreserveAll is Preserve for several paths at once, made durable with one
// flush: a writer that knows the files it is about to replace (the
// account databases and their backups) pays one, not one each.
func (j *Journal) PreserveAll(hostPaths []string) error {
	var paths []string
	for _, hostPath := range hostPaths {
		if !filepath.IsAbs(hostPath) {
			return fmt.Errorf("journal: %s: path is not absolute", hostPath)
		}
		p := filepath.Clean(hostPath)
		if p == j.dir || strings.HasPrefix(p, j.dir+"/") {
			return fmt.Errorf("journal: %s: refusing to change the journal itself", p)
		}
		if j.opts.Skip != nil && j.opts.Skip(p) {
			continue
		}
		if j.opts.MapPath != nil {
			p = filepath.Clean(j.opts.MapPath(p))
		}
		paths = append(paths, p)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return errors.New("journal: already finished")
	}
	// Each path's parent's times and the path itself, all made durable
	// together.
	var batch []pending
	times := map[string]bool{}
	full := map[string]entry{}
	for _, p := range paths {
		if j.seenFull[p] || full[p].Path != "" || j.underAbsent(p) {
			continue
		}
		parent := filepath.Dir(p)
		if parent != p && !j.seenTimes[parent] && !times[parent] {
			times[parent] = true
			if e, err := statTimes(parent); err == nil {
				batch = append(batch, pending{entry: e})
			}
		}
		e, src, err := describe(p)
		if err != nil {
			return fmt.Errorf("journal: %w", err)
		}
		full[p] = e
		batch = append(batch, pending{entry: e, src: src})
	}
	if len(batch) == 0 {
		return nil
	}
	if err := j.record(batch...); err != nil {
		return err
	}
	for parent := range times {
		j.seenTimes[parent] = true
	}
	for p, e := range full {
		j.seenFull[p] = true
		// A full record of a directory restores its times after its
		// children.
		j.seenTimes[p] = true
		if e.Kind == kindAbsent {
			j.absent[p] = true
		}
	}
	return nil
}

// underAbsent reports whether an ancestor of p was recorded absent: the
// run made it, and a rollback removes it with everything below.
func (j *Journal) underAbsent(p string) bool {
	for d := filepath.Dir(p); len(j.absent) > 0; d = filepath.Dir(d) {
		if j.absent[d] {
			return true
		}
		if d == "/" || d == "." {
			return false
		}
	}
	return false
}

// pending is an entry to record and the file whose bytes it keeps.
type pending struct {
	entry entry
	src   string
}

// describe captures path's state; src is set for regular files (to copy).
func describe(p string) (entry, string, error) {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return entry{Path: p, Kind: kindAbsent}, "", nil
		}
		return entry{}, "", &os.PathError{Op: "lstat", Path: p, Err: err}
	}
	e := entry{
		Path:  p,
		Mode:  st.Mode & 0o7777,
		UID:   int(st.Uid),
		GID:   int(st.Gid),
		Atime: st.Atim.Nano(),
		Mtime: st.Mtim.Nano(),
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		e.Kind = kindFile
	case unix.S_IFLNK:
		e.Kind = kindSymlink
		t, err := os.Readlink(p)
		if err != nil {
			return entry{}, "", err
		}
		e.Target = t
		e.Mode = 0
	case unix.S_IFDIR:
		e.Kind = kindDir
	default:
		return entry{}, "", fmt.Errorf("%s: cannot keep a special file (mode %o)", p, st.Mode)
	}
	if e.Kind != kindSymlink {
		x, err := readXattrs(p)
		if err != nil {
			return entry{}, "", err
		}
		e.Xattrs = x
	}
	if e.Kind == kindFile {
		return e, p, nil
	}
	return e, "", nil
}

func statTimes(dir string) (entry, error) {
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return entry{}, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return entry{}, errors.New("not a directory")
	}
	return entry{Path: dir, Kind: kindTimes, Atime: st.Atim.Nano(), Mtime: st.Mtim.Nano()}, nil
}

// record appends entries to the manifest with one flush, each keeping
// its original's bytes (inline when small, else in data/SEQ, flushed
// first), so an entry is only there once everything it needs is on disk.
func (j *Journal) record(batch ...pending) error {
	if j.manifest == nil {
		if err := j.create(); err != nil {
			return err
		}
	}
	var lines []byte
	copied := false
	for _, b := range batch {
		e := b.entry
		j.seq++
		e.Seq = j.seq
		if b.src != "" {
			data, inline, err := readInline(b.src)
			if err != nil {
				return fmt.Errorf("journal: keep %s: %w", b.src, err)
			}
			if inline {
				e.Inline, e.Data = true, data
			} else {
				if err := copyFile(b.src, j.dataPath(e.Seq)); err != nil {
					return fmt.Errorf("journal: keep %s: %w", b.src, err)
				}
				copied = true
			}
		}
		lines = append(appendEntry(lines, &e), '\n')
	}
	if copied {
		if err := syncDir(filepath.Join(j.dir, "data")); err != nil {
			return err
		}
	}
	for _, b := range batch {
		if b.src != "" {
			j.hook(StepDataCopied)
		}
	}
	if err := fault.At(fault.PointJournalWrite); err != nil {
		return fmt.Errorf("journal: %w", &os.PathError{Op: "write", Path: j.manifest.Name(), Err: err})
	}
	if _, err := j.manifest.Write(lines); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if err := fault.At(fault.PointFsync); err != nil {
		return fmt.Errorf("journal: %w", &os.PathError{Op: "fsync", Path: j.manifest.Name(), Err: err})
	}
	if err := j.manifest.Sync(); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	for range batch {
		j.hook(StepRecorded)
	}
	return nil
}

// readInline reads src when it is small enough to keep in its record;
// inline is false (and nothing read) for a larger file.
func readInline(src string) (data []byte, inline bool, err error) {
	f, err := rootfs.OpenFile(src, unix.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, false, err
	}
	if st.Size() > maxInline {
		return nil, false, nil
	}
	data, err = io.ReadAll(io.LimitReader(f, maxInline+1))
	if err != nil {
		return nil, false, err
	}
	if len(data) > maxInline {
		return nil, false, nil // grew meanwhile
	}
	return data, true, nil
}

func (j *Journal) dataPath(seq int) string { return dataPath(j.dir, seq) }

func dataPath(dir string, seq int) string {
	return filepath.Join(dir, "data", strconv.Itoa(seq))
}

// copyFile copies a regular file's bytes; a reflink first (free on btrfs and
// xfs), a plain copy otherwise.
func copyFile(src, dst string) error {
	in, err := rootfs.OpenFile(src, unix.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := rootfs.OpenFile(dst, unix.O_CREAT|unix.O_TRUNC|unix.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if unix.IoctlFileClone(int(out.Fd()), int(in.Fd())) != nil {
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Commit finishes the journal keeping every change: the directory is renamed
// to its ".committed" name (the commit point), then deleted.
func (j *Journal) Commit() error {
	if err := j.close(); err != nil {
		return err
	}
	if j.manifest == nil {
		j.settle(true) // never made: nothing to keep or remove
		return nil
	}
	err := finish(j.dir, SuffixCommitted, j.hook, StepCommitRenamed, StepCommitRemoved, !j.opts.CommittedElsewhere)
	j.settle(err == nil || !exists(j.dir))
	return err
}

// Rollback restores every recorded path, newest first, then deletes the
// journal. After a failure it may be called again.
func (j *Journal) Rollback() error {
	if err := j.close(); err != nil {
		return err
	}
	if j.manifest == nil {
		j.settle(true)
		return nil
	}
	err := rollback(j.dir, j.hook)
	j.settle(err == nil)
	return err
}

// close stops Preserve; the manifest is closed once.
func (j *Journal) close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.finished {
		return errors.New("journal: already finished")
	}
	if !j.closed {
		j.closed = true
		if j.manifest == nil {
			return nil
		}
		return j.manifest.Close()
	}
	return nil
}

func (j *Journal) settle(finished bool) {
	j.mu.Lock()
	j.finished = finished
	j.mu.Unlock()
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func finish(dir, suffix string, hook func(string), renamed, removed string, flush bool) error {
	final := dir + suffix
	if err := os.Rename(dir, final); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if flush {
		if err := syncDir(filepath.Dir(dir)); err != nil {
			return err
		}
	}
	callHook(hook, renamed)
	// No flush after: a removal a crash undoes leaves a finished journal,
	// which the next recovery deletes (Recover).
	if err := os.RemoveAll(final); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	callHook(hook, removed)
	return nil
}

func callHook(hook func(string), step string) {
	if hook != nil {
		hook(step)
	}
}

// Recover finishes a journal left by a crashed run: an open one is rolled
// back (restoring is idempotent, so a rollback that was itself interrupted
// just runs again), a finished one is deleted.
func Recover(dir string, hook func(string)) error {
	dir = filepath.Clean(dir)
	if strings.HasSuffix(dir, SuffixCommitted) || strings.HasSuffix(dir, SuffixDone) {
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("journal: %w", err)
		}
		return syncDir(filepath.Dir(dir))
	}
	return rollback(dir, hook)
}

// RecoverWithin is Recover for a journal found inside the tree it
// changed (the journal backend's .provision-journal in the target): such a
// journal may have been planted, so before anything is restored every path
// of its manifest must lie inside root, with no symbolic link on the way
// to it (the journal records resolved host paths, so a legitimate one has
// none), and its data directory must be a real directory. Anything else
// refuses the whole journal, naming the path, with nothing touched.
func RecoverWithin(dir, root string, hook func(string)) error {
	dir = filepath.Clean(dir)
	if strings.HasSuffix(dir, SuffixCommitted) || strings.HasSuffix(dir, SuffixDone) {
		return Recover(dir, hook)
	}
	entries, err := readManifest(dir)
	if err != nil {
		return err
	}
	if err := checkWithin(dir, root, entries); err != nil {
		return err
	}
	return rollback(dir, hook)
}

// ErrRefused is wrapped by RecoverWithin's refusal of a journal that names
// a path outside the root it may restore into: nothing of it was restored.
var ErrRefused = errors.New("refusing the journal, nothing restored")

func checkWithin(dir, root string, entries []entry) error {
	root = filepath.Clean(root)
	if st, err := os.Lstat(filepath.Join(dir, "data")); err == nil && !st.IsDir() {
		return fmt.Errorf("journal: %s/data is not a directory: %w", dir, ErrRefused)
	}
	for _, e := range entries {
		if err := insideRoot(root, e.Path); err != nil {
			return fmt.Errorf("journal: %s/manifest: entry %d: %w: %w", dir, e.Seq, err, ErrRefused)
		}
	}
	return nil
}

// insideRoot checks that p is root or below it and that no directory between
// root and p is a symbolic link.
func insideRoot(root, p string) error {
	rel, err := filepath.Rel(root, p)
	if rel == "." {
		return nil // the root itself (its times)
	}
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") || filepath.IsAbs(rel) {
		return fmt.Errorf("path %q is outside the root %s", p, root)
	}
	cur := root
	parts := strings.Split(rel, "/")
	for _, c := range parts[:len(parts)-1] {
		cur = filepath.Join(cur, c)
		st, err := os.Lstat(cur)
		if errors.Is(err, fs.ErrNotExist) {
			return nil // nothing below exists to lead anywhere
		}
		if err != nil {
			return fmt.Errorf("path %q: %w", p, err)
		}
		if st.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("path %q leads through the symbolic link %s, outside the root's own tree", p, cur)
		}
	}
	return nil
}

// Discard deletes an open journal without restoring anything: used when the
// transaction it belongs to committed by other means (a btrfs default
// subvolume switch).
func Discard(dir string, hook func(string)) error {
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return finish(filepath.Clean(dir), SuffixCommitted, hook, StepCommitRenamed, StepCommitRemoved, true)
}

// RecoverAll recovers every journal directory directly inside parent whose
// name starts with prefix. A missing parent is not an error.
func RecoverAll(parent, prefix string, hook func(string)) error {
	ents, err := os.ReadDir(parent)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	var errs []error
	for _, e := range ents {
		if e.IsDir() && strings.HasPrefix(e.Name(), prefix) {
			if err := Recover(filepath.Join(parent, e.Name()), hook); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func rollback(dir string, hook func(string)) error {
	entries, err := readManifest(dir)
	if err != nil {
		return err
	}
	return rollbackEntries(dir, entries, hook)
}

// RecoverRebased is RecoverWithin for a journal whose paths were recorded
// below from, a mount that is now at to (a btrfs top level mounted anew):
// each path below from is restored below to instead, and every one must
// then lie inside to, or nothing is restored (ErrRefused). Entries that
// land in discard (the transaction's own snapshot, deleted whole next;
// "" for none) are not restored: it may be read-only already.
func RecoverRebased(dir, from, to, discard string, hook func(string)) error {
	dir = filepath.Clean(dir)
	if strings.HasSuffix(dir, SuffixCommitted) || strings.HasSuffix(dir, SuffixDone) {
		return Recover(dir, hook)
	}
	entries, err := readManifest(dir)
	if err != nil {
		return err
	}
	from, to = filepath.Clean(from), filepath.Clean(to)
	kept := entries[:0]
	for _, e := range entries {
		if rel, err := filepath.Rel(from, e.Path); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
			e.Path = filepath.Join(to, rel)
		}
		if discard != "" && (e.Path == discard || strings.HasPrefix(e.Path, filepath.Clean(discard)+"/")) {
			continue
		}
		kept = append(kept, e)
	}
	if err := checkWithin(dir, to, kept); err != nil {
		return err
	}
	return rollbackEntries(dir, kept, hook)
}

// rollbackEntries restores entries, newest first, then deletes the journal.
func rollbackEntries(dir string, entries []entry, hook func(string)) error {
	var errs []error
	for i := len(entries) - 1; i >= 0; i-- {
		err := fault.At(fault.PointJournalRestore)
		if err == nil {
			err = restore(dir, entries[i])
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("journal: restore %s: %w", entries[i].Path, err))
			continue
		}
		callHook(hook, StepEntryRestored)
	}
	if err := errors.Join(errs...); err != nil {
		// Keep the journal: a later recovery can try again.
		return err
	}
	callHook(hook, StepRestored)
	return finish(dir, SuffixDone, hook, StepRollbackRenamed, StepRollbackRemoved, true)
}

// maxManifest bounds the manifest we are willing to read back.
const maxManifest = 256 << 20

// readManifest reads the entries; a torn last line (a crash while appending)
// is dropped: the change it announced was never made.
func readManifest(dir string) ([]entry, error) {
	f, err := os.Open(filepath.Join(dir, "manifest"))
	if errors.Is(err, fs.ErrNotExist) {
		// Crashed inside Create: nothing was changed yet.
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	defer f.Close()
	return parseManifest(io.LimitReader(f, maxManifest), dir)
}

func parseManifest(r io.Reader, dir string) ([]entry, error) {
	var out []entry
	br := bufio.NewReader(r)
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if err == io.EOF {
			// No newline: torn write, never acknowledged.
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("journal: %s/manifest:%d: %w", dir, n, err)
		}
		var e entry
		if err := json.Unmarshal(line, &e); err != nil {
			return nil, fmt.Errorf("journal: %s/manifest:%d: %w", dir, n, err)
		}
		if err := e.check(); err != nil {
			return nil, fmt.Errorf("journal: %s/manifest:%d: %w", dir, n, err)
		}
		out = append(out, e)
	}
}

func (e entry) check() error {
	if !filepath.IsAbs(e.Path) || filepath.Clean(e.Path) != e.Path || strings.ContainsRune(e.Path, 0) {
		return fmt.Errorf("bad path %q", e.Path)
	}
	switch e.Kind {
	case kindFile, kindSymlink, kindDir, kindAbsent, kindTimes:
	default:
		return fmt.Errorf("unknown kind %q", e.Kind)
	}
	if e.Seq <= 0 || e.Mode > 0o7777 {
		return fmt.Errorf("bad entry %d", e.Seq)
	}
	// Bytes kept inline belong to a file, and only there.
	if (e.Inline && e.Kind != kindFile) || (!e.Inline && len(e.Data) > 0) || len(e.Data) > maxInline {
		return fmt.Errorf("bad inline data in entry %d", e.Seq)
	}
	return nil
}

func restore(dir string, e entry) error {
	switch e.Kind {
	case kindAbsent:
		return removeAll(e.Path)
	case kindTimes:
		var st unix.Stat_t
		if err := unix.Lstat(e.Path, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return nil // gone or replaced: a later (older) entry deals with it
		}
		return setTimes(e.Path, e)
	case kindDir:
		var st unix.Stat_t
		err := unix.Lstat(e.Path, &st)
		if err == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
			if err := removeAll(e.Path); err != nil {
				return err
			}
			err = unix.ENOENT
		}
		if err != nil {
			if err := os.Mkdir(e.Path, 0o700); err != nil {
				return err
			}
		}
		if err := os.Lchown(e.Path, e.UID, e.GID); err != nil {
			return err
		}
		if err := unix.Chmod(e.Path, e.Mode); err != nil {
			return err
		}
		if err := writeXattrs(e.Path, e.Xattrs); err != nil {
			return err
		}
		return setTimes(e.Path, e)
	case kindSymlink:
		tmp := tempName(e.Path)
		os.Remove(tmp)
		if err := os.Symlink(e.Target, tmp); err != nil {
			return err
		}
		if err := os.Lchown(tmp, e.UID, e.GID); err != nil {
			os.Remove(tmp)
			return err
		}
		if err := replace(tmp, e.Path); err != nil {
			return err
		}
		return setTimes(e.Path, e)
	case kindFile:
		tmp := tempName(e.Path)
		if err := restoreFile(dataPath(dir, e.Seq), tmp, e); err != nil {
			os.Remove(tmp)
			return err
		}
		if err := replace(tmp, e.Path); err != nil {
			return err
		}
		return setTimes(e.Path, e)
	}
	return fmt.Errorf("unknown kind %q", e.Kind)
}

func tempName(p string) string {
	return filepath.Join(filepath.Dir(p), "."+filepath.Base(p)+".provision-restore")
}

func restoreFile(data, tmp string, e entry) error {
	os.Remove(tmp)
	if e.Inline {
		if err := WriteNew(tmp, e.Data); err != nil {
			return err
		}
	} else if err := copyFile(data, tmp); err != nil {
		return err
	}
	if err := os.Lchown(tmp, e.UID, e.GID); err != nil {
		return err
	}
	// After chown: chown clears setuid and setgid.
	if err := unix.Chmod(tmp, e.Mode); err != nil {
		return err
	}
	return writeXattrs(tmp, e.Xattrs)
}

// replace renames tmp over p; something that is in the way and is a
// directory was created by the transaction and goes.
func replace(tmp, p string) error {
	if st, err := os.Lstat(p); err == nil && st.IsDir() {
		if err := os.RemoveAll(p); err != nil {
			os.Remove(tmp)
			return err
		}
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(p))
}

func removeAll(p string) error {
	if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err := os.RemoveAll(p); err != nil {
		return err
	}
	return syncDir(filepath.Dir(p))
}

func setTimes(p string, e entry) error {
	ts := []unix.Timespec{unix.NsecToTimespec(e.Atime), unix.NsecToTimespec(e.Mtime)}
	return unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
}

func syncDir(dir string) error {
	d, err := rootfs.OpenFile(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("journal: fsync %s: %w", dir, err)
	}
	return nil
}

func readXattrs(p string) (map[string][]byte, error) {
	size, err := unix.Llistxattr(p, nil)
	if err != nil {
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		return nil, &os.PathError{Op: "listxattr", Path: p, Err: err}
	}
	if size == 0 {
		return nil, nil
	}
	buf := make([]byte, size)
	size, err = unix.Llistxattr(p, buf)
	if err != nil {
		return nil, &os.PathError{Op: "listxattr", Path: p, Err: err}
	}
	out := map[string][]byte{}
	for _, name := range strings.Split(strings.TrimRight(string(buf[:size]), "\x00"), "\x00") {
		if name == "" {
			continue
		}
		n, err := unix.Lgetxattr(p, name, nil)
		if err != nil {
			continue // vanished in between or not readable: nothing to keep
		}
		v := make([]byte, n)
		n, err = unix.Lgetxattr(p, name, v)
		if err != nil {
			continue
		}
		out[name] = v[:n]
	}
	return out, nil
}

func writeXattrs(p string, x map[string][]byte) error {
	for name, v := range x {
		if err := unix.Lsetxattr(p, name, v, 0); err != nil {
			return &os.PathError{Op: "setxattr " + name, Path: p, Err: err}
		}
	}
	return nil
}

// WriteNew creates p (0600, which must not exist) with data, flushed;
// its directory entry is the caller's to flush. A restore writes an
// original kept inline with it, as copyFile does one kept in a file.
func WriteNew(p string, data []byte) error {
	f, err := rootfs.OpenFile(p, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
