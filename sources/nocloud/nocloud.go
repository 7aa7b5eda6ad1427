// Package nocloud reads cloud-init NoCloud seeds without network: a drive
// labelled cidata/CIDATA (vfat or iso9660) and the seed directories
// /var/lib/cloud/seed/nocloud and nocloud-net in the target root. ReadFS
// reads a NoCloud file set from any fs.FS, so other sources (the NoCloud
// line's file:// seeds, image files, directories) reuse it.
package nocloud

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"

	"github.com/provision-dev/provision/provision/config"
	"github.com/provision-dev/provision/sources"
	"github.com/provision-dev/provision/sources/blockdev"
)

// Labels a NoCloud drive may carry; cloud-init accepts exactly these two.
var Labels = []string{"cidata", "CIDATA"}

// Files of a NoCloud seed, in the order documents are returned.
var files = []struct {
	name     string
	kind     sources.Kind
	required bool
}{
	{"meta-data", sources.KindMetaData, true},
	{"user-data", sources.KindUserData, true},
	{"vendor-data", sources.KindVendorData, false},
	{"network-config", sources.KindNetworkConfig, false},
}

// ErrIncomplete means a seed was found but lacks a required file.
var ErrIncomplete = errors.New("incomplete NoCloud seed")

// ReadFS reads a NoCloud file set from dir in fsys ("." for its root).
// source names it in origins ("nocloud:/dev/vdb"). It returns
// sources.ErrNotFound when none of the files is there, and an error naming
// the missing file when only one of user-data and meta-data is.
func ReadFS(fsys fs.FS, dir, source string, limit int64) ([]sources.Document, error) {
	var docs []sources.Document
	var missing []string
	for _, f := range files {
		name := path.Join(dir, f.name)
		b, err := blockdev.ReadFileLimit(fsys, name, limit)
		if errors.Is(err, fs.ErrNotExist) {
			if f.required {
				missing = append(missing, f.name)
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s:%s: %w", source, f.name, err)
		}
		docs = append(docs, sources.Document{
			Origin: config.Origin{Source: source, File: f.name},
			Kind:   f.kind,
			Data:   b,
		})
	}
	switch {
	case len(docs) == 0:
		return nil, fmt.Errorf("%s: %w", source, sources.ErrNotFound)
	case len(missing) > 0:
		verb := "is"
		if len(missing) > 1 {
			verb = "are"
		}
		return nil, fmt.Errorf("%s: %w: %s %s missing (NoCloud needs both user-data and meta-data; an empty file will do)",
			source, ErrIncomplete, strings.Join(missing, " and "), verb)
	}
	return docs, nil
}

// ReadMedium reads the NoCloud files at the root of a medium, naming the
// origin "nocloud:<device>".
func ReadMedium(m *blockdev.Medium) ([]sources.Document, error) {
	return ReadFS(m, ".", "nocloud:"+m.Name, 0)
}

// Drive is the NoCloud drive source.
type Drive struct {
	Env blockdev.Env
	// wait is how long Fetch waits for the drive; set by Detect when the
	// kernel command line says a drive should come.
	wait time.Duration
}

// Name implements sources.Source.
func (d *Drive) Name() string { return "nocloud-drive" }

// Detect looks for a cidata/CIDATA filesystem now; when there is none but
// the command line says one should come (`ds=nocloud` without a seed URL,
// or provision.device_timeout=), it answers Maybe and Fetch waits.
func (d *Drive) Detect(f *sources.Facts) sources.Presence {
	d.wait = 0
	if vols, err := blockdev.ScanDevices(d.Env); err == nil && blockdev.HasLabel(vols, Labels...) {
		return sources.Present
	}
	timeout, asked := blockdev.DeviceTimeout(f.Cmdline)
	if asked || wantsLocalNoCloud(f) {
		d.wait = timeout
		return sources.Maybe
	}
	return sources.Absent
}

// wantsLocalNoCloud: "ds=nocloud" with no seedfrom names the drive (or a
// seed dir) as the place to look, on the command line or in the SMBIOS
// serial as cloud-init reads it.
func wantsLocalNoCloud(f *sources.Facts) bool {
	words := append([]string(nil), f.Cmdline...)
	if s := f.DMI["product_serial"]; s != "" {
		words = append(words, strings.Fields(s)...)
	}
	for _, w := range words {
		v, ok := strings.CutPrefix(w, "ds=")
		if !ok {
			continue
		}
		parts := strings.Split(v, ";")
		if !strings.EqualFold(parts[0], "nocloud") {
			continue
		}
		local := true
		for _, p := range parts[1:] {
			if strings.HasPrefix(p, "s=") || strings.HasPrefix(p, "seedfrom=") {
				local = false
			}
		}
		if local {
			return true
		}
	}
	return false
}

// Fetch reads the first cidata/CIDATA drive (cidata first, then sysfs order).
func (d *Drive) Fetch(ctx context.Context) ([]sources.Document, error) {
	m, err := blockdev.FindByLabel(ctx, d.Env, Labels, d.wait)
	if errors.Is(err, blockdev.ErrNoDevice) {
		return nil, fmt.Errorf("nocloud drive: %w", sources.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("nocloud drive: %w", err)
	}
	defer m.Close()
	return ReadMedium(m)
}

// SeedDirs are cloud-init's NoCloud seed directories, in the order it
// tries them; the first complete one wins.
var SeedDirs = []string{"var/lib/cloud/seed/nocloud", "var/lib/cloud/seed/nocloud-net"}

// SeedDir is the source for the seed directories in the target root.
type SeedDir struct {
	Root string // the target root, e.g. /sysroot
}

// Name implements sources.Source.
func (s *SeedDir) Name() string { return "nocloud-seed" }

// Detect implements sources.Source: present when a seed directory exists.
func (s *SeedDir) Detect(*sources.Facts) sources.Presence {
	for _, d := range SeedDirs {
		if st, err := os.Stat(s.Root + "/" + d); err == nil && st.IsDir() {
			return sources.Present
		}
	}
	return sources.Absent
}

// Fetch reads the first complete seed directory. The target root is opened
// as an os.Root so a symlink in it cannot lead outside.
func (s *SeedDir) Fetch(ctx context.Context) ([]sources.Document, error) {
	root, err := os.OpenRoot(s.Root)
	if err != nil {
		return nil, fmt.Errorf("nocloud seed: %w", err)
	}
	defer root.Close()
	fsys := root.FS()
	var firstErr error
	for _, d := range SeedDirs {
		docs, err := ReadFS(fsys, d, "nocloud:/"+d, 0)
		if err == nil {
			return docs, nil
		}
		if !errors.Is(err, sources.ErrNotFound) && firstErr == nil {
			firstErr = err
		}
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return nil, fmt.Errorf("nocloud seed: %w", sources.ErrNotFound)
}
