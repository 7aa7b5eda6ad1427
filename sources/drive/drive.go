// Package drive reads a Combustion/Ignition configuration drive: a
// filesystem labelled combustion, ignition or install (lower or upper case),
// as openSUSE's combustion finds it. Its combustion/ directory (script and
// every sibling file) and ignition/config.ign are the documents.
package drive

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/provision-dev/provision/provision/config"
	"github.com/provision-dev/provision/sources"
	"github.com/provision-dev/provision/sources/blockdev"
)

// Labels in the order combustion tries them. "install" is the label of KIWI
// self-install ISOs, used only when it carries a combustion/ directory.
var Labels = []string{"combustion", "COMBUSTION", "ignition", "IGNITION", "install", "INSTALL"}

// IgnitionLabels are the labels Ignition's own disk provider reads
// ignition/config.ign from.
var IgnitionLabels = []string{"ignition", "IGNITION"}

const (
	combustionDir  = "combustion"
	ignitionConfig = "ignition/config.ign"
)

// ReadMedium reads the combustion/ tree and ignition/config.ign from fsys.
// device names the medium in origins: combustion files get Source
// "combustion:<device>" and File relative to combustion/ ("script",
// "ssh/key.pub"); the Ignition config gets "ignition:<device>".
// hasCombustion reports whether a combustion/ directory was there — the
// test combustion uses to pick a drive.
func ReadMedium(fsys fs.FS, device string, limit int64) (docs []sources.Document, hasCombustion bool, err error) {
	st, err := fs.Stat(fsys, combustionDir)
	if err == nil && st.IsDir() {
		hasCombustion = true
		src := "combustion:" + device
		err = walk(fsys, combustionDir, func(p string) error {
			b, err := blockdev.ReadFileLimit(fsys, p, limit)
			if err != nil {
				return fmt.Errorf("%s:%s: %w", src, strings.TrimPrefix(p, combustionDir+"/"), err)
			}
			docs = append(docs, sources.Document{
				Origin: config.Origin{Source: src, File: strings.TrimPrefix(p, combustionDir+"/")},
				Kind:   sources.KindCombustion,
				Data:   b,
			})
			return nil
		})
		if err != nil {
			return nil, true, err
		}
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, false, fmt.Errorf("combustion:%s: %w", device, err)
	}
	b, err := blockdev.ReadFileLimit(fsys, ignitionConfig, limit)
	switch {
	case err == nil:
		docs = append(docs, sources.Document{
			Origin: config.Origin{Source: "ignition:" + device, File: ignitionConfig},
			Kind:   sources.KindIgnition,
			Data:   b,
		})
	case !errors.Is(err, fs.ErrNotExist):
		return nil, hasCombustion, fmt.Errorf("ignition:%s:%s: %w", device, ignitionConfig, err)
	}
	return docs, hasCombustion, nil
}

// walk calls fn for every regular file below dir, in lexical order. A
// Medium bounds depth and count itself; other file systems are walked with
// fs.WalkDir (sysfs and os.Root trees have no cycles).
func walk(fsys fs.FS, dir string, fn func(path string) error) error {
	visit := func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && d.Type().IsRegular() {
			return fn(p)
		}
		return nil // directories are descended; symlinks and devices are not content
	}
	if m, ok := fsys.(*blockdev.Medium); ok {
		return m.Walk(dir, visit)
	}
	return fs.WalkDir(fsys, dir, visit)
}

// Source is the labelled-drive source.
type Source struct {
	Env  blockdev.Env
	wait time.Duration
}

// Name implements sources.Source.
func (s *Source) Name() string { return "drive" }

// Detect looks for a filesystem with one of Labels now. Without one it
// answers Maybe when provision.device_timeout= is on the command line (a
// USB stick on a slow bus), and Absent otherwise.
func (s *Source) Detect(f *sources.Facts) sources.Presence {
	s.wait = 0
	if vols, err := blockdev.ScanDevices(s.Env); err == nil && blockdev.HasLabel(vols, Labels...) {
		return sources.Present
	}
	if timeout, asked := blockdev.DeviceTimeout(f.Cmdline); asked {
		s.wait = timeout
		return sources.Maybe
	}
	return sources.Absent
}

// Fetch tries the drives in label order; the first with a combustion/
// directory wins and its ignition/config.ign comes along. With no such
// drive, the first ignition-labelled drive holding ignition/config.ign
// gives the Ignition config alone, as Ignition's disk provider would.
func (s *Source) Fetch(ctx context.Context) ([]sources.Document, error) {
	vols, err := blockdev.FindAllByLabel(ctx, s.Env, Labels, s.wait)
	if errors.Is(err, blockdev.ErrNoDevice) {
		return nil, fmt.Errorf("drive: %w", sources.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("drive: %w", err)
	}
	return FromVolumes(ctx, s.Env, vols)
}

// FromVolumes applies the drive rules to volumes already found (devices, or
// the filesystems of an image file).
func FromVolumes(ctx context.Context, env blockdev.Env, vols []blockdev.Volume) ([]sources.Document, error) {
	var ignitionOnly []sources.Document
	var errs []error
	for _, v := range blockdev.SelectByLabel(vols, Labels) {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("drive: %w", err)
		}
		m, err := env.Open(ctx, v)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		docs, hasCombustion, err := ReadMedium(m, m.Name, 0)
		m.Close()
		if err != nil {
			return nil, err
		}
		if hasCombustion {
			return docs, nil
		}
		isIgnitionLabel := v.Label == IgnitionLabels[0] || v.Label == IgnitionLabels[1]
		if ignitionOnly == nil && isIgnitionLabel && len(docs) > 0 {
			ignitionOnly = docs
		}
	}
	if ignitionOnly != nil {
		return ignitionOnly, nil
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("drive: %w", errors.Join(errs...))
	}
	return nil, fmt.Errorf("drive: no combustion/ directory on any labelled drive: %w", sources.ErrNotFound)
}
