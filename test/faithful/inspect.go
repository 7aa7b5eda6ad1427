package faithful

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/provision-dev/provision/modules/fstab"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// State is what a disk holds, read offline: the root filesystem's top
// level stays mounted read-only at Top until Close.
type State struct {
	Default    string   // default subvolume from the top, e.g. "@/.snapshots/2/snapshot"
	Subvolumes []string // every subvolume from the top, sorted
	Info       map[int]string
	InfoMode   map[int]os.FileMode
	ReadOnly   map[string]bool // subvolume -> its ro property
	// ESPFiles are the ESP's small text files (loader.conf, entries) by
	// path ("/loader/loader.conf"); ESPSums the SHA-1 of every ESP file.
	ESPFiles map[string]string
	ESPSums  map[string]string
	Top      string // the top level (subvolid=5), mounted read-only
	Var      string // /var's content: Top/@/var, or F's /var filesystem

	att    *Attached
	own    bool // Close detaches att
	tmp    string
	undo   []func() error
	etcDir map[int]string
}

// Inspect attaches the disk, which must not be attached elsewhere, and
// reads it; Close detaches it again.
func Inspect(d *Disk) (*State, error) {
	a, err := d.Attach()
	if err != nil {
		return nil, err
	}
	s, err := a.inspect()
	if err != nil {
		return nil, errors.Join(err, a.Detach())
	}
	s.own = true
	return s, nil
}

// Inspect reads an attached disk (which may be mounted read-write
// elsewhere, e.g. by the code under test). Close leaves it attached.
func (a *Attached) Inspect() (*State, error) { return a.inspect() }

func (a *Attached) inspect() (*State, error) {
	tmp, err := os.MkdirTemp("", "faithful-inspect-")
	if err != nil {
		return nil, err
	}
	s := &State{att: a, tmp: tmp, Top: filepath.Join(tmp, "top"), etcDir: map[int]string{},
		Info: map[int]string{}, InfoMode: map[int]os.FileMode{}, ReadOnly: map[string]bool{}}
	if err := s.load(); err != nil {
		return nil, errors.Join(err, s.Close())
	}
	return s, nil
}

var (
	listRe    = regexp.MustCompile(`(?m)^ID (\d+) .*? path (.*)$`)
	defaultRe = regexp.MustCompile(`^ID (\d+)`)
)

func (s *State) load() error {
	u, err := s.att.MountTop(s.Top, true)
	if err != nil {
		return err
	}
	s.undo = append(s.undo, u)
	s.Var = filepath.Join(s.Top, "@/var")
	if s.att.Var != "" {
		s.Var = filepath.Join(s.tmp, "var")
		u, err := s.att.mount(s.Var, "-t", "btrfs", "-o", "ro", s.att.Var)
		if err != nil {
			return err
		}
		s.undo = append(s.undo, u)
	}
	out, err := run("btrfs", "subvolume", "list", "-a", s.Top)
	if err != nil {
		return err
	}
	byID := map[string]string{"5": ""}
	for _, m := range listRe.FindAllStringSubmatch(out, -1) {
		p := strings.TrimPrefix(m[2], "<FS_TREE>/")
		byID[m[1]] = p
		s.Subvolumes = append(s.Subvolumes, p)
	}
	sort.Strings(s.Subvolumes)
	out, err = run("btrfs", "subvolume", "get-default", s.Top)
	if err != nil {
		return err
	}
	m := defaultRe.FindStringSubmatch(out)
	if m == nil {
		return fmt.Errorf("btrfs subvolume get-default %s: unexpected %q", s.Top, out)
	}
	var ok bool
	if s.Default, ok = byID[m[1]]; !ok {
		return fmt.Errorf("default subvolume %s is not in the subvolume list:\n%s", m[1], out)
	}
	for _, sv := range s.Subvolumes {
		out, err := run("btrfs", "property", "get", "-ts", filepath.Join(s.Top, sv), "ro")
		if err != nil {
			return err
		}
		s.ReadOnly[sv] = strings.TrimSpace(out) == "ro=true"
	}
	infos, _ := filepath.Glob(filepath.Join(s.Top, "@/.snapshots/*/info.xml"))
	for _, p := range infos {
		n, err := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if err != nil {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		s.Info[n], s.InfoMode[n] = string(b), st.Mode().Perm()
	}
	return s.readESP()
}

// readESP copies the ESP out with mtools (the host may have no vfat).
func (s *State) readESP() error {
	img := s.att.Disk.ESPImage()
	if img == "" {
		return nil
	}
	s.ESPFiles, s.ESPSums = map[string]string{}, map[string]string{}
	dir := filepath.Join(s.tmp, "esp")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	out, err := mtools("mdir", "-/", "-b", "-i", img, "::/")
	if err != nil {
		return err
	}
	if strings.TrimSpace(out) == "" {
		return nil // empty ESP
	}
	if _, err := mtools("mcopy", "-s", "-n", "-i", img, "::/*", dir+"/"); err != nil {
		return err
	}
	return filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel := "/" + strings.TrimPrefix(p, dir+"/")
		sum, err := sha1File(p)
		if err != nil {
			return err
		}
		s.ESPSums[rel] = sum
		if info, err := e.Info(); err == nil && info.Size() <= 64<<10 {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if utf8.Valid(b) && !bytes.ContainsRune(b, 0) {
				s.ESPFiles[rel] = string(b)
			}
		}
		return nil
	})
}

// ReadTop reads a file by its path from the top level
// ("@/.snapshots/1/snapshot/etc/fstab").
func (s *State) ReadTop(p string) (string, error) {
	b, err := os.ReadFile(filepath.Join(s.Top, p))
	return string(b), err
}

// Snapshot is snapshot n's directory below Top.
func (s *State) Snapshot(n int) string {
	return filepath.Join(s.Top, "@/.snapshots", strconv.Itoa(n), "snapshot")
}

// EtcDir is a directory showing /etc as the booted snapshot n sees it,
// following n's own fstab: its nested subvolume (or plain etc), or its
// /etc overlay mounted read-only from the layers the overlay line names
// (upper first, /sysroot paths resolved through n's fstab mounts).
func (s *State) EtcDir(n int) (string, error) {
	if d, ok := s.etcDir[n]; ok {
		return d, nil
	}
	snap := s.Snapshot(n)
	b, err := os.ReadFile(filepath.Join(snap, "etc/fstab"))
	if err != nil {
		return "", err
	}
	fst, err := fstab.Parse("snapshot "+strconv.Itoa(n)+" /etc/fstab", b)
	if err != nil {
		return "", err
	}
	var line *fstab.Entry
	for i := range fst {
		if fst[i].File == "/etc" {
			line = &fst[i]
		}
	}
	if line == nil || line.VfsType != "overlay" {
		s.etcDir[n] = filepath.Join(snap, "etc")
		return s.etcDir[n], nil
	}
	var layers []string
	if up, _ := line.Option("upperdir"); up != "" {
		layers = append(layers, up)
	}
	lower, _ := line.Option("lowerdir")
	layers = append(layers, strings.Split(lower, ":")...)
	for i, l := range layers {
		if layers[i], err = s.hostPath(n, fst, l); err != nil {
			return "", err
		}
	}
	dir := filepath.Join(s.tmp, fmt.Sprintf("etc-%d", n))
	u, err := s.att.mount(dir, "-t", "overlay", "-o", "ro,lowerdir="+strings.Join(layers, ":"), "overlay")
	if err != nil {
		return "", err
	}
	s.undo = append(s.undo, u)
	s.etcDir[n] = dir
	return dir, nil
}

// hostPath is where path p of snapshot n's booted system (with or
// without the initrd's /sysroot prefix) is below Top or Var.
func (s *State) hostPath(n int, fst []fstab.Entry, p string) (string, error) {
	if rest, ok := strings.CutPrefix(p, "/sysroot"); ok && (rest == "" || rest[0] == '/') {
		p = "/" + strings.TrimPrefix(rest, "/")
	}
	best, host := "", filepath.Join(s.Snapshot(n), p)
	for _, e := range fst {
		if e.File == "/" || (p != e.File && !strings.HasPrefix(p, e.File+"/")) || len(e.File) <= len(best) {
			continue
		}
		rel := strings.TrimPrefix(p, e.File)
		uuid := strings.TrimPrefix(e.Spec, "UUID=")
		switch {
		case e.VfsType == "btrfs" && uuid == s.att.Disk.UUID:
			sv, _ := e.Option("subvol")
			if sv == "" {
				return "", fmt.Errorf("faithful: fstab line for %s has no subvol=", e.File)
			}
			best, host = e.File, filepath.Join(s.Top, strings.TrimPrefix(sv, "/"), rel)
		case e.VfsType == "btrfs" && uuid == s.att.Disk.VarUUID:
			best, host = e.File, filepath.Join(s.Var, rel)
		}
	}
	return host, nil
}

// ReadEtc reads /etc/<p> as the booted snapshot n sees it.
func (s *State) ReadEtc(n int, p string) (string, error) {
	dir, err := s.EtcDir(n)
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(filepath.Join(dir, p))
	return string(b), err
}

// Close unmounts everything Inspect mounted and, for Inspect(d), detaches
// the disk.
func (s *State) Close() error {
	var errs []error
	for i := len(s.undo) - 1; i >= 0; i-- {
		errs = append(errs, s.undo[i]())
	}
	s.undo = nil
	if s.own {
		errs = append(errs, s.att.Detach())
		s.own = false
	}
	errs = append(errs, removeTemp(s.tmp))
	return errors.Join(errs...)
}
