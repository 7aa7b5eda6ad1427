// Package mounts applies cloud-init's mounts and swap (cc_mounts): fstab
// lines appended to the target's /etc/fstab, marked with
// comment=cloudconfig in their options as cloud-init marks them (so its
// users' tools still recognise them, and a later run replaces them instead
// of adding copies), the mount points created, and a swap file made as
// btrfs needs one. The image's own fstab lines are kept byte for byte.
//
// It reads and escapes fstab with modules/fstab, the one parser of the
// mount table, which the engine uses too.
package mounts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/modules/fstab"
	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/provision/config"
)

const module = "mounts"

// Marker is cloud-init's MNT_COMMENT: every line it (and provision) adds
// carries it, and every line carrying it is a previous run's.
const Marker = "comment=cloudconfig"

const fstabPath = "/etc/fstab"

// Plan returns the swap file, the mount points and the fstab write for
// cfg.Mounts and cfg.Swap; nothing that is already in place is planned.
func Plan(cfg *config.Config, root *rootfs.Root) ([]modules.Step, error) {
	if cfg.Mounts == nil && cfg.Swap == nil {
		return nil, nil
	}
	var steps []modules.Step
	var entries []config.MountEntry
	origin := config.Origin{}
	if cfg.Mounts != nil {
		entries, origin = cfg.Mounts.Entries, cfg.Mounts.Origin
	}
	swapPath := ""
	if s := cfg.Swap; s != nil {
		if origin == (config.Origin{}) {
			origin = s.Origin
		}
		st, p, err := planSwap(s, root)
		if err != nil {
			return nil, err
		}
		steps = append(steps, st...)
		swapPath = p
	}
	if root == nil {
		return append(steps, modules.Step{Module: module, Action: "add to", Target: fstabPath, Origin: origin,
			Detail: fmt.Sprintf("%d lines marked %s", len(entries), Marker)}), nil
	}
	old, err := readFstab(root)
	if err != nil {
		return nil, fmt.Errorf("%s: mounts: %w", origin, err)
	}
	// A mount point the image's own lines already mount is left to them:
	// systemd-fstab-generator refuses a second line for it, so the
	// cloud-init way of adding one anyway would lose one of the two.
	imageMounts := map[string]int{}
	if image, err := fstab.Parse(fstabPath, render(old, nil, "")); err == nil {
		for _, e := range image {
			imageMounts[path.Clean(e.File)] = e.Line
		}
	}
	kept := entries[:0:0]
	for _, e := range entries {
		if line, dup := imageMounts[path.Clean(e.File)]; dup && strings.HasPrefix(e.File, "/") {
			steps = append(steps, modules.Step{
				Module: module, Action: "not added: warning", Target: e.File, Origin: e.Origin,
				Detail: fmt.Sprintf("%s line %d already mounts it; a second line would be refused at boot", fstabPath, line),
				Apply: func(_ context.Context, env *modules.Env) error {
					if env.Console != nil {
						fmt.Fprintf(env.Console, "[WARN] mounts: %s: %s line %d already mounts it: not added [%s]\n", e.File, fstabPath, line, e.Origin)
					}
					return nil
				},
			})
			continue
		}
		kept = append(kept, e)
	}
	entries = kept
	for _, e := range entries {
		if !strings.HasPrefix(e.File, "/") {
			continue // none, swap: not a directory
		}
		st, err := root.Stat(e.File)
		if err == nil && st.IsDir() {
			continue
		}
		e := e
		// cloud-init logs a mount point it cannot make (a file is there:
		// its own example mounts onto /dev/zero) and goes on; the fstab
		// line is written all the same.
		notDir := func(env *modules.Env) bool {
			st, err := env.Root.Stat(e.File)
			if err != nil || st.IsDir() {
				return false
			}
			if env.Console != nil {
				fmt.Fprintf(env.Console, "[WARN] mounts: %s exists and is not a directory: no mount point made [%s]\n", e.File, e.Origin)
			}
			return true
		}
		if err == nil {
			steps = append(steps, modules.Step{
				Module: module, Action: "not created: warning", Target: e.File, Origin: e.Origin,
				Detail: "exists and is not a directory: no mount point made",
				Apply: func(_ context.Context, env *modules.Env) error {
					notDir(env)
					return nil
				},
			})
			continue
		}
		steps = append(steps, modules.Step{
			Module: module, Action: "create mount point", Target: e.File, Origin: e.Origin,
			Apply: func(_ context.Context, env *modules.Env) error {
				// (Checked again: the API file systems a run mounts, /dev
				// above all, were not there when the plan was made.)
				if notDir(env) {
					return nil
				}
				return env.Root.MkdirAll(e.File, 0o755, rootfs.RootOwner)
			},
		})
	}
	// Planned with the swap line when a swap file is planned; applied
	// with it only when the file is there by then (size auto may come to 0).
	want := render(old, entries, swapPath)
	if bytes.Equal(old, want) {
		return steps, nil
	}
	added, removed := lineDiff(old, want)
	steps = append(steps, modules.Step{
		Module: module, Action: "write", Target: fstabPath, Origin: origin,
		Detail: fmt.Sprintf("%d lines added, %d of a previous run removed, all marked %s; the image's lines kept", added, removed, Marker),
		Apply: func(_ context.Context, env *modules.Env) error {
			old, err := readFstab(env.Root)
			if err != nil {
				return err
			}
			sp := swapPath
			if sp != "" && !env.Root.Exists(sp) {
				sp = ""
			}
			want := render(old, entries, sp)
			if bytes.Equal(old, want) {
				return nil
			}
			return env.Root.WriteFile(fstabPath, want, 0o644, rootfs.RootOwner)
		},
	})
	return steps, nil
}

// readFstab reads the target's fstab ("" when it has none) and checks it
// parses, so provision never appends to a file mount would reject.
func readFstab(root *rootfs.Root) ([]byte, error) {
	b, err := root.ReadFile(fstabPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if _, err := fstab.Parse(fstabPath, b); err != nil {
		return nil, err
	}
	return b, nil
}

// render is old without the lines of a previous run (cloud-init drops every
// line containing the marker), then one line per entry and the swap file's,
// tab-separated as cloud-init writes them, the first two fields escaped.
func render(old []byte, entries []config.MountEntry, swapPath string) []byte {
	var b bytes.Buffer
	for _, line := range strings.SplitAfter(string(old), "\n") {
		if line == "" || strings.Contains(line, Marker) {
			continue
		}
		b.WriteString(line)
	}
	if b.Len() > 0 && !bytes.HasSuffix(b.Bytes(), []byte("\n")) {
		b.WriteByte('\n')
	}
	for _, e := range entries {
		fmt.Fprintf(&b, "%s\t%s\t%s\t%s,%s\t%s\t%s\n", fstab.Escape(e.Spec), fstab.Escape(e.File), e.VfsType, e.Options, Marker, e.Freq, e.Passno)
	}
	if swapPath != "" {
		fmt.Fprintf(&b, "%s\tnone\tswap\tsw,%s\t0\t0\n", fstab.Escape(swapPath), Marker)
	}
	return b.Bytes()
}

// lineDiff counts the lines want adds to old and the marked lines it drops.
func lineDiff(old, want []byte) (added, removed int) {
	have := map[string]int{}
	for _, l := range strings.Split(string(old), "\n") {
		have[l]++
	}
	for _, l := range strings.Split(string(want), "\n") {
		if l == "" {
			continue
		}
		if have[l] > 0 {
			have[l]--
			continue
		}
		added++
	}
	for l, n := range have {
		if strings.Contains(l, Marker) {
			removed += n
		}
	}
	return added, removed
}

// mountFor is the fstab entry whose mount point holds p (the longest
// prefix), or false when the target's fstab names none.
func mountFor(entries []fstab.Entry, p string) (fstab.Entry, bool) {
	var best fstab.Entry
	found := false
	for _, e := range entries {
		f := path.Clean(e.File)
		if !strings.HasPrefix(f, "/") {
			continue
		}
		if f == "/" || p == f || strings.HasPrefix(p, f+"/") {
			if !found || len(f) > len(path.Clean(best.File)) {
				best, found = e, true
			}
		}
	}
	return best, found
}
