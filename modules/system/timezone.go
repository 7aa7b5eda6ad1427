package system

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/provision/config"
)

// ZoneinfoDir is where the target's tzdata lives; /etc/localtime points
// into it with the relative link timedatectl makes.
const ZoneinfoDir = "/usr/share/zoneinfo"

// checkZone verifies that the TARGET has tz as a TZif file: the host's
// tzdata says nothing about what the booted system can load.
func checkZone(root *rootfs.Root, tz string) error {
	if err := config.CheckTimezoneName(tz); err != nil {
		return err
	}
	p := ZoneinfoDir + "/" + tz
	host, err := root.ResolveFollow(p)
	if err != nil {
		return fmt.Errorf("timezone %q: %w", tz, err)
	}
	// Read as every target file is (rootfs.ReadRegular): a FIFO planted
	// there must not block the run, nor a device feed it forever.
	data, err := rootfs.ReadRegular(p, host, maxZoneFile)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("unknown timezone %q: %s does not exist in the target", tz, p)
	}
	if errors.Is(err, rootfs.ErrNotRegular) || err == nil && !bytes.HasPrefix(data, []byte("TZif")) {
		return fmt.Errorf("unknown timezone %q: %s is not a TZif zone file", tz, p)
	}
	if err != nil {
		return fmt.Errorf("timezone %q: %w", tz, err)
	}
	return nil
}

// maxZoneFile bounds a zone file's read: the largest in tzdata are a few
// kilobytes.
const maxZoneFile = 1 << 20

func planTimezone(s *config.System, root *rootfs.Root) ([]modules.Step, error) {
	if !s.Timezone.IsSet() {
		return nil, nil
	}
	tz, origin := s.Timezone.Value, s.Timezone.Origin
	if err := config.CheckTimezoneName(tz); err != nil {
		return nil, fmt.Errorf("%s: %w", origin, err)
	}
	link := ".." + ZoneinfoDir + "/" + tz
	var steps []modules.Step
	linkStep := modules.Step{
		Module: "system",
		Action: "set timezone",
		Target: "/etc/localtime",
		Detail: tz + " (-> " + link + ")",
		Origin: origin,
		Apply: func(ctx context.Context, env *modules.Env) error {
			if err := checkZone(env.Root, tz); err != nil {
				return fmt.Errorf("%s: %w", origin, err)
			}
			if err := env.Root.Symlink(link, "/etc/localtime"); err != nil {
				return fmt.Errorf("%s: set timezone: %w", origin, err)
			}
			return nil
		},
	}
	if root == nil {
		steps = append(steps, linkStep)
	} else {
		if err := checkZone(root, tz); err != nil {
			return nil, fmt.Errorf("%s: %w", origin, err)
		}
		if !linkInPlace(root, link) {
			steps = append(steps, linkStep)
		}
	}
	// Debian keeps the name in /etc/timezone as well (tzdata's postinst
	// reads it); write it only where the distribution has one.
	tzfile, err := edit{
		action:       "set timezone",
		path:         "/etc/timezone",
		origin:       origin,
		detail:       tz,
		onlyIfExists: true,
		render:       func([]byte, *rootfs.Root) ([]byte, error) { return []byte(tz + "\n"), nil },
	}.plan(root)
	if err != nil {
		return nil, err
	}
	return append(steps, tzfile...), nil
}

func linkInPlace(root *rootfs.Root, link string) bool {
	host, err := root.Resolve("/etc/localtime")
	if err != nil {
		return false
	}
	got, err := os.Readlink(host)
	return err == nil && got == link
}
