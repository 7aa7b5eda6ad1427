package disk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/provision/config"
)

// growrootDisabled in the target turns growpart off (cloud-init's and
// cloud-initramfs-growroot's convention).
const growrootDisabled = "/etc/growroot-disabled"

// Plan plans growpart and resize_rootfs. Both act on the disk, outside
// any snapshot, so the engine applies these steps after the commit.
// mount is the target root's mount point, live (the initrd's /sysroot);
// "" for a dry run, whose steps say what is decided at boot.
//
// When a configuration gives either key, the other takes cloud-init's
// default (growpart auto on "/", resize_rootfs true): the two are one
// request, "use the whole disk". A configuration that gives neither
// leaves the disk alone, unlike cloud-init, which grows on every first
// boot: the image's own first-boot tools (systemd-repart, growroot)
// decide that.
func Plan(cfg *config.Config, mount string) ([]modules.Step, error) {
	gp, rs := cfg.Growpart, cfg.ResizeRootfs
	if gp == nil && rs == nil {
		return nil, nil
	}
	if gp == nil {
		gp = &config.Growpart{Origin: rs.Origin, Mode: "auto", Devices: []string{"/"}}
	}
	if rs == nil {
		rs = &config.ResizeRootfs{Origin: gp.Origin, Mode: "true"}
	}
	var steps []modules.Step
	if gp.Mode != "off" {
		steps = append(steps, planGrow(gp, mount)...)
	}
	if rs.Enabled() {
		steps = append(steps, planResize(rs, mount))
	}
	return steps, nil
}

func planGrow(gp *config.Growpart, mount string) []modules.Step {
	if mount != "" && !gp.IgnoreGrowrootDisabled {
		if r, err := rootfs.New(mount); err == nil && r.Exists(growrootDisabled) {
			return []modules.Step{{
				Module: "disk", Action: "leave", Target: "the partitions", Origin: gp.Origin,
				Detail: "growpart: the target has " + growrootDisabled + " (ignore_growroot_disabled: true overrides it)",
				Apply:  func(context.Context, *modules.Env) error { return nil },
			}}
		}
	}
	var steps []modules.Step
	for _, dev := range gp.Devices {
		steps = append(steps, planGrowDevice(gp.Origin, dev, mount)...)
	}
	return steps
}

// planGrowDevice finds the partition(s) of one growpart device: a
// device path, or a mount point of the target (every device of a btrfs).
func planGrowDevice(origin config.Origin, dev, mount string) []modules.Step {
	if mount == "" {
		return []modules.Step{{
			Module: "disk", Action: "grow the partition of", Target: dev, Origin: origin,
			Detail: "to the end of the free space behind it, after the commit: decided at boot",
		}}
	}
	parts, err := partitionsOf(dev, mount)
	if err != nil {
		return []modules.Step{{
			Module: "disk", Action: "grow the partition of", Target: dev, Origin: origin,
			Detail: "after the commit; " + err.Error(),
			Apply: func(_ context.Context, env *modules.Env) error {
				if errors.Is(err, ErrNotPartition) {
					say(env.Console, "SKIPPED: %s: %v", dev, err)
					return nil
				}
				return err
			},
		}}
	}
	var steps []modules.Step
	for _, p := range parts {
		detail := "to the end of the disk, after the commit"
		if g, err := GrowLive(p, true); err != nil {
			detail += "; " + err.Error()
		} else if g.Changed() {
			detail = fmt.Sprintf("to the end of the disk: +%s, after the commit", size(g.Added()))
		} else {
			detail = "already at the end of the disk (" + g.NoChange + ")"
		}
		steps = append(steps, modules.Step{
			Module: "disk", Action: "grow", Target: p.String(), Origin: origin, Detail: detail,
			Apply: func(_ context.Context, env *modules.Env) error {
				g, err := GrowLive(p, false)
				if err != nil {
					return err
				}
				say(env.Console, "%s: %s", p.Dev, g)
				return nil
			},
		})
	}
	return steps
}

// partitionsOf resolves a growpart device entry.
func partitionsOf(dev, mount string) ([]Partition, error) {
	if strings.HasPrefix(dev, "/dev/") {
		rdev, err := DeviceNumber(dev)
		if err != nil {
			return nil, err
		}
		p, err := PartitionOf(rdev)
		if err != nil {
			return nil, err
		}
		return []Partition{p}, nil
	}
	m, err := MountAt(path.Join(mount, dev))
	if err != nil {
		return nil, fmt.Errorf("the target's %s: %w", dev, err)
	}
	var parts []Partition
	for _, d := range m.Devs {
		p, err := PartitionOf(d.Rdev)
		if err != nil {
			return nil, fmt.Errorf("the target's %s (%s on %s): %w", dev, m.FSType, d.Node, err)
		}
		parts = append(parts, p)
	}
	return parts, nil
}

func planResize(rs *config.ResizeRootfs, mount string) modules.Step {
	s := modules.Step{
		Module: "disk", Action: "grow filesystem", Target: "/", Origin: rs.Origin,
		Detail: "the root filesystem to the end of its partition(s), after the commit",
	}
	if rs.Mode == "noblock" {
		s.Detail += " (noblock: an online resize returns at once, so it is waited for)"
	}
	if mount == "" {
		s.Detail += ": decided at boot"
		return s
	}
	m, err := MountAt(mount)
	if err == nil && m.FSType != "btrfs" {
		err = fmt.Errorf("growing %s is not supported by provision (only btrfs grows online without a program): run %s in the booted system", m.FSType, resizeTool(m.FSType))
	}
	if err != nil {
		s.Detail += "; " + err.Error()
		s.Apply = func(context.Context, *modules.Env) error { return err }
		return s
	}
	s.Apply = func(_ context.Context, env *modules.Env) error {
		for _, d := range m.Devs {
			before, after, err := ResizeBtrfs(m.Point, d.DevID)
			if err != nil {
				return err
			}
			if after == before {
				say(env.Console, "NOCHANGE: btrfs device %d (%s) is %s, the size of its partition", d.DevID, d.Node, size(int64(after)))
				continue
			}
			say(env.Console, "RESIZED: btrfs device %d (%s) from %s to %s", d.DevID, d.Node, size(int64(before)), size(int64(after)))
		}
		return nil
	}
	return s
}

func resizeTool(fstype string) string {
	switch fstype {
	case "ext2", "ext3", "ext4":
		return "resize2fs"
	case "xfs":
		return "xfs_growfs"
	}
	return "its resize tool"
}

func say(w io.Writer, format string, args ...any) {
	if w != nil {
		fmt.Fprintln(w, modules.Printable(fmt.Sprintf(format, args...)))
	}
}

// size prints bytes in binary units, one decimal.
func size(b int64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	div, exp := int64(unit), 0
	for n := b / unit; n >= unit && exp < 4; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(b)/float64(div), "KMGTP"[exp])
}
