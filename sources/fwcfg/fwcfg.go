// Package fwcfg reads configuration passed with QEMU's -fw_cfg: the
// Combustion script (opt/org.opensuse.combustion/script), our extension of
// further Combustion files under opt/org.opensuse.combustion/ and
// opt/io.provision/, and an Ignition config (opt/com.coreos/config), all
// from the qemu_fw_cfg driver's sysfs tree.
package fwcfg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/provision-dev/provision/provision/config"
	"github.com/provision-dev/provision/sources"
	"github.com/provision-dev/provision/sources/blockdev"
)

// ByName is where the qemu_fw_cfg driver lists entries by their names: the
// name's slashes nest directories, and each leaf is a symlink to the entry's
// directory under by_key, whose "raw" file holds the blob.
const ByName = "/sys/firmware/qemu_fw_cfg/by_name"

// Entry-name prefixes (directories under ByName).
const (
	CombustionDir = "opt/org.opensuse.combustion"
	ProvisionDir  = "opt/io.provision"
	IgnitionEntry = "opt/com.coreos/config"
)

// maxEntries bounds how many fw_cfg blobs we read (QEMU allows a few dozen).
const maxEntries = 256

// Source is the fw_cfg source.
type Source struct {
	Prefix string // prepended to ByName for tests
	// MaxFileSize caps each blob; 0 means blockdev.DefaultMaxFileSize.
	MaxFileSize int64
}

func (s *Source) dir() string { return filepath.Join(s.Prefix, ByName) }

// Name implements sources.Source.
func (s *Source) Name() string { return "fwcfg" }

// Detect reports Present when any of our entries exists.
func (s *Source) Detect(*sources.Facts) sources.Presence {
	for _, d := range []string{CombustionDir, ProvisionDir, IgnitionEntry} {
		if _, err := os.Stat(filepath.Join(s.dir(), d)); err == nil {
			return sources.Present
		}
	}
	return sources.Absent
}

// Fetch reads the blobs. Combustion files get Origin{Source: "fwcfg",
// File: path below the prefix}; "script" comes first. The Ignition config
// gets File "opt/com.coreos/config".
func (s *Source) Fetch(ctx context.Context) ([]sources.Document, error) {
	// The root is the driver's directory, not by_name: the leaves of by_name
	// are relative symlinks into by_key (../../by_key/N), which os.Root
	// follows only while they stay inside it.
	root, err := os.OpenRoot(filepath.Dir(s.dir()))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("fwcfg: %w", sources.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("fwcfg: %w", err)
	}
	defer root.Close()
	fsys := root.FS()
	var docs []sources.Document
	seen := map[string]string{}
	count := 0
	byName := filepath.Base(ByName)
	for _, prefix := range []string{CombustionDir, ProvisionDir} {
		prefix := path.Join(byName, prefix)
		err := fs.WalkDir(fsys, prefix, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) && p == prefix {
					return fs.SkipDir
				}
				return err
			}
			// An entry is a symlink to (or, in older kernels' layout, a
			// directory) holding "raw"; names nest as directories.
			if !(d.IsDir() || d.Type()&fs.ModeSymlink != 0) || p == prefix || !hasRaw(fsys, p) {
				return nil
			}
			if count++; count > maxEntries {
				return fmt.Errorf("more than %d fw_cfg entries", maxEntries)
			}
			file := strings.TrimPrefix(p, prefix+"/")
			if other, dup := seen[file]; dup {
				return fmt.Errorf("%s and %s both give combustion file %q", other, p, file)
			}
			seen[file] = p
			b, err := s.read(fsys, p)
			if err != nil {
				return err
			}
			docs = append(docs, sources.Document{
				Origin: config.Origin{Source: "fwcfg", File: file},
				Kind:   sources.KindCombustion,
				Data:   b,
			})
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("fwcfg:%s: %w", strings.TrimPrefix(prefix, byName+"/"), err)
		}
	}
	if ign := path.Join(byName, IgnitionEntry); hasRaw(fsys, ign) {
		b, err := s.read(fsys, ign)
		if err != nil {
			return nil, fmt.Errorf("fwcfg:%s: %w", IgnitionEntry, err)
		}
		docs = append(docs, sources.Document{
			Origin: config.Origin{Source: "fwcfg", File: IgnitionEntry},
			Kind:   sources.KindIgnition,
			Data:   b,
		})
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("fwcfg: %w", sources.ErrNotFound)
	}
	// The script first: it is the document combustion cannot do without.
	for i, d := range docs {
		if d.Kind == sources.KindCombustion && d.Origin.File == "script" && i > 0 {
			copy(docs[1:i+1], docs[:i])
			docs[0] = d
			break
		}
	}
	return docs, nil
}

func hasRaw(fsys fs.FS, entry string) bool {
	st, err := fs.Stat(fsys, path.Join(entry, "raw"))
	return err == nil && !st.IsDir()
}

// read reads an entry's raw blob. sysfs reports size 4096 for every file,
// so the size cap is enforced while reading.
func (s *Source) read(fsys fs.FS, entry string) ([]byte, error) {
	limit := s.MaxFileSize
	if limit <= 0 {
		limit = blockdev.DefaultMaxFileSize
	}
	f, err := fsys.Open(path.Join(entry, "raw"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("blob is more than the %d-byte limit", limit)
	}
	return b, nil
}
