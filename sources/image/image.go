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
	if blockdev.HasLabel(vols, drive.Labels...) {
		docs, err := drive.FromVolumes(ctx, s.Env, vols)
		if err == nil || !errors.Is(err, sources.ErrNotFound) {
			return docs, err
		}
	}
	for _, kind := range []struct {
		labels []string
		read   func(*blockdev.Medium) ([]sources.Document, error)
	}{
		{nocloud.Labels, nocloud.ReadMedium},
		{configdrive.Labels, configdrive.ReadMedium},
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
		return docs, err
	}
	var labels []string
	for _, v := range vols {
		labels = append(labels, fmt.Sprintf("%s: %s %q", v.Name, v.Type, v.Label))
	}
	return nil, fmt.Errorf("image %s: no filesystem with a seed label (found %v): %w", s.Path, labels, sources.ErrNotFound)
}
