package blockdev

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/diskfs/go-diskfs/backend"
	"github.com/diskfs/go-diskfs/filesystem/iso9660"
)

// Medium is an opened filesystem, read-only. It is an fs.FS (names are
// slash-separated and relative, "." is the root) whose reads are bounded:
// files larger than the size cap, deep or huge directory trees and readers
// that panic on corrupt metadata all end in errors.
// ErrJolietDepth: go-diskfs reads Joliet-only ISOs (no Rock Ridge) one
// directory level deep and no further; see isofix.go.
var ErrJolietDepth = errors.New("cannot read below the first directory level of a Joliet ISO without Rock Ridge (make it with -r too)")

type Medium struct {
	Volume
	fsys   fs.FS        // a kernel mount
	direct directReader // or a FAT or ISO read from the bytes
	st     *rangeStorage
	dirs   map[string]*listing // direct: every directory listed so far
	// dirReads counts directories read from the bytes, for the tests that
	// hold reading to once per directory.
	dirReads int
	// ctx is the context the medium was opened with: listing and reading
	// stop with its error once it is done (SIGTERM during a medium of
	// thousands of files), checked before every directory and file read
	// and every entry of a walk.
	ctx context.Context
	// onRead, when set (tests), is called before each file is read.
	onRead  func()
	maxSize int64
	closers []func() error
}

// listing is one directory of a direct medium, read once: its entries
// sorted by name, and an index by name (by folded name too on FAT, whose
// names compare without case).
type listing struct {
	entries []fs.DirEntry
	byName  map[string]fs.DirEntry
}

var (
	_ fs.ReadFileFS = (*Medium)(nil)
	_ fs.ReadDirFS  = (*Medium)(nil)
	_ fs.StatFS     = (*Medium)(nil)
)

// Open reads the filesystem of v: FAT and ISO9660 directly from the bytes,
// other filesystems through the Mounter (the kernel by default).
func (e Env) Open(ctx context.Context, v Volume) (m *Medium, err error) {
	m = &Medium{Volume: v, maxSize: e.maxFileSize(), ctx: ctx}
	switch v.Type {
	case TypeVFAT, TypeISO9660:
		var f *os.File
		f, err = os.Open(v.File) // read-only: nothing here may write to a seed
		if err == nil {
			m.closers = append(m.closers, f.Close)
			err = m.openDirect(f)
		}
	case TypeExt2, TypeExt3, TypeExt4, TypeBtrfs, TypeXFS:
		mounter := e.Mounter
		if mounter == nil {
			mounter = KernelMounter{}
		}
		var dir string
		var unmount func() error
		dir, unmount, err = mounter.Mount(ctx, v)
		if err == nil {
			m.closers = append(m.closers, unmount)
			var root *os.Root
			root, err = os.OpenRoot(dir)
			if err == nil {
				// os.Root keeps symlinks on the medium from reaching outside it.
				m.closers = append([]func() error{root.Close}, m.closers...)
				m.fsys = root.FS()
			}
		}
	default:
		err = fmt.Errorf("filesystem type %q is not supported", v.Type)
	}
	if err != nil {
		_ = m.Close()
		return nil, fmt.Errorf("%s (%s %q): %w", v.Name, v.Type, v.Label, err)
	}
	return m, nil
}

// OpenImage scans an image file (or block device) and opens its first
// filesystem; for images with several, use ScanImage and Env.Open.
func (e Env) OpenImage(ctx context.Context, path string) (*Medium, error) {
	vols, err := ScanImage(path)
	if err != nil {
		return nil, err
	}
	return e.Open(ctx, vols[0])
}

func (m *Medium) openDirect(r io.ReaderAt) (err error) {
	st := &rangeStorage{r: r, off: m.Offset, size: m.Size, path: m.File}
	m.st, m.dirs = st, map[string]*listing{}
	defer recoverCorrupt("read filesystem", &err)
	switch m.Type {
	case TypeISO9660:
		st.patches, err = isoPathTableFixes(st, m.Size)
		if err != nil {
			return err
		}
		// The ISO block size is the PVD's (2048), never the device's 512.
		fs, err := iso9660.Read(st, m.Size, 0, int64(m.ISOBlockSize))
		if err != nil {
			return err
		}
		m.direct = &isoReader{st: st, fs: fs, bs: int64(m.ISOBlockSize)}
	case TypeVFAT:
		bs := make([]byte, 512)
		if !readAt(st, m.Size, 0, bs) {
			return errors.New("cannot read FAT boot sector")
		}
		g, ok := parseFATBootSector(bs, m.Size)
		if !ok {
			return errors.New("FAT boot sector is not valid")
		}
		t, err := readFATTable(st, m.Size, g)
		if err != nil {
			return err
		}
		if err := checkFATChains(t); err != nil {
			return err
		}
		m.direct = &fatReader{st: st, g: g, fat: t}
	}
	return nil
}

// recoverCorrupt turns a panic inside go-diskfs (it indexes slices with
// lengths read from the medium) into an error.
func recoverCorrupt(op string, err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%s: corrupt filesystem (reader failed: %v)", op, r)
	}
}

// alive is nil while the medium's context is not done, and the
// context's error once it is.
func (m *Medium) alive(op, name string) error {
	if m.ctx == nil {
		return nil
	}
	if err := m.ctx.Err(); err != nil {
		return &fs.PathError{Op: op, Path: name, Err: err}
	}
	return nil
}

// Close releases the medium (closes the device, unmounts a kernel mount).
func (m *Medium) Close() error {
	var errs []error
	for _, c := range m.closers {
		errs = append(errs, c())
	}
	m.closers = nil
	return errors.Join(errs...)
}

// String names the medium for messages: "/dev/vdb (vfat \"cidata\")".
func (m *Medium) String() string {
	return fmt.Sprintf("%s (%s %q)", m.Name, m.Type, m.Label)
}

func cleanName(op, name string) (string, error) {
	name = strings.TrimPrefix(name, "/")
	if name == "" {
		name = "."
	}
	if !fs.ValidPath(name) {
		return "", &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	return name, nil
}

// Open implements fs.FS.
func (m *Medium) Open(name string) (f fs.File, err error) {
	name, err = cleanName("open", name)
	if err != nil {
		return nil, err
	}
	defer recoverCorrupt("open "+name, &err)
	if m.direct != nil {
		return m.openFromBytes(name)
	}
	f, err = m.fsys.Open(name)
	if err != nil {
		return nil, m.notExist("open", name, err)
	}
	return &guardedFile{File: f, name: name}, nil
}

// notExist keeps fs.ErrNotExist visible whatever the reader's error text,
// so callers can tell "absent" from "broken".
func (m *Medium) notExist(op, name string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return err
	}
	msg := err.Error()
	if strings.Contains(msg, "Joliet directory") {
		return &fs.PathError{Op: op, Path: name, Err: ErrJolietDepth}
	}
	if strings.Contains(msg, "does not exist") || strings.Contains(msg, "not found") || strings.Contains(msg, "could not find") {
		return &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
	}
	return &fs.PathError{Op: op, Path: name, Err: err}
}

// Stat implements fs.StatFS.
func (m *Medium) Stat(name string) (fi fs.FileInfo, err error) {
	name, err = cleanName("stat", name)
	if err != nil {
		return nil, err
	}
	defer recoverCorrupt("stat "+name, &err)
	if name == "." {
		return rootInfo{}, nil
	}
	if m.direct != nil {
		return m.lookup(name)
	}
	// Look the name up in its parent listing: go-diskfs's Stat differs per
	// filesystem, a listing does not.
	entries, err := m.ReadDir(path.Dir(name))
	if err != nil {
		return nil, err
	}
	base := path.Base(name)
	for _, e := range entries {
		if e.Name() == base || (m.Type == TypeVFAT && strings.EqualFold(e.Name(), base)) {
			return e.Info()
		}
	}
	return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
}

// ReadDir implements fs.ReadDirFS: entries sorted by name, without "." and "..".
func (m *Medium) ReadDir(name string) (entries []fs.DirEntry, err error) {
	name, err = cleanName("readdir", name)
	if err != nil {
		return nil, err
	}
	defer recoverCorrupt("read directory "+name, &err)
	if err := m.alive("readdir", name); err != nil {
		return nil, err
	}
	if m.direct != nil {
		l, err := m.list(name)
		if err != nil {
			return nil, err
		}
		return slices.Clone(l.entries), nil
	}
	entries, err = fs.ReadDir(m.fsys, name)
	if err != nil {
		return nil, m.notExist("readdir", name, err)
	}
	return tidyEntries(entries), nil
}

// tidyEntries drops what is not a name of this directory and sorts the rest.
func tidyEntries(entries []fs.DirEntry) []fs.DirEntry {
	entries = slices.DeleteFunc(entries, func(e fs.DirEntry) bool {
		n := e.Name()
		return n == "" || n == "." || n == ".." || strings.Contains(n, "/")
	})
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	for i, e := range entries {
		entries[i] = typedEntry{e}
	}
	return entries
}

// ReadFile implements fs.ReadFileFS, refusing files over the size cap.
func (m *Medium) ReadFile(name string) (data []byte, err error) {
	fi, err := m.Stat(name)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		return nil, &fs.PathError{Op: "read", Path: name, Err: errors.New("is a directory")}
	}
	if fi.Size() > m.maxSize {
		return nil, &fs.PathError{Op: "read", Path: name, Err: fmt.Errorf("file is %d bytes, more than the %d-byte limit", fi.Size(), m.maxSize)}
	}
	if m.onRead != nil {
		m.onRead()
	}
	if err := m.alive("read", name); err != nil {
		return nil, err
	}
	// An empty FAT file has no cluster chain (start cluster 0), which
	// go-diskfs cannot open; there is nothing to read anyway.
	if fi.Size() == 0 {
		return []byte{}, nil
	}
	if m.direct != nil {
		return m.readDirect(name, fi)
	}
	f, err := m.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// Read exactly the recorded size, asking for all of it at once:
	// go-diskfs's FAT reader returns bytes past the end of the file when a
	// read starts partway into a cluster, which io.ReadAll's growing reads
	// do for any file over 512 bytes.
	data = make([]byte, fi.Size())
	n := 0
	for n < len(data) {
		k, err := f.Read(data[n:])
		n += k
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: name, Err: err}
		}
		if k == 0 {
			break
		}
	}
	if n != len(data) {
		return nil, &fs.PathError{Op: "read", Path: name, Err: fmt.Errorf("short read: %d of %d bytes", n, len(data))}
	}
	return data, nil
}

// Limits on Walk: a seed has a handful of files. A corrupt FAT or ISO can
// make a directory contain itself, which an unbounded walk never leaves.
//
// Directories have a limit of their own: go-diskfs finds an ISO 9660
// directory by reading every directory on its path from the root (Rock
// Ridge media cannot use the path table), so listing n sibling directories
// reads their parent n times — 2,000 took 15 s. 256 bound that to well
// under a second; a seed has a handful.
const (
	maxWalkDepth   = 16
	maxWalkEntries = 4096
	maxWalkDirs    = 256
)

// Walk calls fn for root and everything below it in lexical order, like
// fs.WalkDir, but stops with an error past 16 levels, 4096 entries or 256
// directories.
func (m *Medium) Walk(root string, fn fs.WalkDirFunc) error {
	root, err := cleanName("walk", root)
	if err != nil {
		return err
	}
	fi, err := m.Stat(root)
	if err != nil {
		return fn(root, nil, err)
	}
	seen, dirs := 0, 0
	var walk func(p string, d fs.DirEntry, depth int) error
	walk = func(p string, d fs.DirEntry, depth int) error {
		if err := m.alive("walk", p); err != nil {
			return err
		}
		if seen++; seen > maxWalkEntries {
			return fmt.Errorf("%s: more than %d entries below %s, giving up", m.Name, maxWalkEntries, root)
		}
		if depth > maxWalkDepth {
			return fmt.Errorf("%s: %s is nested more than %d levels deep", m.Name, p, maxWalkDepth)
		}
		if d.IsDir() {
			if dirs++; dirs > maxWalkDirs {
				return fmt.Errorf("%s: more than %d directories below %s, giving up", m.Name, maxWalkDirs, root)
			}
		}
		if err := fn(p, d, nil); err != nil || !d.IsDir() {
			if errors.Is(err, fs.SkipDir) && d.IsDir() {
				return nil
			}
			return err
		}
		entries, err := m.ReadDir(p)
		if err != nil {
			if err := fn(p, d, err); err != nil && !errors.Is(err, fs.SkipDir) {
				return err
			}
			return nil
		}
		for _, e := range entries {
			if err := walk(path.Join(p, e.Name()), e, depth+1); err != nil {
				if errors.Is(err, fs.SkipDir) {
					return nil
				}
				return err
			}
		}
		return nil
	}
	err = walk(root, typedEntry{fs.FileInfoToDirEntry(fi)}, 0)
	if errors.Is(err, fs.SkipDir) || errors.Is(err, fs.SkipAll) {
		return nil
	}
	return err
}

// typedEntry makes Type() agree with IsDir(): go-diskfs's FAT entries
// report directories with an empty type, which callers testing
// Type().IsRegular() would take for files.
type typedEntry struct{ fs.DirEntry }

func (e typedEntry) Type() fs.FileMode {
	t := e.DirEntry.Type()
	if e.IsDir() {
		t |= fs.ModeDir
	}
	return t
}

type rootInfo struct{}

func (rootInfo) Name() string           { return "." }
func (rootInfo) Size() int64            { return 0 }
func (rootInfo) Mode() fs.FileMode      { return fs.ModeDir | 0o555 }
func (rootInfo) ModTime() (t time.Time) { return t }
func (rootInfo) IsDir() bool            { return true }
func (rootInfo) Sys() any               { return nil }

// guardedFile turns panics in go-diskfs's Read into errors.
type guardedFile struct {
	fs.File
	name string
}

func (g *guardedFile) Read(b []byte) (n int, err error) {
	defer recoverCorrupt("read "+g.name, &err)
	return g.File.Read(b)
}

// rangeStorage is a read-only go-diskfs backend over a byte range of a file,
// so a filesystem inside a partition is read at offset 0 of its own range
// (go-diskfs does not add its start offset everywhere) and no read strays
// past the end of the range.
type rangeStorage struct {
	r         io.ReaderAt
	off, size int64
	pos       int64
	path      string
	read      int64 // bytes read so far, for the tests

	patches []patch // see isofix.go
}

var _ backend.Storage = (*rangeStorage)(nil)

func (s *rangeStorage) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fs.ErrInvalid
	}
	if off >= s.size {
		return 0, io.EOF
	}
	short := false
	if rest := s.size - off; int64(len(p)) > rest {
		p = p[:rest]
		short = true
	}
	n, err := s.r.ReadAt(p, s.off+off)
	s.read += int64(n)
	applyPatches(s.patches, p[:n], off)
	if err == nil && short {
		err = io.EOF
	}
	return n, err
}

func (s *rangeStorage) Read(p []byte) (int, error) {
	n, err := s.ReadAt(p, s.pos)
	s.pos += int64(n)
	return n, err
}

func (s *rangeStorage) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += s.pos
	case io.SeekEnd:
		offset += s.size
	default:
		return 0, fs.ErrInvalid
	}
	if offset < 0 {
		return 0, fs.ErrInvalid
	}
	s.pos = offset
	return offset, nil
}

func (s *rangeStorage) Stat() (fs.FileInfo, error) { return rangeInfo{s}, nil }
func (s *rangeStorage) Close() error               { return nil }
func (s *rangeStorage) Sys() (*os.File, error)     { return nil, backend.ErrNotSuitable }
func (s *rangeStorage) Writable() (backend.WritableFile, error) {
	return nil, backend.ErrIncorrectOpenMode
}
func (s *rangeStorage) Path() string { return s.path }

type rangeInfo struct{ s *rangeStorage }

func (i rangeInfo) Name() string           { return path.Base(i.s.path) }
func (i rangeInfo) Size() int64            { return i.s.size }
func (i rangeInfo) Mode() fs.FileMode      { return 0o444 }
func (i rangeInfo) ModTime() (t time.Time) { return t }
func (i rangeInfo) IsDir() bool            { return false }
func (i rangeInfo) Sys() any               { return nil }
