package e2e

import (
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"
)

// CPIO writes a cpio "newc" archive, the format the kernel unpacks as an
// initramfs. Entries are written in the order added; directories must come
// before what they contain.
type CPIO struct {
	w   io.Writer
	ino uint32
	err error
}

// NewCPIO starts an archive on w.
func NewCPIO(w io.Writer) *CPIO { return &CPIO{w: w, ino: 1} }

func (c *CPIO) pad(n int) {
	if r := n % 4; r != 0 && c.err == nil {
		_, c.err = c.w.Write(make([]byte, 4-r))
	}
}

func (c *CPIO) entry(name string, mode uint32, rdevMajor, rdevMinor uint32, data []byte) {
	if c.err != nil {
		return
	}
	name = strings.TrimPrefix(name, "/")
	c.ino++
	hdr := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		c.ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdevMajor, rdevMinor, len(name)+1, 0)
	if _, c.err = io.WriteString(c.w, hdr+name+"\x00"); c.err != nil {
		return
	}
	c.pad(len(hdr) + len(name) + 1)
	if c.err == nil && len(data) > 0 {
		_, c.err = c.w.Write(data)
		c.pad(len(data))
	}
}

const (
	sIFDIR = 0o040000
	sIFREG = 0o100000
	sIFLNK = 0o120000
	sIFCHR = 0o020000
)

// Dir adds a directory.
func (c *CPIO) Dir(name string, perm fs.FileMode) {
	c.entry(name, sIFDIR|uint32(perm.Perm()), 0, 0, nil)
}

// File adds a regular file.
func (c *CPIO) File(name string, perm fs.FileMode, data []byte) {
	c.entry(name, sIFREG|uint32(perm.Perm()), 0, 0, data)
}

// Symlink adds a symbolic link.
func (c *CPIO) Symlink(name, target string) { c.entry(name, sIFLNK|0o777, 0, 0, []byte(target)) }

// CharDev adds a character device node.
func (c *CPIO) CharDev(name string, perm fs.FileMode, major, minor uint32) {
	c.entry(name, sIFCHR|uint32(perm.Perm()), major, minor, nil)
}

// Close writes the trailer and returns the first error.
func (c *CPIO) Close() error {
	c.entry("TRAILER!!!", 0, 0, 0, nil)
	return c.err
}

// Tree is an in-memory file tree for building an archive or a disk: paths
// map to contents; parents are created as needed.
type Tree map[string]TreeEntry

// TreeEntry is one file: Data for a regular file, Link for a symlink.
type TreeEntry struct {
	Mode fs.FileMode
	Data []byte
	Link string
}

// WriteCPIO writes the tree with its parent directories first.
func (t Tree) WriteCPIO(c *CPIO) {
	dirs := map[string]bool{}
	var paths []string
	for p := range t {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		parts := strings.Split(strings.Trim(p, "/"), "/")
		for i := 1; i < len(parts); i++ {
			d := strings.Join(parts[:i], "/")
			if !dirs[d] {
				dirs[d] = true
				c.Dir(d, 0o755)
			}
		}
		e := t[p]
		switch {
		case e.Link != "":
			c.Symlink(p, e.Link)
		case e.Mode.IsDir():
			if !dirs[strings.Trim(p, "/")] {
				dirs[strings.Trim(p, "/")] = true
				c.Dir(p, e.Mode)
			}
		default:
			c.File(p, e.Mode, e.Data)
		}
	}
}
