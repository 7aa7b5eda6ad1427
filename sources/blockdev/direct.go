package blockdev

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/diskfs/go-diskfs/filesystem/iso9660"
)

// directReader is a filesystem read from the medium's bytes without
// mounting. Medium asks it for each directory once (it caches the
// listings) and reads a file from the entry its parent's listing holds, so
// reading a medium is linear in its size: a path is never resolved from
// the root again.
type directReader interface {
	// readDir lists directory dir, whose entry in its parent's listing is
	// self (nil for the root).
	readDir(dir string, self fs.FileInfo) ([]fs.DirEntry, error)
	// readFile returns the content of the file whose entry is fi.
	readFile(fi fs.FileInfo) ([]byte, error)
}

// isoReader lists directories through go-diskfs (Rock Ridge and Joliet
// names) and reads files from the extent their entry records.
type isoReader struct {
	st *rangeStorage
	fs *iso9660.FileSystem
	bs int64
}

func (r *isoReader) readDir(dir string, _ fs.FileInfo) ([]fs.DirEntry, error) {
	return r.fs.ReadDir(dir)
}

// readFile reads the file's single extent (ISO 9660 files are contiguous)
// and nothing else: go-diskfs's File.Read ignores short reads and hands out
// zeros for an extent lying past the end of the image.
func (r *isoReader) readFile(fi fs.FileInfo) ([]byte, error) {
	st, ok := fi.Sys().(*iso9660.StatT)
	if !ok {
		return nil, errors.New("not an ISO 9660 directory entry")
	}
	data := make([]byte, fi.Size())
	if err := r.st.readExact(data, int64(st.Location)*r.bs); err != nil {
		return nil, fmt.Errorf("extent at block %d: %w", st.Location, err)
	}
	return data, nil
}

// errPastEnd is wrapped by every read of bytes the medium does not have.
var errPastEnd = errors.New("past the end of the medium")

// readExact fills p from offset off of the range, or fails: bytes past the
// end of the range, or fewer bytes than asked, are an error, never data.
func (s *rangeStorage) readExact(p []byte, off int64) error {
	end := off + int64(len(p))
	if off < 0 || end < off || end > s.size {
		return fmt.Errorf("bytes %d to %d lie %w (%d bytes)", off, end, errPastEnd, s.size)
	}
	n, err := s.ReadAt(p, off)
	if n < len(p) {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("short read at byte %d: %d of %d bytes: %w", off, n, len(p), err)
	}
	return nil
}

// list returns directory name of a direct medium, reading it on first use
// only: its entry comes from its parent's listing, which is read (once)
// the same way.
func (m *Medium) list(name string) (*listing, error) {
	if l, ok := m.dirs[name]; ok {
		return l, nil
	}
	var self fs.FileInfo
	if name != "." {
		fi, err := m.lookup(name)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			return nil, &fs.PathError{Op: "readdir", Path: name, Err: errors.New("not a directory")}
		}
		self = fi
	}
	if err := m.alive("readdir", name); err != nil {
		return nil, err
	}
	m.dirReads++
	raw, err := m.direct.readDir(name, self)
	if err != nil {
		return nil, m.notExist("readdir", name, err)
	}
	l := &listing{entries: tidyEntries(raw), byName: map[string]fs.DirEntry{}}
	for _, e := range l.entries {
		if _, dup := l.byName[e.Name()]; !dup {
			l.byName[e.Name()] = e
		}
		if m.Type == TypeVFAT {
			if k := foldKey(e.Name()); l.byName[k] == nil {
				l.byName[k] = e
			}
		}
	}
	m.dirs[name] = l
	return l, nil
}

// foldKey indexes a FAT name for a lookup without case; the NUL prefix
// keeps it apart from real names, which cannot contain one.
func foldKey(name string) string { return "\x00" + strings.ToLower(name) }

// lookup finds name (not ".") in its parent's listing.
func (m *Medium) lookup(name string) (fs.FileInfo, error) {
	l, err := m.list(path.Dir(name))
	if err != nil {
		return nil, err
	}
	base := path.Base(name)
	e := l.byName[base]
	if e == nil && m.Type == TypeVFAT {
		e = l.byName[foldKey(base)]
	}
	if e == nil {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
	}
	return e.Info()
}

// readDirect reads a file of a direct medium whose size Stat checked.
func (m *Medium) readDirect(name string, fi fs.FileInfo) (data []byte, err error) {
	defer recoverCorrupt("read "+name, &err)
	data, err = m.direct.readFile(fi)
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: name, Err: err}
	}
	return data, nil
}

// openFromBytes opens a file (read whole, within the size cap) or a directory
// (its cached listing) of a direct medium.
func (m *Medium) openFromBytes(name string) (fs.File, error) {
	fi, err := m.Stat(name)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		l, err := m.list(name)
		if err != nil {
			return nil, err
		}
		return &dirHandle{info: fi, entries: slices.Clone(l.entries)}, nil
	}
	data, err := m.ReadFile(name)
	if err != nil {
		return nil, err
	}
	return &memFile{Reader: bytes.NewReader(data), info: fi}, nil
}

type memFile struct {
	*bytes.Reader
	info fs.FileInfo
}

func (f *memFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *memFile) Close() error               { return nil }

type dirHandle struct {
	info    fs.FileInfo
	entries []fs.DirEntry
}

func (d *dirHandle) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *dirHandle) Close() error               { return nil }
func (d *dirHandle) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.info.Name(), Err: errors.New("is a directory")}
}

// ReadDir implements fs.ReadDirFile.
func (d *dirHandle) ReadDir(n int) ([]fs.DirEntry, error) {
	if n <= 0 {
		rest := d.entries
		d.entries = nil
		return rest, nil
	}
	if len(d.entries) == 0 {
		return nil, io.EOF
	}
	k := min(n, len(d.entries))
	out := d.entries[:k]
	d.entries = d.entries[k:]
	return out, nil
}
