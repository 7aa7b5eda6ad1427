package provision

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/provision/chroot"
	"github.com/provision-dev/provision/provision/snapshot"
)

// snapperPluginDir is where snapper looks for plugins (SnapperDefines.h).
const snapperPluginDir = "/usr/lib/snapper/plugins"

// snapperPlugins lists the plugins snapper would run in the tree at root:
// every entry whose name starts with a digit, in byte order. The legacy
// grub plugin is reported apart (it only answers --refresh).
func snapperPlugins(root string) (plugins []string, grub bool) {
	ents, err := os.ReadDir(filepath.Join(root, snapperPluginDir))
	if err != nil {
		return nil, false
	}
	for _, e := range ents {
		if n := e.Name(); n != "" && n[0] >= '0' && n[0] <= '9' {
			plugins = append(plugins, n)
		}
	}
	sort.Strings(plugins)
	st, err := os.Stat(filepath.Join(root, snapperPluginDir, "grub"))
	grub = err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0
	return plugins, grub
}

// runSnapperPlugins returns the transaction's plugin runner for the target
// at root, or nil when it has no plugins (then nothing is set up at all).
// Plugins run as snapper runs them on the installed system: chrooted into
// the root being modified (transactional-update's /etc plugin reads "/"
// and "/.snapshots"), with /.snapshots, /proc, /sys and /dev mounted,
// argv "<event> / btrfs <num>", LC_ALL=C; a failure is an error, which
// the transaction treats as snapper's callers do.
func runSnapperPlugins(root string, console io.Writer) func(ctx context.Context, num uint64, snapshotsDir string, events ...string) error {
	plugins, grub := snapperPlugins(root)
	if len(plugins) == 0 && !grub {
		return nil
	}
	if filepath.Clean(root) == "/" {
		// A running system: its snapper runs its plugins itself; a
		// chroot onto "/" would cover the host's /run and /tmp.
		fmt.Fprintf(console, "[WARN] snapper plugins of the running system are not run by provision run --root /\n")
		return nil
	}
	return func(ctx context.Context, num uint64, snapshotsDir string, events ...string) error {
		env, err := chroot.Setup(ctx, root, chroot.Options{NoFstab: true, Log: console,
			Binds: []chroot.Mount{{Target: "/.snapshots", Source: snapshotsDir}}})
		if err != nil {
			return err
		}
		defer env.Close()
		for _, ev := range events {
			var argvs [][]string
			if ev == snapshot.GrubRefresh {
				if grub {
					argvs = append(argvs, []string{snapperPluginDir + "/grub", "--refresh"})
				}
			} else {
				for _, p := range plugins {
					argvs = append(argvs, []string{snapperPluginDir + "/" + p, ev, "/", "btrfs", fmt.Sprint(num)})
				}
			}
			for _, argv := range argvs {
				var out strings.Builder
				code, err := env.Run(ctx, modules.Command{Argv: argv, Env: []string{"LC_ALL=C", "LANGUAGE=C"}, Output: &out})
				mark := "[ OK ]"
				if err != nil || code != 0 {
					mark = "[FAILED]"
				}
				fmt.Fprintf(console, "%s snapper plugin: %s: exit %d\n", mark, strings.Join(argv, " "), code)
				if s := strings.TrimSpace(out.String()); s != "" {
					fmt.Fprintf(console, "%s\n", s)
				}
				if err == nil && code != 0 {
					err = fmt.Errorf("exit status %d", code)
				}
				if err != nil {
					return fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
				}
			}
		}
		return nil
	}
}
