// Command floor is the benchmark's lower bound: a program that puts a tree
// into exactly the end state a provision run leaves, and does nothing else.
//
//	floor record BEFORE AFTER MANIFEST   what a run changed, as a manifest
//	floor apply [-undo] ROOT MANIFEST    write it into ROOT, then one syncfs
//
// record compares a tree before and after a real run (regular files,
// directories, symlinks: content, mode, owner) and writes the changes as a
// gob manifest. apply writes every file in place (no temp file, no fsync)
// and flushes the filesystem once; with -undo it first copies what it will
// overwrite into ROOT/.floor-undo and flushes that once (the cheapest crash-
// safe undo journal), then applies and flushes again. The difference between
// provision and apply is what the agent's own machinery costs.
package main

import (
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"syscall"

	"golang.org/x/sys/unix"
)

// entry is one path of the end state.
type entry struct {
	Path     string // relative to the root
	Mode     fs.FileMode
	UID, GID int
	Data     []byte // regular file
	Target   string // symlink
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	switch {
	case len(args) == 4 && args[0] == "record":
		return record(args[1], args[2], args[3])
	case len(args) == 3 && args[0] == "apply":
		return apply(args[1], args[2], false)
	case len(args) == 4 && args[0] == "apply" && args[1] == "-undo":
		return apply(args[2], args[3], true)
	}
	return errors.New("usage: floor record BEFORE AFTER MANIFEST | floor apply [-undo] ROOT MANIFEST")
}

func stat(p string) (entry, bool) {
	fi, err := os.Lstat(p)
	if err != nil {
		return entry{}, false
	}
	e := entry{Mode: fi.Mode()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		e.UID, e.GID = int(st.Uid), int(st.Gid)
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		e.Target, _ = os.Readlink(p)
	case fi.Mode().IsRegular():
		e.Data, _ = os.ReadFile(p)
	}
	return e, true
}

func same(a, b entry) bool {
	return a.Mode == b.Mode && a.UID == b.UID && a.GID == b.GID && a.Target == b.Target && bytes.Equal(a.Data, b.Data)
}

// record lists, in an order that creates parents first, every path of
// after that is new or different in before. Removals are not expected of
// a first boot and are refused.
func record(before, after, manifest string) error {
	var out []entry
	err := filepath.WalkDir(after, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(after, p)
		if rel == "." {
			return nil
		}
		now, _ := stat(p)
		if was, ok := stat(filepath.Join(before, rel)); ok && same(was, now) {
			return nil
		}
		now.Path = rel
		out = append(out, now)
		return nil
	})
	if err != nil {
		return err
	}
	err = filepath.WalkDir(before, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(before, p)
		if _, ok := stat(filepath.Join(after, rel)); !ok {
			return fmt.Errorf("%s was removed by the run: the floor does not model removals", rel)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	f, err := os.Create(manifest)
	if err != nil {
		return err
	}
	if err := gob.NewEncoder(f).Encode(out); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func load(manifest string) ([]entry, error) {
	f, err := os.Open(manifest)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var es []entry
	return es, gob.NewDecoder(f).Decode(&es)
}

func apply(root, manifest string, undo bool) error {
	es, err := load(manifest)
	if err != nil {
		return err
	}
	if undo {
		if err := saveUndo(root, es); err != nil {
			return err
		}
	}
	for _, e := range es {
		if err := write(filepath.Join(root, e.Path), e); err != nil {
			return err
		}
	}
	return syncfs(root)
}

// saveUndo copies every file apply will overwrite into ROOT/.floor-undo,
// then flushes once: after that the old state survives a crash.
func saveUndo(root string, es []entry) error {
	dir := filepath.Join(root, ".floor-undo")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for i, e := range es {
		old, err := os.ReadFile(filepath.Join(root, e.Path))
		if err != nil {
			continue // new, or a directory: the undo is to remove it
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprint(i)), old, 0o600); err != nil {
			return err
		}
	}
	return syncfs(root)
}

func write(p string, e entry) error {
	switch {
	case e.Mode.IsDir():
		if err := os.Mkdir(p, e.Mode.Perm()); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	case e.Mode&fs.ModeSymlink != 0:
		_ = os.Remove(p)
		if err := os.Symlink(e.Target, p); err != nil {
			return err
		}
	default:
		if err := os.WriteFile(p, e.Data, e.Mode.Perm()); err != nil {
			return err
		}
	}
	if err := os.Lchown(p, e.UID, e.GID); err != nil {
		return err
	}
	if e.Mode&fs.ModeSymlink == 0 {
		return os.Chmod(p, e.Mode&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky))
	}
	return nil
}

func syncfs(root string) error {
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Syncfs(fd)
}
