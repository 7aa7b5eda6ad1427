package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// Subvolume is one line of `btrfs subvolume list`.
type Subvolume struct {
	ID   uint64
	Path string // relative to the top level, "" for id 5
}

// Inspection is a root image mounted read-only on the host at its top level
// (subvolid=5), so every subvolume is reachable below Top.
type Inspection struct {
	Top        string
	Default    Subvolume
	Subvolumes []Subvolume
	// Var is where the booted system's /var content is: @/var in the snapper
	// layout, the root's own var otherwise.
	Var string
}

// Root is the directory of the default subvolume: what boots next.
func (in *Inspection) Root() string { return filepath.Join(in.Top, in.Default.Path) }

// ReadFile reads a file of the default subvolume; "" when it is missing.
func (in *Inspection) ReadFile(p string) string {
	b, err := os.ReadFile(filepath.Join(in.Root(), p))
	if err != nil {
		return ""
	}
	return string(b)
}

// Inspect mounts the image (read-only, loop) below dir. Call the returned
// function to unmount; a second image with the same fsid must not be
// mounted before that.
func Inspect(img, dir string) (*Inspection, func() error, error) {
	top := filepath.Join(dir, "inspect")
	if err := os.MkdirAll(top, 0o755); err != nil {
		return nil, nil, err
	}
	if _, err := run("", "mount", "-o", "loop,ro,subvolid=5", img, top); err != nil {
		return nil, nil, err
	}
	umount := func() error {
		_, err := run("", "umount", top)
		return err
	}
	in := &Inspection{Top: top}
	err := in.load()
	if err != nil {
		_ = umount()
		return nil, nil, err
	}
	return in, umount, nil
}

var (
	listRe    = regexp.MustCompile(`(?m)^ID (\d+) .*? path (.*)$`)
	defaultRe = regexp.MustCompile(`^ID (\d+)`)
)

func (in *Inspection) load() error {
	out, err := run("", "btrfs", "subvolume", "list", in.Top)
	if err != nil {
		return err
	}
	byID := map[uint64]string{5: ""}
	for _, m := range listRe.FindAllStringSubmatch(out, -1) {
		id, _ := strconv.ParseUint(m[1], 10, 64)
		// Subvolumes under the top level print as "<FS_TREE>/path" with -a
		// only; without it the path is relative to the top level.
		p := strings.TrimPrefix(m[2], "<FS_TREE>/")
		byID[id] = p
		in.Subvolumes = append(in.Subvolumes, Subvolume{ID: id, Path: p})
	}
	out, err = run("", "btrfs", "subvolume", "get-default", in.Top)
	if err != nil {
		return err
	}
	m := defaultRe.FindStringSubmatch(out)
	if m == nil {
		return fmt.Errorf("btrfs subvolume get-default: unexpected %q", out)
	}
	id, _ := strconv.ParseUint(m[1], 10, 64)
	p, ok := byID[id]
	if !ok {
		return fmt.Errorf("default subvolume %d is not in the list", id)
	}
	in.Default = Subvolume{ID: id, Path: p}
	in.Var = filepath.Join(in.Root(), "var")
	if _, err := os.Stat(filepath.Join(in.Top, "@/var")); err == nil {
		in.Var = filepath.Join(in.Top, "@/var")
	}
	return nil
}

// Boots is how many times the root's init ran in the default subvolume
// (each boot appends a line to the marker file).
func (in *Inspection) Boots() int {
	return len(strings.Fields(in.ReadFile(markerFile)))
}
