package bootentry

import (
	"errors"
	"fmt"
	"github.com/provision-dev/provision/modules/fstab"
	"io/fs"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/provision-dev/provision/modules/rootfs"
)

// Loader types as sdbootutil names them in LOADER_TYPE.
const (
	SystemdBoot = "systemd-boot"
	Grub2BLS    = "grub2-bls"
)

// ErrNoESP is returned by Detect for a BLS target whose /etc/fstab mounts no
// vfat file system at /boot, /efi or /boot/efi: its entries cannot be found.
var ErrNoESP = errors.New("no ESP (vfat at /boot, /efi or /boot/efi) in /etc/fstab")

// Loader describes how a BLS target boots: what Detect read from the target
// tree. The caller mounts the ESP (ESPSpec) and passes the mount point to
// AddSnapshot.
type Loader struct {
	// Type is SystemdBoot or Grub2BLS.
	Type string
	// EntryToken is the first word of the entry file names: the first line of
	// /etc/kernel/entry-token, else machine-id, IMAGE_ID or ID (sdbootutil's
	// fallback order).
	EntryToken string
	// Tries is the first line of /etc/kernel/tries when it is a decimal
	// number ("" otherwise): new entries get a "+<Tries>" boot counter.
	Tries string
	// ESPMount is where the target mounts the partition holding
	// loader/entries ("/boot/efi"), and ESPSpec its fstab source ("UUID=...").
	ESPMount string
	ESPSpec  string
	// RootSpec is the fstab source of "/". Entries whose root= names a
	// different file system of the same kind belong to another installation
	// sharing the ESP and are left alone.
	RootSpec string
	// OSName is the first word of NAME in os-release, lower case: grub2-bls
	// keeps its environment block in EFI/<OSName>/grubenv on the ESP.
	OSName string
	// EFIVars is the efivarfs directory of the running system. Detect leaves
	// it empty; when the caller sets it and LoaderEntryDefault exists there,
	// AddSnapshot updates that variable as well as the file on the ESP.
	EFIVars string
}

// maxTargetFile bounds what Detect reads from the target tree.
const maxTargetFile = 1 << 20

// Detect reads the target tree at root (the host path of the new snapshot)
// and returns how its boot entries are managed, or nil (and no error) when
// the target does not boot from BLS entries, so that the btrfs default
// subvolume alone decides the next boot. Paths are resolved inside root:
// absolute symlinks in the target point into the target, and nothing that
// climbs out of it is followed.
//
// A target is a BLS target when /etc/sysconfig/bootloader has LOADER_TYPE
// "systemd-boot" or "grub2-bls". With LOADER_TYPE unset, a target that has
// sdbootutil installed counts as systemd-boot when a systemd-boot EFI binary
// is installed and grub's BLS binary is not, else as grub2-bls (sdbootutil's
// own guess). Any other value ("grub2", "grub2-efi", ...) is not a BLS target.
func Detect(root string) (*Loader, error) {
	r, err := rootfs.New(root)
	if err != nil {
		return nil, err
	}
	typ, err := loaderType(r)
	if err != nil || typ == "" {
		return nil, err
	}
	l := &Loader{Type: typ}

	osr, err := osRelease(r)
	if err != nil {
		return nil, err
	}
	l.OSName = strings.ToLower(firstWord(osr["NAME"]))

	if l.EntryToken, err = entryToken(r, osr); err != nil {
		return nil, err
	}
	if l.Tries, err = kernelTries(r); err != nil {
		return nil, err
	}

	data, err := readTarget(r, "/etc/fstab")
	if err != nil {
		return nil, err
	}
	tab, err := fstab.Parse(filepath.Join(r.Dir, "etc/fstab"), data)
	if err != nil {
		return nil, err
	}
	rank := map[string]int{"/boot": 1, "/efi": 2, "/boot/efi": 3}
	best := 0
	for _, m := range tab {
		file := path.Clean(m.File)
		if file == "/" {
			l.RootSpec = m.Spec
		}
		if k := rank[file]; k != 0 && m.VfsType == "vfat" && (best == 0 || k < best) {
			best, l.ESPMount, l.ESPSpec = k, file, m.Spec
		}
	}
	if best == 0 {
		return nil, fmt.Errorf("%s: %s target: %w", filepath.Join(r.Dir, "etc/fstab"), typ, ErrNoESP)
	}
	return l, nil
}

// Describe is a one-line summary for dry runs.
func Describe(l *Loader) string {
	if l == nil {
		return "no boot loader entries: the btrfs default subvolume selects the next boot"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: entries on %s", l.Type, l.ESPMount)
	if l.ESPSpec != "" {
		fmt.Fprintf(&b, " (%s)", l.ESPSpec)
	}
	fmt.Fprintf(&b, ", token %s", l.EntryToken)
	if l.Tries != "" {
		fmt.Fprintf(&b, ", boot counting +%s", l.Tries)
	}
	if l.Type == Grub2BLS {
		fmt.Fprintf(&b, ", default in %s/EFI/%s/grubenv", strings.TrimSuffix(l.ESPMount, "/"), l.OSName)
	} else {
		fmt.Fprintf(&b, ", default in %s/loader/loader.conf", strings.TrimSuffix(l.ESPMount, "/"))
	}
	if l.EFIVars != "" {
		b.WriteString(" and LoaderEntryDefault if set")
	}
	return b.String()
}

func loaderType(r *rootfs.Root) (string, error) {
	p := "/etc/sysconfig/bootloader"
	data, err := readTarget(r, p)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	typ := ""
	if err == nil {
		vars, err := parseShellVars(filepath.Join(r.Dir, p), data)
		if err != nil {
			return "", err
		}
		typ = vars["LOADER_TYPE"]
	}
	switch typ {
	case SystemdBoot, Grub2BLS:
		return typ, nil
	case "":
	default:
		return "", nil
	}
	if !exists(r, "/usr/bin/sdbootutil") {
		return "", nil
	}
	sdboot := globExists(r, "/usr/lib/systemd-boot", "systemd-boot", ".efi") ||
		globExists(r, "/usr/lib/systemd/boot/efi", "systemd-boot", ".efi")
	grubBLS := false
	if dirs, err := readTargetDir(r, "/usr/share/grub2"); err == nil {
		for _, d := range dirs {
			if strings.HasSuffix(d, "-efi") && exists(r, "/usr/share/grub2/"+d+"/grubbls.efi") {
				grubBLS = true
			}
		}
	}
	if sdboot && !grubBLS {
		return SystemdBoot, nil
	}
	return Grub2BLS, nil
}

func osRelease(r *rootfs.Root) (map[string]string, error) {
	// sdbootutil reads the first of these that exists.
	for _, p := range []string{"/usr/lib/os-release", "/etc/os-release"} {
		data, err := readTarget(r, p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return parseShellVars(filepath.Join(r.Dir, p), data)
	}
	return map[string]string{}, nil
}

func entryToken(r *rootfs.Root, osr map[string]string) (string, error) {
	p := "/etc/kernel/entry-token"
	data, err := readTarget(r, p)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if err == nil && len(data) > 0 {
		tok := firstLine(data)
		if !validToken(tok) {
			return "", fmt.Errorf("%s:1: entry token %q is not usable in a file name", filepath.Join(r.Dir, p), tok)
		}
		return tok, nil
	}
	// The machine-id comes first, but is absent on a first boot.
	if data, err := readTarget(r, "/etc/machine-id"); err == nil {
		if id := firstLine(data); id != "" && id != "uninitialized" && validToken(id) {
			return id, nil
		}
	}
	for _, k := range []string{"IMAGE_ID", "ID"} {
		if v := osr[k]; v != "" {
			if !validToken(v) {
				return "", fmt.Errorf("os-release: %s=%q is not usable as an entry token", k, v)
			}
			return v, nil
		}
	}
	return "", fmt.Errorf("%s: no entry token: /etc/kernel/entry-token, machine-id, IMAGE_ID and ID are all missing", r.Dir)
}

func kernelTries(r *rootfs.Root) (string, error) {
	data, err := readTarget(r, "/etc/kernel/tries")
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	t := firstLine(data)
	if t == "" || strings.Trim(t, "0123456789") != "" {
		// sdbootutil ignores a value that is not a number.
		return "", nil
	}
	if _, err := strconv.ParseUint(t, 10, 31); err != nil {
		return "", fmt.Errorf("%s:1: tries %q out of range", filepath.Join(r.Dir, "etc/kernel/tries"), t)
	}
	return t, nil
}

// validToken accepts what can start an entry file name.
func validToken(s string) bool {
	if s == "" || len(s) > 128 || s[0] == '.' || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isDigit(c) && !isAlpha(c) && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

func firstLine(data []byte) string {
	s, _, _ := strings.Cut(string(data), "\n")
	return strings.TrimSpace(s)
}

func firstWord(s string) string {
	f := strings.Fields(s)
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

// readTarget reads a regular file inside the target, at most maxTargetFile
// bytes. A missing file gives an error wrapping fs.ErrNotExist.
func readTarget(r *rootfs.Root, p string) ([]byte, error) {
	host, err := r.ResolveFollow(p)
	if err != nil {
		return nil, err
	}
	return rootfs.ReadRegular(host, host, maxTargetFile)
}

func readTargetDir(r *rootfs.Root, p string) ([]string, error) {
	ents, err := r.ReadDir(p)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names, nil
}

func exists(r *rootfs.Root, p string) bool {
	_, err := r.Stat(p)
	return err == nil
}

func globExists(r *rootfs.Root, dir, prefix, suffix string) bool {
	names, err := readTargetDir(r, dir)
	if err != nil {
		return false
	}
	for _, n := range names {
		if strings.HasPrefix(n, prefix) && strings.HasSuffix(n, suffix) {
			return true
		}
	}
	return false
}

// parseShellVars reads the simple shell assignments of os-release and
// sysconfig files: KEY=value, KEY="value", KEY='value', with an optional
// "export ". Other lines are ignored; nothing is expanded.
func parseShellVars(name string, data []byte) (map[string]string, error) {
	vars := map[string]string{}
	for i, ln := range strings.Split(string(data), "\n") {
		s := strings.TrimSpace(ln)
		if s == "" || s[0] == '#' {
			continue
		}
		s = strings.TrimPrefix(s, "export ")
		key, rest, ok := strings.Cut(s, "=")
		if !ok || !validShellName(key) {
			continue
		}
		val, err := shellValue(rest)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %s: %v", name, i+1, key, err)
		}
		vars[key] = val
	}
	return vars, nil
}

func validShellName(s string) bool {
	if s == "" || isDigit(s[0]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isDigit(c) && !isAlpha(c) && c != '_' {
			return false
		}
	}
	return true
}

func shellValue(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			return b.String(), nil
		case c == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return "", errors.New("unterminated single quote")
			}
			b.WriteString(s[i+1 : i+1+end])
			i += end + 1
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
					i++
				}
				b.WriteByte(s[i])
			}
			if i >= len(s) {
				return "", errors.New("unterminated double quote")
			}
		case c == '\\' && i+1 < len(s):
			i++
			b.WriteByte(s[i])
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}
