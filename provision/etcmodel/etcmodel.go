// Package etcmodel tells how a transactional target keeps /etc, read from
// the fstab of the snapshot being modified, and carries that model over to
// a new snapshot: a plain directory (nothing to do), a btrfs subvolume
// nested in each root snapshot (transactional-update ≥ 5: the snapshot
// transaction carries it over), or an overlayfs whose upper layer lives in
// /var/lib/overlay/N/etc (transactional-update 4: snapshot N gets its own
// upper layer and an fstab line naming it).
package etcmodel

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/provision-dev/provision/modules/fstab"
)

// Kind is how /etc is kept.
type Kind string

const (
	Directory Kind = "directory" // part of the root snapshot
	Subvolume Kind = "subvolume" // nested subvolume + "/etc /etc none bind"
	Overlay   Kind = "overlay"   // overlayfs over the snapshot's /etc
)

// Model is the /etc model of one snapshot.
type Model struct {
	Kind Kind
	// Line is the fstab line that says so (0 for Directory).
	Line int
	// Entry is that line, parsed (zero for Directory).
	Entry fstab.Entry
	// Layers of an overlay /etc, as the fstab names them (paths as the
	// initrd sees them, usually below /sysroot).
	Lower       []string
	Upper, Work string
}

// SysrootPrefix is where the initrd mounts the root: the overlay line names
// its layers below it so it can be mounted before the switch to the root.
const SysrootPrefix = "/sysroot"

// Detect reads the model from fstab text (name is used in errors).
func Detect(name string, data []byte) (Model, error) {
	entries, err := fstab.Parse(name, data)
	if err != nil {
		return Model{}, err
	}
	m := Model{Kind: Directory}
	for _, e := range entries {
		if path.Clean(e.File) != "/etc" {
			continue
		}
		where := fmt.Sprintf("%s:%d", name, e.Line)
		switch {
		case e.VfsType == "overlay":
			m = Model{Kind: Overlay, Line: e.Line, Entry: e}
			lower, _ := e.Option("lowerdir")
			m.Upper, _ = e.Option("upperdir")
			m.Work, _ = e.Option("workdir")
			if lower == "" || m.Upper == "" || m.Work == "" {
				return Model{}, fmt.Errorf("%s: overlay /etc without lowerdir, upperdir and workdir: transactional-update's layout names all three", where)
			}
			m.Lower = strings.Split(lower, ":")
			for _, p := range append(append([]string{}, m.Lower...), m.Upper, m.Work) {
				if !path.IsAbs(p) || path.Clean(p) != p {
					return Model{}, fmt.Errorf("%s: overlay layer %q is not a clean absolute path", where, p)
				}
			}
		case e.HasOption("bind") || e.HasOption("rbind"):
			if path.Clean(e.Spec) != "/etc" {
				return Model{}, fmt.Errorf("%s: /etc is bind-mounted from %s; only the nested-subvolume form \"/etc /etc none bind\" is supported", where, e.Spec)
			}
			m = Model{Kind: Subvolume, Line: e.Line, Entry: e}
		default:
			return Model{}, fmt.Errorf("%s: /etc is a separate %s filesystem (%s); a snapshot of the root cannot carry it, so provision refuses before writing anything", where, e.VfsType, e.Spec)
		}
	}
	return m, nil
}

// NextOverlay is the overlay model of snapshot num made from snapshot m, as
// transactional-update 4 makes it: a fresh upper layer
// <var>/lib/overlay/<num>/etc with its work dir beside it, and the old
// upper layer on top of the old lower ones, so the new snapshot sees exactly
// the /etc the old one saw and its own changes go to its own layer. From a
// first-boot image (lower /sysroot/etc only) that is exactly what
// transactional-update writes; on a longer chain it flattens the old stack
// into the new snapshot's /etc with rsync where we keep the stack (its own
// fallback), which reads the same.
func (m Model) NextOverlay(num uint64) (Model, error) {
	if m.Kind != Overlay {
		return m, fmt.Errorf("etcmodel: %s /etc has no overlay layers", m.Kind)
	}
	dir, ok := overlayDir(m.Upper)
	if !ok {
		return m, fmt.Errorf("etcmodel: upper layer %s is not of the form <prefix>/var/lib/overlay/<N>/etc", m.Upper)
	}
	n := m
	n.Entry.Options = append([]string(nil), m.Entry.Options...)
	n.Upper = path.Join(dir, strconv.FormatUint(num, 10), "etc")
	n.Work = path.Join(dir, strconv.FormatUint(num, 10), "work-etc")
	n.Lower = append([]string{m.Upper}, m.Lower...)
	if slices.Contains(m.Lower, n.Upper) {
		return m, fmt.Errorf("etcmodel: the new upper layer %s is already a lower layer of %s", n.Upper, m.Upper)
	}
	// The kernel takes mount options up to a page; transactional-update
	// refuses at the same limit ("boot into the new snapshot first").
	if lower := strings.Join(n.Lower, ":"); len(lower) >= 4096 {
		return m, fmt.Errorf("etcmodel: the stacked overlay lowerdir for snapshot %d would be %d bytes, over the kernel's page limit: boot into the newest snapshot first", num, len(lower))
	}
	for i, o := range n.Entry.Options {
		k, _, _ := strings.Cut(o, "=")
		switch k {
		case "lowerdir":
			n.Entry.Options[i] = "lowerdir=" + strings.Join(n.Lower, ":")
		case "upperdir":
			n.Entry.Options[i] = "upperdir=" + n.Upper
		case "workdir":
			n.Entry.Options[i] = "workdir=" + n.Work
		}
	}
	return n, nil
}

// overlayDir returns <prefix>/var/lib/overlay of an upper layer path
// <prefix>/var/lib/overlay/<N>/etc (N a number, or anything for the
// image's first layer, which some images name differently).
func overlayDir(upper string) (string, bool) {
	if path.Base(upper) != "etc" {
		return "", false
	}
	dir := path.Dir(path.Dir(upper))
	return dir, strings.HasSuffix(dir, "/var/lib/overlay")
}

// FstabLine renders the model's fstab line (overlay only), fields as fstab
// writes them.
func (m Model) FstabLine() string {
	e := m.Entry
	return fmt.Sprintf("%s %s %s %s %d %d", e.Spec, e.File, e.VfsType, strings.Join(e.Options, ","), e.Freq, e.Passno)
}

// Rewrite returns fstab text with line number line replaced by newLine;
// every other byte is kept.
func Rewrite(data []byte, line int, newLine string) ([]byte, error) {
	lines := strings.SplitAfter(string(data), "\n")
	if line < 1 || line > len(lines) || (line == len(lines) && lines[line-1] == "") {
		return nil, fmt.Errorf("etcmodel: fstab has no line %d", line)
	}
	nl := ""
	if strings.HasSuffix(lines[line-1], "\n") {
		nl = "\n"
	}
	lines[line-1] = newLine + nl
	return []byte(strings.Join(lines, "")), nil
}

// InTree maps a layer path as the fstab names it (below /sysroot, as the
// initrd mounts it, or plain when the line is mounted after the switch) to
// the path inside the root tree.
func InTree(p string) string {
	if rest, ok := strings.CutPrefix(p, SysrootPrefix); ok && (rest == "" || strings.HasPrefix(rest, "/")) {
		if rest == "" {
			return "/"
		}
		return rest
	}
	return p
}

// Describe says in one line what a run does about /etc on this model.
func (m Model) Describe() string {
	switch m.Kind {
	case Subvolume:
		return fmt.Sprintf("/etc: nested btrfs subvolume (fstab line %d): the new snapshot gets its own snapshot of it", m.Line)
	case Overlay:
		return fmt.Sprintf("/etc: overlayfs (fstab line %d, upper %s): the new snapshot gets its own upper layer stacked on it, changes land there", m.Line, m.Upper)
	}
	return "/etc: a directory of the root snapshot"
}
