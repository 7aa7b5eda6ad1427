// Package seed builds seed media — a NoCloud drive (cidata), an OpenStack
// config drive (config-2), a Combustion stick (combustion) or an Ignition
// stick (ignition) — as an ISO9660
// or FAT image file, in pure Go and without root. It is what
// `provision seed` runs instead of cloud-localds, genisoimage or
// mkfs.vfat + mcopy, and it lays the files out exactly where the sources
// in sources/ look for them.
package seed

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// ErrInput marks a problem with what the user gave us (missing file, bad
// combination of options, a Combustion directory without a script): the
// command line reports it with exit status 2.
var ErrInput = errors.New("invalid seed input")

// Format is the kind of seed to build.
type Format string

// Formats.
const (
	NoCloud     Format = "nocloud"
	ConfigDrive Format = "configdrive"
	Combustion  Format = "combustion"
	Ignition    Format = "ignition"
)

// Filesystem is the filesystem written into the image.
type Filesystem string

// Filesystems.
const (
	ISO9660 Filesystem = "iso9660"
	VFAT    Filesystem = "vfat"
)

// Labels written for each format: the ones the sources probe for first.
const (
	LabelNoCloud     = "cidata"
	LabelConfigDrive = "config-2"
	LabelCombustion  = "combustion"
	LabelIgnition    = "ignition"
)

// MaxContent bounds the bytes a seed may carry. Seeds hold configuration,
// not payloads; the bound keeps the image (built in memory) sane and the
// FAT within FAT16's range.
const MaxContent = 512 << 20

// Options says what to build.
type Options struct {
	Format     Format
	Filesystem Filesystem // "" picks the format's default (see DefaultFilesystem)

	// Inputs are the positional arguments: nocloud takes USER-DATA
	// [META-DATA] (cloud-localds's order), configdrive takes [USER-DATA],
	// combustion takes one directory holding `script` and its siblings (or
	// holding combustion/script, copied as it is), or the script file alone;
	// ignition takes the config.ign file, or a medium tree holding
	// ignition/config.ign (and perhaps combustion/), copied as it is.
	Inputs []string

	MetaData      string // nocloud: meta-data; configdrive: meta_data.json
	NetworkConfig string // nocloud: network-config; configdrive: network_data.json
	VendorData    string // nocloud: vendor-data; configdrive: vendor_data.json

	// Used only when meta-data is generated (no MetaData given).
	InstanceID string // default: a random iid-<hex> (nocloud) or UUID (configdrive)
	Hostname   string
}

// File is one regular file of a layout. Name is slash-separated and
// relative to the filesystem root; directories are implied by the names.
type File struct {
	Name string
	Data []byte
	Mode fs.FileMode // permission bits, kept on ISO9660 (Rock Ridge)
}

// Layout is the content of a seed: its label, its filesystem and its files
// sorted by name.
type Layout struct {
	Label      string
	Filesystem Filesystem
	Files      []File
}

// DefaultFilesystem is what each format gets when none is asked for:
// cloud-localds makes ISOs, Nova config drives are ISOs by default, and
// Combustion's and Ignition's documented medium is a USB stick with a FAT
// filesystem.
func DefaultFilesystem(f Format) Filesystem {
	if f == Combustion || f == Ignition {
		return VFAT
	}
	return ISO9660
}

// Build reads the inputs and writes the image to out (replaced atomically:
// a failed build leaves no partial image). It returns the layout written.
func Build(opts Options, out string) (*Layout, error) {
	l, err := Plan(opts)
	if err != nil {
		return nil, err
	}
	if err := Write(l, out); err != nil {
		return nil, err
	}
	return l, nil
}

// Plan reads the inputs and returns the layout to write, without writing.
func Plan(opts Options) (*Layout, error) {
	fsType := opts.Filesystem
	if fsType == "" {
		fsType = DefaultFilesystem(opts.Format)
	}
	if fsType != ISO9660 && fsType != VFAT {
		return nil, fmt.Errorf("%w: filesystem %q: want %s or %s", ErrInput, fsType, ISO9660, VFAT)
	}
	var (
		l   *Layout
		err error
	)
	switch opts.Format {
	case NoCloud:
		l, err = planNoCloud(opts)
	case ConfigDrive:
		l, err = planConfigDrive(opts)
	case Combustion:
		l, err = planCombustion(opts)
	case Ignition:
		l, err = planIgnition(opts)
	default:
		return nil, fmt.Errorf("%w: format %q: want nocloud, configdrive, combustion or ignition", ErrInput, opts.Format)
	}
	if err != nil {
		return nil, err
	}
	l.Filesystem = fsType
	sort.Slice(l.Files, func(i, j int) bool { return l.Files[i].Name < l.Files[j].Name })
	var total int64
	for _, f := range l.Files {
		total += int64(len(f.Data))
	}
	if total > MaxContent {
		return nil, fmt.Errorf("%w: %d bytes of content is more than a seed may carry (%d)", ErrInput, total, MaxContent)
	}
	if fsType == VFAT {
		if err := checkFATNames(l.Files); err != nil {
			return nil, err
		}
	}
	return l, nil
}

func planNoCloud(o Options) (*Layout, error) {
	if len(o.Inputs) < 1 || len(o.Inputs) > 2 {
		return nil, fmt.Errorf("%w: nocloud takes USER-DATA [META-DATA], got %d argument(s)", ErrInput, len(o.Inputs))
	}
	meta := o.MetaData
	if len(o.Inputs) == 2 {
		if meta != "" {
			return nil, fmt.Errorf("%w: meta-data given twice (argument %s and --meta-data %s)", ErrInput, o.Inputs[1], meta)
		}
		meta = o.Inputs[1]
	}
	l := &Layout{Label: LabelNoCloud}
	if err := l.addFile("user-data", o.Inputs[0]); err != nil {
		return nil, err
	}
	if meta != "" {
		if o.InstanceID != "" || o.Hostname != "" {
			return nil, fmt.Errorf("%w: --instance-id and --hostname only apply to generated meta-data, not to %s", ErrInput, meta)
		}
		if err := l.addFile("meta-data", meta); err != nil {
			return nil, err
		}
	} else {
		// cloud-localds writes a fixed iid-local01 here; a fresh random id
		// makes each new seed a new instance, so a rebuilt seed is applied
		// again rather than ignored by an already provisioned machine.
		id := o.InstanceID
		if id == "" {
			id = "iid-" + randomHex(8)
		}
		md := "instance-id: " + yamlScalar(id) + "\n"
		if o.Hostname != "" {
			md += "local-hostname: " + yamlScalar(o.Hostname) + "\n"
		}
		l.Files = append(l.Files, File{Name: "meta-data", Data: []byte(md), Mode: 0o644})
	}
	if err := l.addOptional("network-config", o.NetworkConfig); err != nil {
		return nil, err
	}
	if err := l.addOptional("vendor-data", o.VendorData); err != nil {
		return nil, err
	}
	return l, nil
}

const openstackDir = "openstack/latest/"

func planConfigDrive(o Options) (*Layout, error) {
	if len(o.Inputs) > 1 {
		return nil, fmt.Errorf("%w: configdrive takes at most one USER-DATA argument, got %d", ErrInput, len(o.Inputs))
	}
	l := &Layout{Label: LabelConfigDrive}
	if len(o.Inputs) == 1 {
		if err := l.addFile(openstackDir+"user_data", o.Inputs[0]); err != nil {
			return nil, err
		}
	}
	if o.MetaData != "" {
		if o.InstanceID != "" || o.Hostname != "" {
			return nil, fmt.Errorf("%w: --instance-id and --hostname only apply to generated meta_data.json, not to %s", ErrInput, o.MetaData)
		}
		if err := l.addFile(openstackDir+"meta_data.json", o.MetaData); err != nil {
			return nil, err
		}
		if err := checkJSONObject(o.MetaData, l.Files[len(l.Files)-1].Data); err != nil {
			return nil, err
		}
	} else {
		id := o.InstanceID
		if id == "" {
			id = randomUUID()
		}
		md := map[string]any{"uuid": id}
		if o.Hostname != "" {
			md["hostname"] = o.Hostname
			md["name"] = o.Hostname
		}
		b, _ := json.MarshalIndent(md, "", "  ")
		l.Files = append(l.Files, File{Name: openstackDir + "meta_data.json", Data: append(b, '\n'), Mode: 0o644})
	}
	if err := l.addOptional(openstackDir+"network_data.json", o.NetworkConfig); err != nil {
		return nil, err
	}
	if o.NetworkConfig != "" {
		if err := checkJSONObject(o.NetworkConfig, l.Files[len(l.Files)-1].Data); err != nil {
			return nil, err
		}
	}
	if err := l.addOptional(openstackDir+"vendor_data.json", o.VendorData); err != nil {
		return nil, err
	}
	if o.VendorData != "" {
		if err := checkJSONObject(o.VendorData, l.Files[len(l.Files)-1].Data); err != nil {
			return nil, err
		}
	}
	return l, nil
}

func planCombustion(o Options) (*Layout, error) {
	if len(o.Inputs) != 1 {
		return nil, fmt.Errorf("%w: combustion takes one configuration directory, got %d argument(s)", ErrInput, len(o.Inputs))
	}
	if o.MetaData != "" || o.NetworkConfig != "" || o.VendorData != "" || o.InstanceID != "" || o.Hostname != "" {
		return nil, fmt.Errorf("%w: --meta-data, --network-config, --vendor-data, --instance-id and --hostname do not apply to combustion", ErrInput)
	}
	in := o.Inputs[0]
	st, err := os.Stat(in)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInput, err)
	}
	l := &Layout{Label: LabelCombustion}
	if !st.IsDir() {
		// A lone script: the common case of a config with no siblings.
		if err := l.addFile("combustion/script", in); err != nil {
			return nil, err
		}
		return l, nil
	}
	// Either the combustion/ directory itself (script at its top), or a
	// medium tree holding combustion/script (and perhaps ignition/).
	prefix := "combustion/"
	if !isRegular(filepath.Join(in, "script")) {
		if !isRegular(filepath.Join(in, "combustion", "script")) {
			return nil, fmt.Errorf("%w: %s: no script: the directory must hold `script` (or combustion/script)", ErrInput, in)
		}
		prefix = ""
	}
	if err := l.addTree(in, prefix); err != nil {
		return nil, err
	}
	return l, nil
}

// ignitionConfig is where Ignition's openSUSE disk provider (and
// sources/drive) read the config from.
const ignitionConfig = "ignition/config.ign"

func planIgnition(o Options) (*Layout, error) {
	if len(o.Inputs) != 1 {
		return nil, fmt.Errorf("%w: ignition takes one config.ign file or medium directory, got %d argument(s)", ErrInput, len(o.Inputs))
	}
	if o.MetaData != "" || o.NetworkConfig != "" || o.VendorData != "" || o.InstanceID != "" || o.Hostname != "" {
		return nil, fmt.Errorf("%w: --meta-data, --network-config, --vendor-data, --instance-id and --hostname do not apply to ignition", ErrInput)
	}
	in := o.Inputs[0]
	st, err := os.Stat(in)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInput, err)
	}
	l := &Layout{Label: LabelIgnition}
	src := in
	if !st.IsDir() {
		err = l.addFile(ignitionConfig, in)
	} else {
		// A medium tree as fuel-ignition writes it: ignition/config.ign,
		// and perhaps combustion/script next to it (the same stick serves
		// both).
		src = filepath.Join(in, filepath.FromSlash(ignitionConfig))
		if !isRegular(src) {
			return nil, fmt.Errorf("%w: %s: no %s in the directory", ErrInput, in, ignitionConfig)
		}
		err = l.addTree(in, "")
	}
	if err != nil {
		return nil, err
	}
	// Ignition refuses anything but a JSON object; say so before writing.
	for _, f := range l.Files {
		if f.Name == ignitionConfig {
			if err := checkJSONObject(src, f.Data); err != nil {
				return nil, err
			}
		}
	}
	return l, nil
}

// addTree adds every regular file below dir, named prefix + its path
// relative to dir.
func (l *Layout) addTree(dir, prefix string) error {
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		name := prefix + filepath.ToSlash(rel)
		st, err := os.Stat(p) // follows symlinks: a medium has none
		if err != nil {
			return err
		}
		switch {
		case st.IsDir() && d.Type()&fs.ModeSymlink != 0:
			return fmt.Errorf("%s: a symbolic link to a directory cannot be put on a seed", p)
		case st.IsDir():
			return nil
		case !st.Mode().IsRegular():
			return fmt.Errorf("%s: not a regular file", p)
		}
		return l.addFile(name, p)
	})
	if err != nil && !errors.Is(err, ErrInput) {
		return fmt.Errorf("%w: %w", ErrInput, err)
	}
	return err
}

func isRegular(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// addFile reads src into the layout as name, keeping its permission bits
// (a Combustion script is executable on an ISO as in the directory).
func (l *Layout) addFile(name, src string) error {
	st, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrInput, name, err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%w: %s: %s is not a regular file", ErrInput, name, src)
	}
	if st.Size() > MaxContent {
		return fmt.Errorf("%w: %s: %s is %d bytes, more than a seed may carry (%d)", ErrInput, name, src, st.Size(), MaxContent)
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrInput, name, err)
	}
	mode := st.Mode().Perm() | 0o444 // whoever mounts it must be able to read it
	l.Files = append(l.Files, File{Name: name, Data: data, Mode: mode})
	return nil
}

func (l *Layout) addOptional(name, src string) error {
	if src == "" {
		return nil
	}
	return l.addFile(name, src)
}

func checkJSONObject(src string, data []byte) error {
	var obj map[string]any
	if err := json.Unmarshal(data, &obj); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			// Offset counts the offending byte too.
			line, col := lineCol(data, se.Offset-1)
			return fmt.Errorf("%w: %s:%d:%d: %w", ErrInput, src, line, col, err)
		}
		return fmt.Errorf("%w: %s: want a JSON object: %w", ErrInput, src, err)
	}
	return nil
}

// lineCol turns a byte offset into a 1-based line and column.
func lineCol(data []byte, off int64) (int, int) {
	off = min(max(off, 0), int64(len(data)))
	line, col := 1, 1
	for _, c := range data[:off] {
		if c == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return line, col
}

// checkFATNames refuses names FAT cannot hold, and names that differ only in
// case (FAT matches names case-insensitively, so one would replace the
// other), before anything is written.
func checkFATNames(files []File) error {
	seen := map[string]string{}
	for _, f := range files {
		parts := strings.Split(f.Name, "/")
		for i, part := range parts {
			if part == "" || part == "." || part == ".." {
				return fmt.Errorf("%w: %q: empty or dot path element", ErrInput, f.Name)
			}
			// go-diskfs derives 8.3 names from long ones and fails on many
			// non-ASCII letters; the ISO (Rock Ridge) keeps any name.
			if strings.IndexFunc(part, func(r rune) bool { return r >= 0x7f }) >= 0 {
				return fmt.Errorf("%w: %q: FAT seeds are limited to ASCII names here; use --iso", ErrInput, f.Name)
			}
			if len(part) > 255 {
				return fmt.Errorf("%w: %q: a FAT name has at most 255 characters", ErrInput, f.Name)
			}
			if strings.ContainsAny(part, "\"*:<>?\\|\x7f") || strings.IndexFunc(part, func(r rune) bool { return r < 0x20 }) >= 0 {
				return fmt.Errorf("%w: %q: FAT names cannot hold control characters nor any of \" * : < > ? \\ |", ErrInput, f.Name)
			}
			if strings.HasSuffix(part, ".") || strings.HasSuffix(part, " ") {
				return fmt.Errorf("%w: %q: FAT drops trailing dots and spaces from names", ErrInput, f.Name)
			}
			key := strings.ToLower(path.Join(parts[:i+1]...))
			full := path.Join(parts[:i+1]...)
			if prev, ok := seen[key]; ok && prev != full {
				return fmt.Errorf("%w: %q and %q differ only in case, which FAT cannot tell apart", ErrInput, prev, full)
			}
			seen[key] = full
		}
	}
	return nil
}

// yamlScalar quotes s when plain YAML would read it as something else
// (a number, a bool, null, or with special characters).
func yamlScalar(s string) string {
	plain := s != ""
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			plain = false
			break
		}
	}
	switch strings.ToLower(s) {
	case "true", "false", "yes", "no", "on", "off", "null", "~", "y", "n":
		plain = false
	}
	if plain && (s[0] >= '0' && s[0] <= '9' || s[0] == '-' || s[0] == '.') {
		plain = false
	}
	if plain {
		return s
	}
	b, _ := json.Marshal(s) // a JSON string is a valid YAML double-quoted scalar
	return string(b)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand panics instead)
	return hex.EncodeToString(b)
}

func randomUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
