// Package image is the dry run's --source PATH for an image file or a block
// device: an ISO, a FAT stick image, or a whole-disk image with an MBR or
// GPT table. It finds the filesystem with a known label and reads it with
// the rules of the source that label belongs to, so a seed behaves the same
// attached to a VM and checked on a workstation (FAT and ISO need no root).
package image

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/provision-dev/provision/sources"
	"github.com/provision-dev/provision/sources/blockdev"
	"github.com/provision-dev/provision/sources/configdrive"
	"github.com/provision-dev/provision/sources/drive"
	"github.com/provision-dev/provision/sources/nocloud"
)

// Source reads one image file or block device.
type Source struct {
	Path string
	Env  blockdev.Env
}

// Name implements sources.Source.
func (s *Source) Name() string { return "image:" + s.Path }

// Detect is Present for a regular file or a block device.
func (s *Source) Detect(*sources.Facts) sources.Presence {
	st, err := os.Stat(s.Path)
	if err != nil || st.IsDir() {
		return sources.Absent
	}
	if st.Mode().IsRegular() || st.Mode()&os.ModeDevice != 0 {
		return sources.Present
	}
	return sources.Absent
}

// Fetch scans the image and reads the first kind of seed it holds, in the
// product's precedence: labelled drive (combustion, ignition, install),
// then NoCloud (cidata), then ConfigDrive (config-2).
func (s *Source) Fetch(ctx context.Context) ([]sources.Document, error) {
	vols, err := blockdev.ScanImage(s.Path)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", s.Path, err)
	}
	// A filesystem labelled for a seed that yields nothing is corrupt or
	// made wrongly: the user named this image, so say so instead of
	// reporting "nothing to do" (which is right for an unlabelled image).
	var empty []string
	if blockdev.HasLabel(vols, drive.Labels...) {
		docs, err := drive.FromVolumes(ctx, s.Env, vols)
		if err == nil || !errors.Is(err, sources.ErrNotFound) {
			return docs, err
		}
		for _, v := range blockdev.SelectByLabel(vols, drive.Labels) {
			empty = append(empty, fmt.Sprintf("%s (%s %q) has no combustion/ directory nor ignition/config.ign", v.Name, v.Type, v.Label))
		}
	}
	for _, kind := range []struct {
		labels []string
		read   func(*blockdev.Medium) ([]sources.Document, error)
		want   string
	}{
		{nocloud.Labels, nocloud.ReadMedium, "neither user-data nor meta-data at its root"},
		{configdrive.Labels, configdrive.ReadMedium, "no openstack/latest/ or dated openstack/ version directory"},
	} {
		sel := blockdev.SelectByLabel(vols, kind.labels)
		if len(sel) == 0 {
			continue
		}
		m, err := s.Env.Open(ctx, sel[0])
		if err != nil {
			return nil, err
		}
		docs, err := kind.read(m)
		m.Close()
		if errors.Is(err, sources.ErrNotFound) {
			empty = append(empty, fmt.Sprintf("%s (%s %q) has %s", sel[0].Name, sel[0].Type, sel[0].Label, kind.want))
			break
		}
		return docs, err
	}
	if len(empty) > 0 {
		return nil, fmt.Errorf("image %s: %w: %s", s.Path, ErrEmptySeed, strings.Join(empty, "; "))
	}
	var labels []string
	for _, v := range vols {
		labels = append(labels, fmt.Sprintf("%s: %s %q", v.Name, v.Type, v.Label))
	}
	return nil, fmt.Errorf("image %s: no filesystem with a seed label (found %v): %w", s.Path, labels, sources.ErrNotFound)
}

// ErrEmptySeed is returned (wrapped) when a filesystem of the image carries
// a seed label but none of that seed's files: a corrupt or wrongly made seed.
var ErrEmptySeed = errors.New("seed label without a seed (corrupt, or files copied to the wrong place?)")
