package provision

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/provision-dev/provision/sources"
	"github.com/provision-dev/provision/sources/blockdev"
	"github.com/provision-dev/provision/sources/configdrive"
	"github.com/provision-dev/provision/sources/drive"
	"github.com/provision-dev/provision/sources/fwcfg"
	"github.com/provision-dev/provision/sources/image"
	"github.com/provision-dev/provision/sources/netup"
	"github.com/provision-dev/provision/sources/nocloud"
	"github.com/provision-dev/provision/sources/platform"
)

// Detection is what DetectSources decided, for the report and for tests.
type Detection struct {
	Facts      *sources.Facts
	Sources    []sources.Source
	Reasons    []string
	NeedsNet   bool
	NetStarted bool
}

// DetectSources decides from local facts which sources to read, in SPEC §3
// precedence: kernel URL > fw_cfg > labelled drive > NoCloud line > NoCloud
// drive > ConfigDrive > metadata service > seed dir. Nothing here touches
// the network; when a chosen source needs it, bringUp is called once.
func DetectSources(ctx context.Context, prefix, root string, bringUp func(ctx context.Context) error) (*Detection, error) {
	facts, err := platform.Read(prefix)
	if err != nil {
		return nil, fmt.Errorf("reading platform facts: %w", err)
	}
	// One scan of the block devices for every label-based source.
	env := blockdev.Env{Prefix: prefix, Scan: &blockdev.Scan{}}
	det := &Detection{Facts: facts}

	fw := &fwcfg.Source{Prefix: prefix}
	drv := &drive.Source{Env: env}
	ncDrive := &nocloud.Drive{Env: env}
	cd := &configdrive.Source{Env: env}
	seed := &nocloud.SeedDir{Root: root}

	local := func(s sources.Source) bool {
		p := s.Detect(facts)
		if p != sources.Absent {
			det.Reasons = append(det.Reasons, fmt.Sprintf("%s: %s", s.Name(), p))
		}
		return p != sources.Absent
	}
	hasConfigDrive := local(cd)
	cands, derr := platform.Decide(facts, hasConfigDrive)

	var kernelURL, line, metadata []sources.Source
	for _, c := range cands {
		det.Reasons = append(det.Reasons, fmt.Sprintf("%s: %s (%s)", c.Source.Name(), c.Presence, c.Reason))
		switch c.Source.Name() {
		case "url":
			kernelURL = append(kernelURL, c.Source)
		case "nocloud-line":
			line = append(line, c.Source)
		default:
			metadata = append(metadata, c.Source)
		}
	}
	det.Sources = append(det.Sources, kernelURL...)
	if local(fw) {
		det.Sources = append(det.Sources, fw)
	}
	if local(drv) {
		det.Sources = append(det.Sources, drv)
	}
	det.Sources = append(det.Sources, line...)
	if local(ncDrive) {
		det.Sources = append(det.Sources, ncDrive)
	}
	if hasConfigDrive {
		det.Sources = append(det.Sources, cd)
	}
	det.Sources = append(det.Sources, metadata...)
	if root != "" && local(seed) {
		det.Sources = append(det.Sources, seed)
	}

	det.NeedsNet = platform.NeedsNetwork(cands)
	if det.NeedsNet && bringUp != nil {
		if err := bringUp(ctx); err != nil {
			return det, fmt.Errorf("bringing up the network for %v: %w", names(cands), err)
		}
		det.NetStarted = true
	}
	return det, derr
}

func names(c []platform.Candidate) []string {
	var out []string
	for _, x := range c {
		out = append(out, x.Source.Name())
	}
	return out
}

// initrdNetwork brings up NICs with DHCP in the initrd, writing the
// initrd's resolv.conf; links already configured are left alone.
func initrdNetwork(console io.Writer) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		_, err := netup.Up(ctx, netup.Config{
			ResolvConf:     "/etc/resolv.conf",
			CarrierTimeout: 10 * time.Second,
			DHCPTimeout:    30 * time.Second,
			Logf: func(format string, args ...any) {
				fmt.Fprintf(console, "[ OK ] network: "+format+"\n", args...)
			},
		})
		return err
	}
}

// localSource resolves a --source path: a directory, an image file or block
// device holding a seed, or a single config file.
func localSource(path string) (sources.Source, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", path, err)
	}
	switch {
	case st.IsDir():
		return dirSource(path), nil
	case st.Mode()&os.ModeDevice != 0:
		return &image.Source{Path: path}, nil
	case st.Mode().IsRegular():
		if vols, err := blockdev.ScanImage(path); err == nil && len(vols) > 0 {
			return &image.Source{Path: path}, nil
		}
		return fileSource(path), nil
	}
	return nil, fmt.Errorf("source %s: not a directory, image, block device or file", path)
}
