// Package dir reads configuration from a directory on the local machine: a
// NoCloud-style seed (user-data, meta-data, ...), a ConfigDrive tree
// (openstack/latest/...), a Combustion medium root (combustion/script, and
// ignition/config.ign) or a Combustion config directory (script + siblings).
// It is what `--source DIR` means, for dry runs, validation and image builds.
package dir

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/provision-dev/provision/provision/config"
	"github.com/provision-dev/provision/sources"
)

// maxFileSize caps every file read from a seed; seeds are small, and a huge
// file is a mistake or an attack.
const maxFileSize = 64 << 20

// Source is a directory source.
type Source struct {
	Path string
}

// New returns a source for the directory path.
func New(path string) *Source { return &Source{Path: path} }

// Name is "dir:<path>".
func (s *Source) Name() string { return "dir:" + s.Path }

// Detect reports Present when the path is a directory.
func (s *Source) Detect(*sources.Facts) sources.Presence {
	if st, err := os.Stat(s.Path); err == nil && st.IsDir() {
		return sources.Present
	}
	return sources.Absent
}

// Fetch reads the documents, deciding the layout by what is there. Reads
// are confined to the directory (os.Root): a seed file that is a symlink
// leading out of it (to a host's /etc/shadow) is an error naming the file,
// never followed.
func (s *Source) Fetch(ctx context.Context) ([]sources.Document, error) {
	root, err := os.OpenRoot(s.Path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.Name(), err)
	}
	defer root.Close()
	return Read(root.FS(), s.Name())
}

// Layout names what a directory holds.
type Layout string

const (
	LayoutNone             Layout = ""
	LayoutNoCloud          Layout = "nocloud"
	LayoutConfigDrive      Layout = "configdrive"
	LayoutCombustionMedium Layout = "combustion-medium"
	LayoutCombustionDir    Layout = "combustion-dir"
)

// Detect tells the layout of a file tree.
func DetectLayout(fsys fs.FS) Layout {
	switch {
	case isFile(fsys, "combustion/script") || isFile(fsys, "ignition/config.ign"):
		return LayoutCombustionMedium
	case isFile(fsys, "script"):
		return LayoutCombustionDir
	case isFile(fsys, "user-data") || isFile(fsys, "meta-data"):
		return LayoutNoCloud
	case isDir(fsys, "openstack"):
		return LayoutConfigDrive
	}
	return LayoutNone
}

// Read reads the documents of any supported layout from fsys.
func Read(fsys fs.FS, source string) ([]sources.Document, error) {
	switch DetectLayout(fsys) {
	case LayoutCombustionMedium:
		var docs []sources.Document
		if isDir(fsys, "combustion") {
			sub, err := fs.Sub(fsys, "combustion")
			if err != nil {
				return nil, err
			}
			d, err := ReadTree(sub, source, "combustion/", sources.KindCombustion)
			if err != nil {
				return nil, err
			}
			docs = append(docs, d...)
		}
		if isFile(fsys, "ignition/config.ign") {
			d, err := readDoc(fsys, source, "ignition/config.ign", sources.KindIgnition)
			if err != nil {
				return nil, err
			}
			docs = append(docs, d)
		}
		return docs, nil
	case LayoutCombustionDir:
		return ReadTree(fsys, source, "", sources.KindCombustion)
	case LayoutNoCloud:
		return readFiles(fsys, source, []fileKind{
			{"user-data", sources.KindUserData, true},
			{"meta-data", sources.KindMetaData, true},
			{"vendor-data", sources.KindVendorData, false},
			{"network-config", sources.KindNetworkConfig, false},
		})
	case LayoutConfigDrive:
		version, err := ConfigDriveVersion(fsys)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", source, err)
		}
		p := "openstack/" + version + "/"
		return readFiles(fsys, source, []fileKind{
			{p + "meta_data.json", sources.KindOpenStackMetaData, true},
			{p + "user_data", sources.KindUserData, false},
			{p + "vendor_data.json", sources.KindVendorDataJSON, false},
			{p + "vendor_data2.json", sources.KindVendorData2JSON, false},
			{p + "network_data.json", sources.KindOpenStackNetworkData, false},
		})
	}
	return nil, fmt.Errorf("%s: no user-data/meta-data, combustion/script, script or openstack/ found: %w", source, sources.ErrNotFound)
}

// ConfigDriveVersion picks "latest" when present, else the newest dated
// version directory (names sort as dates).
func ConfigDriveVersion(fsys fs.FS) (string, error) {
	if isDir(fsys, "openstack/latest") {
		return "latest", nil
	}
	entries, err := fs.ReadDir(fsys, "openstack")
	if err != nil {
		return "", fmt.Errorf("openstack/: %w", err)
	}
	var dated []string
	for _, e := range entries {
		if e.IsDir() && len(e.Name()) == 10 && e.Name()[4] == '-' && e.Name()[7] == '-' {
			dated = append(dated, e.Name())
		}
	}
	if len(dated) == 0 {
		return "", errors.New("openstack/ has neither latest/ nor a dated version directory")
	}
	sort.Strings(dated)
	return dated[len(dated)-1], nil
}

type fileKind struct {
	name     string
	kind     sources.Kind
	required bool
}

func readFiles(fsys fs.FS, source string, files []fileKind) ([]sources.Document, error) {
	var docs []sources.Document
	var missing []string
	for _, f := range files {
		if err := statErr(fsys, f.name); err != nil {
			return nil, fmt.Errorf("%s: %w", source, err)
		}
		if !isFile(fsys, f.name) {
			if f.required {
				missing = append(missing, f.name)
			}
			continue
		}
		d, err := readDoc(fsys, source, f.name, f.kind)
		if err != nil {
			return nil, err
		}
		docs = append(docs, d)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s: required file %s is missing", source, joinNames(missing))
	}
	return docs, nil
}

func joinNames(n []string) string {
	s := n[0]
	for _, x := range n[1:] {
		s += " and " + x
	}
	return s
}

// ReadTree reads every regular file below fsys as documents of kind, with
// Origin.File = prefix + relative path. Symlinks are not followed: a seed
// must not pull in files from elsewhere.
func ReadTree(fsys fs.FS, source, prefix string, kind sources.Kind) ([]sources.Document, error) {
	var docs []sources.Document
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			// Skipped, but one leading out of the tree is an error.
			return statErr(fsys, p)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		doc, err := readDoc(fsys, source, p, kind)
		if err != nil {
			return err
		}
		doc.Origin.File = prefix + p
		docs = append(docs, doc)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	return docs, nil
}

func readDoc(fsys fs.FS, source, name string, kind sources.Kind) (sources.Document, error) {
	st, err := fs.Stat(fsys, name)
	if err != nil {
		return sources.Document{}, fmt.Errorf("%s: %s: %w", source, name, err)
	}
	if st.Size() > maxFileSize {
		return sources.Document{}, fmt.Errorf("%s: %s: %d bytes exceeds the %d MiB limit", source, name, st.Size(), maxFileSize>>20)
	}
	data, err := fs.ReadFile(fsys, name)
	if err != nil {
		return sources.Document{}, fmt.Errorf("%s: %s: %w", source, name, err)
	}
	return sources.Document{Origin: config.Origin{Source: source, File: name}, Kind: kind, Data: data}, nil
}

// statErr is the error stat gives name, when it is not simply missing: a
// symlink leading out of a confined tree, a permission problem.
func statErr(fsys fs.FS, name string) error {
	_, err := fs.Stat(fsys, name)
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return fmt.Errorf("%s: %w", name, err)
}

func isFile(fsys fs.FS, name string) bool {
	st, err := fs.Stat(fsys, name)
	return err == nil && st.Mode().IsRegular()
}

func isDir(fsys fs.FS, name string) bool {
	st, err := fs.Stat(fsys, name)
	return err == nil && st.IsDir()
}

// Abs makes a user-given path absolute for origins.
func Abs(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// FileSource is a single local file (a user-data file, a Combustion script,
// an Ignition config); its kind is decided by content.
type FileSource struct {
	Path string
}

// NewFile returns a source for one file.
func NewFile(path string) *FileSource { return &FileSource{Path: path} }

// Name is "file:<path>".
func (s *FileSource) Name() string { return "file:" + s.Path }

// Detect reports Present when the path is a regular file.
func (s *FileSource) Detect(*sources.Facts) sources.Presence {
	if st, err := os.Stat(s.Path); err == nil && st.Mode().IsRegular() {
		return sources.Present
	}
	return sources.Absent
}

// Fetch reads the file as one document of unknown kind.
func (s *FileSource) Fetch(context.Context) ([]sources.Document, error) {
	d, err := readDoc(os.DirFS(filepath.Dir(s.Path)), "file", filepath.Base(s.Path), sources.KindUnknown)
	if err != nil {
		return nil, err
	}
	d.Origin = config.Origin{Source: "file", File: s.Path}
	if looksBinary(d.Data) {
		// A seed image whose filesystem we did not recognise (truncated,
		// corrupt) lands here; parsing its bytes as user-data would end in
		// a confusing "nothing would change".
		return nil, fmt.Errorf("file %s: %w", s.Path, ErrBinary)
	}
	return []sources.Document{d}, nil
}

// ErrBinary is returned (wrapped) for a single file that holds binary data.
var ErrBinary = errors.New("binary data, not a configuration file, and not an image holding a filesystem we read (ISO9660, FAT, or an MBR/GPT partition with one): truncated or corrupt?")

// looksBinary: configuration files are text; gzip-compressed user-data is
// the one binary format cloud-init accepts.
func looksBinary(b []byte) bool {
	if len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b {
		return false
	}
	return bytes.IndexByte(b[:min(len(b), 8192)], 0) >= 0
}
