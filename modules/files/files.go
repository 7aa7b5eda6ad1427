// Package files writes the files, directories and links a configuration
// asks for (cloud-init write_files, Ignition storage.files, directories and
// links) into the target root, with their modes and owners. Owners are names
// of the TARGET's accounts, resolved when applying. Deferred files (cloud-init
// `defer: true`) are planned separately so the engine can write them after
// packages and units.
package files

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"syscall"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/provision/config"
)

// Default modes: cloud-init's write_files and Ignition agree on 0644 for
// files; Ignition and mkdir -p under umask 022 give directories 0755.
const (
	DefaultFileMode fs.FileMode = 0o644
	DefaultDirMode  fs.FileMode = 0o755
)

// Fetch retrieves http(s) sources for Plan and PlanDeferred. The engine
// may replace it (e.g. with one that uses the initrd network's retries);
// tests use a Planner instead.
var Fetch FetchFunc = HTTPFetch

// Planner plans with an explicit fetcher.
type Planner struct {
	// Fetch retrieves http(s) sources when applying; nil refuses them.
	Fetch FetchFunc
}

// Plan returns the steps for directories, non-deferred files and links.
func Plan(cfg *config.Config, root *rootfs.Root) ([]modules.Step, error) {
	return Planner{Fetch: Fetch}.Plan(cfg, root)
}

// PlanDeferred returns the steps for deferred files, to run after units.
func PlanDeferred(cfg *config.Config, root *rootfs.Root) ([]modules.Step, error) {
	return Planner{Fetch: Fetch}.PlanDeferred(cfg, root)
}

// Plan returns the steps for directories, non-deferred files and links, in
// that order: directories first so files land in them with the requested
// modes, links last so hard links find their targets.
func (p Planner) Plan(cfg *config.Config, root *rootfs.Root) ([]modules.Step, error) {
	var steps []modules.Step
	var errs []error
	add := func(s []modules.Step, err error) {
		steps = append(steps, s...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	dirs := append([]config.Directory(nil), cfg.Directories...)
	// Parents before children, whatever order the documents used.
	sort.SliceStable(dirs, func(i, j int) bool {
		return strings.Count(cleanPath(dirs[i].Path), "/") < strings.Count(cleanPath(dirs[j].Path), "/")
	})
	for _, d := range dirs {
		add(p.planDirectory(cfg, root, d))
	}
	for _, f := range cfg.Files {
		if !f.Defer {
			add(p.planFile(cfg, root, f))
		}
	}
	for _, l := range cfg.Links {
		add(p.planLink(cfg, root, l))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return steps, nil
}

// PlanDeferred returns the steps for files marked Defer.
func (p Planner) PlanDeferred(cfg *config.Config, root *rootfs.Root) ([]modules.Step, error) {
	var steps []modules.Step
	var errs []error
	for _, f := range cfg.Files {
		if !f.Defer {
			continue
		}
		s, err := p.planFile(cfg, root, f)
		steps = append(steps, s...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return steps, nil
}

func cleanPath(p string) string { return rootfs.Join(p) }

// checkTargetPath refuses a path with "..", one under the API filesystems
// (/proc, /sys, /dev, /run, /tmp: the running kernel's and the host's while
// provisioning, gone at boot — refused rather than reported done), and,
// when a target is given, one that a symlink planted in the target would
// lead out of the root. rootfs enforces the same at write time by mount.
func checkTargetPath(root *rootfs.Root, p string) error {
	if err := config.CheckPath(p); err != nil {
		return err
	}
	if err := rootfs.CheckPersistentPath(p); err != nil {
		return err
	}
	if root != nil {
		if _, err := root.Resolve(p); err != nil {
			return err
		}
	}
	return nil
}

// unixMode converts a numeric mode (the 0o7777 bits the config holds) into
// the fs.FileMode the rootfs functions take, where setuid, setgid and
// sticky are separate flag bits.
func unixMode(m fs.FileMode) (fs.FileMode, error) {
	if m&^0o7777 != 0 {
		return 0, fmt.Errorf("invalid mode %#o (more than the 0o7777 permission bits)", uint32(m))
	}
	g := m & fs.ModePerm
	if m&0o4000 != 0 {
		g |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		g |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		g |= fs.ModeSticky
	}
	return g, nil
}

const modeBits = fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky

func fmtMode(m fs.FileMode) string { return rootfs.FormatMode(m) }

func modeOr(m *fs.FileMode, def fs.FileMode) (fs.FileMode, error) {
	if m == nil {
		return def, nil
	}
	return unixMode(*m)
}

// sameAttrs reports whether st already has mode and owner.
func sameAttrs(st fs.FileInfo, mode fs.FileMode, owner rootfs.Owner) bool {
	if st.Mode()&modeBits != mode {
		return false
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	return ok && int(sys.Uid) == owner.UID && int(sys.Gid) == owner.GID
}

func sameOwner(st fs.FileInfo, owner rootfs.Owner) bool {
	sys, ok := st.Sys().(*syscall.Stat_t)
	return ok && int(sys.Uid) == owner.UID && int(sys.Gid) == owner.GID
}

// fileItem is a planned file with everything checked that can be checked
// before applying.
type fileItem struct {
	f        config.File
	mode     fs.FileMode // Go flags; used for new files and when explicit
	explicit bool        // Mode was given
	owner    ownerSpec
	data     []byte // nil for remote sources
	remote   bool
}

func (p Planner) planFile(cfg *config.Config, root *rootfs.Root, f config.File) ([]modules.Step, error) {
	fail := func(err error) ([]modules.Step, error) {
		return nil, fmt.Errorf("%s: file %s: %w", f.Origin, rootfs.Printable(f.Path), err)
	}
	if err := checkTargetPath(root, f.Path); err != nil {
		return fail(err)
	}
	it := fileItem{f: f, explicit: f.Mode != nil}
	var err error
	if it.mode, err = modeOr(f.Mode, DefaultFileMode); err != nil {
		return fail(err)
	}
	if it.owner, err = parseOwner(f.Owner, f.Group); err != nil {
		return fail(err)
	}
	po, err := planOwner(cfg, root, it.owner, f.Defer)
	if err != nil {
		return fail(err)
	}
	var what string
	switch {
	case f.Contents != nil:
		it.data = f.Contents
		what = fmt.Sprintf("%d bytes", len(it.data))
	case f.Source != "":
		kind, err := sourceKind(f.Source)
		if err != nil {
			return fail(err)
		}
		if f.Hash != "" {
			if _, _, err := checkHash(f.Hash); err != nil {
				return fail(err)
			}
		}
		if kind == "data" {
			if it.data, err = DecodeDataURL(f.Source); err != nil {
				return fail(err)
			}
			if err := verify(f.Hash, it.data); err != nil {
				return fail(err)
			}
			what = fmt.Sprintf("%d bytes from a data: URL", len(it.data))
		} else {
			if p.Fetch == nil {
				return fail(errors.New("remote sources are not available here"))
			}
			it.remote = true
			what = "from " + f.Source
			if len(f.Headers) > 0 {
				// Names only: the values may be credentials.
				var names []string
				for _, h := range f.Headers {
					names = append(names, h.Name)
				}
				what += " with header " + strings.Join(names, ", ")
			}
			if f.Hash != "" {
				what += ", " + strings.SplitN(f.Hash, "-", 2)[0] + " verified"
			}
		}
	case noOverwrite(f.Overwrite):
		it.data = []byte{}
		what = "content kept if it exists, else empty"
	default:
		it.data = []byte{}
		what = "empty"
	}
	action := "write"
	if f.Append {
		action = "append"
	}
	details := []string{what, "mode " + fmtMode(it.mode), "owner " + it.owner.String()}
	if f.Append && !it.explicit {
		details[1] = "mode " + fmtMode(it.mode) + " if new"
	}
	if po.note != "" {
		details = append(details, po.note)
	}
	if f.Defer {
		details = append(details, "deferred")
	}
	if root != nil {
		skip, err := fileUnchanged(root, it, po)
		if err != nil {
			return fail(err)
		}
		if skip {
			return nil, nil
		}
		if note := replacedNode(root, f.Path, f.Overwrite, false); note != "" {
			details = append(details, note)
		}
	}
	return []modules.Step{{
		Module: "files",
		Action: action,
		Target: f.Path,
		Detail: strings.Join(details, ", "),
		Origin: f.Origin,
		Apply: func(ctx context.Context, env *modules.Env) error {
			if err := p.applyFile(ctx, env, it); err != nil {
				return fmt.Errorf("%s: file %s: %w", f.Origin, rootfs.Printable(f.Path), err)
			}
			return nil
		},
	}}, nil
}

// fileUnchanged looks at what the target has: it refuses early what the
// apply would refuse (overwrite false), and reports a file that already is
// exactly as requested, so a dry run leaves it out. Ignition's rules for
// an existing node: overwrite true removes whatever is there (a directory
// with its contents); overwrite false refuses anything but a regular file,
// and a regular file too when the config gives contents, unless they are
// the same (applying twice is not an error); without contents the file is
// kept and only the mode and owner the config gives are applied.
func fileUnchanged(root *rootfs.Root, it fileItem, po plannedOwner) (bool, error) {
	st, err := root.Lstat(it.f.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	switch {
	case it.f.Append:
		if st.IsDir() {
			return false, errors.New("a directory exists at this path")
		}
		return false, nil
	case st.IsDir() && overwrite(it.f.Overwrite):
		return false, nil // removed when applying
	case noOverwrite(it.f.Overwrite) && !st.Mode().IsRegular():
		return false, errNonRegular
	case st.IsDir():
		return false, errors.New("a directory exists at this path")
	}
	if it.remote {
		return false, nil // compared once fetched
	}
	var old []byte
	if st.Mode().IsRegular() {
		if old, err = root.ReadFile(it.f.Path); err != nil {
			return false, err
		}
	}
	keep := noOverwrite(it.f.Overwrite) && !hasContent(it.f)
	same := st.Mode().IsRegular() && (keep || bytes.Equal(old, it.data))
	if noOverwrite(it.f.Overwrite) && !same {
		return false, errExists
	}
	if keep {
		return keptAttrsSame(st, it, po), nil
	}
	return same && po.known && sameAttrs(st, it.mode, po.owner), nil
}

var (
	errExists     = errors.New("already exists in the target and overwrite is false")
	errNonRegular = errors.New("a non-regular file (a directory, link or special file) exists at this path and overwrite is false")
)

// keptAttrsSame: a kept file changes only in what the config gives.
func keptAttrsSame(st fs.FileInfo, it fileItem, po plannedOwner) bool {
	if it.explicit && st.Mode()&modeBits != it.mode {
		return false
	}
	if it.owner == (ownerSpec{}) {
		return true
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	return ok && po.known &&
		(it.owner.user == "" || int(sys.Uid) == po.owner.UID) &&
		(it.owner.group == "" || int(sys.Gid) == po.owner.GID)
}

// overwrite is an explicit overwrite: true (Ignition's), which removes
// whatever is at the path first.
func overwrite(o *bool) bool { return o != nil && *o }

// replacedNode tells the plan what an overwrite: true removes: another
// kind of node, or a directory's contents. "" when nothing is removed.
func replacedNode(root *rootfs.Root, p string, o *bool, wantDir bool) string {
	if !overwrite(o) {
		return ""
	}
	st, err := root.Lstat(p)
	if err != nil {
		return ""
	}
	switch {
	case st.IsDir() && wantDir:
		if entries, err := root.ReadDir(p); err == nil && len(entries) > 0 {
			return fmt.Sprintf("its %d entries removed first (overwrite: true)", len(entries))
		}
		return ""
	case st.IsDir():
		return "replacing the directory there and its contents (overwrite: true)"
	case wantDir:
		return "replacing the " + nodeKind(st) + " there (overwrite: true)"
	}
	return ""
}

func nodeKind(st fs.FileInfo) string {
	switch m := st.Mode(); {
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case m.IsRegular():
		return "file"
	case m.IsDir():
		return "directory"
	}
	return "special file"
}

// removeTree removes p and, for a directory, everything below it, deepest
// first, each entry through the root (confined and journaled). A mount
// point below refuses the removal (rootfs.preserve).
func removeTree(root *rootfs.Root, p string) error {
	st, err := root.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.IsDir() {
		entries, err := root.ReadDir(p)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if err := removeTree(root, path.Join(p, e.Name())); err != nil {
				return err
			}
		}
	}
	return root.Remove(p)
}

func noOverwrite(o *bool) bool { return o != nil && !*o }

func hasContent(f config.File) bool { return f.Contents != nil || f.Source != "" }

func (p Planner) content(ctx context.Context, it fileItem) ([]byte, error) {
	if !it.remote {
		return it.data, nil
	}
	data, err := p.Fetch(ctx, it.f.Source, headerOf(it.f.Headers))
	if err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	if err := verify(it.f.Hash, data); err != nil {
		return nil, err
	}
	return data, nil
}

func (p Planner) applyFile(ctx context.Context, env *modules.Env, it fileItem) error {
	owner, err := resolveOwner(env.Root, it.owner)
	if err != nil {
		return err
	}
	path := it.f.Path
	st, err := env.Root.Lstat(path)
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	data, err := p.content(ctx, it)
	if err != nil {
		return err
	}
	if exists && st.IsDir() && !it.f.Append && overwrite(it.f.Overwrite) {
		if err := removeTree(env.Root, path); err != nil {
			return fmt.Errorf("removing the directory in the way (overwrite: true): %w", err)
		}
		exists = false
	}
	if exists && st.IsDir() && !noOverwrite(it.f.Overwrite) {
		return errors.New("a directory exists at this path")
	}
	if it.f.Append {
		mode := it.mode
		o := owner
		if exists && !it.explicit {
			mode = 0 // keep the existing file's mode
		}
		if exists && it.owner == (ownerSpec{}) {
			o = rootfs.Owner{UID: -1, GID: -1} // and its owner
		}
		return env.Root.AppendFile(path, data, mode, o)
	}
	if exists && noOverwrite(it.f.Overwrite) {
		// Ignition: an existing node is an error unless the config gives no
		// contents, which means "keep it, fix mode and owner". The same
		// content counts as kept, so applying twice is not an error.
		if !st.Mode().IsRegular() {
			return errNonRegular
		}
		var old []byte
		if hasContent(it.f) {
			old, _ = env.Root.ReadFile(path)
		}
		if hasContent(it.f) && !bytes.Equal(old, data) {
			return errExists
		}
		// Kept: the owner and mode the config gives, the file's own
		// otherwise (Ignition's SetPermissions).
		o := owner
		if it.owner.user == "" {
			o.UID = -1
		}
		if it.owner.group == "" {
			o.GID = -1
		}
		if err := env.Root.Chown(path, o); err != nil {
			return err
		}
		if !it.explicit {
			return nil
		}
		return env.Root.Chmod(path, it.mode)
	}
	return env.Root.WriteFile(path, data, it.mode, owner)
}

func (p Planner) planDirectory(cfg *config.Config, root *rootfs.Root, d config.Directory) ([]modules.Step, error) {
	fail := func(err error) ([]modules.Step, error) {
		return nil, fmt.Errorf("%s: directory %s: %w", d.Origin, rootfs.Printable(d.Path), err)
	}
	if err := checkTargetPath(root, d.Path); err != nil {
		return fail(err)
	}
	mode, err := modeOr(d.Mode, DefaultDirMode)
	if err != nil {
		return fail(err)
	}
	spec, err := parseOwner(d.Owner, d.Group)
	if err != nil {
		return fail(err)
	}
	po, err := planOwner(cfg, root, spec, false)
	if err != nil {
		return fail(err)
	}
	replacing := ""
	if root != nil {
		st, err := root.Lstat(d.Path)
		replacing = replacedNode(root, d.Path, d.Overwrite, true)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return fail(err)
		case !st.IsDir() && !overwrite(d.Overwrite):
			return fail(errNotDir)
		case replacing == "" && st.IsDir() && po.known && sameAttrs(st, mode, po.owner):
			return nil, nil
		}
	}
	details := []string{"mode " + fmtMode(mode), "owner " + spec.String()}
	if replacing != "" {
		details = append(details, replacing)
	}
	if po.note != "" {
		details = append(details, po.note)
	}
	return []modules.Step{{
		Module: "files",
		Action: "create directory",
		Target: d.Path,
		Detail: strings.Join(details, ", "),
		Origin: d.Origin,
		Apply: func(ctx context.Context, env *modules.Env) error {
			if err := applyDirectory(env.Root, d.Path, mode, spec, overwrite(d.Overwrite)); err != nil {
				return fmt.Errorf("%s: directory %s: %w", d.Origin, rootfs.Printable(d.Path), err)
			}
			return nil
		},
	}}, nil
}

// errNotDir is Ignition's refusal of a non-directory where a directory is
// wanted without overwrite: true (a symlink to a directory included).
var errNotDir = errors.New("exists and is not a directory, and overwrite is not true")

// applyDirectory creates p; replace (Ignition's overwrite: true) removes
// what is there first, a directory's contents included.
func applyDirectory(root *rootfs.Root, p string, mode fs.FileMode, spec ownerSpec, replace bool) error {
	owner, err := resolveOwner(root, spec)
	if err != nil {
		return err
	}
	if replace {
		if err := removeTree(root, p); err != nil {
			return fmt.Errorf("removing what is there (overwrite: true): %w", err)
		}
	}
	st, err := root.Lstat(p)
	if err == nil && !st.IsDir() {
		// A symlink here would make chmod and chown act on its target.
		return errNotDir
	}
	if err := root.MkdirAll(p, mode, owner); err != nil {
		return err
	}
	// MkdirAll leaves an existing directory alone; the config still wants
	// its mode and owner.
	if err := root.Chown(p, owner); err != nil {
		return err
	}
	return root.Chmod(p, mode)
}

func (p Planner) planLink(cfg *config.Config, root *rootfs.Root, l config.Link) ([]modules.Step, error) {
	kind := "symlink"
	if l.Hard {
		kind = "hard link"
	}
	fail := func(err error) ([]modules.Step, error) {
		return nil, fmt.Errorf("%s: %s %s: %w", l.Origin, kind, rootfs.Printable(l.Path), err)
	}
	if err := checkTargetPath(root, l.Path); err != nil {
		return fail(err)
	}
	if l.Target == "" || strings.ContainsRune(l.Target, 0) {
		return fail(errors.New("invalid link target"))
	}
	if l.Hard {
		if err := checkTargetPath(root, l.Target); err != nil {
			return fail(fmt.Errorf("target: %w", err))
		}
	}
	spec, err := parseOwner(l.Owner, l.Group)
	if err != nil {
		return fail(err)
	}
	po, err := planOwner(cfg, root, spec, false)
	if err != nil {
		return fail(err)
	}
	if root != nil {
		skip, err := linkUnchanged(cfg, root, l, po)
		if err != nil {
			return fail(err)
		}
		if skip {
			return nil, nil
		}
	}
	detail := "-> " + l.Target
	if root != nil {
		if note := replacedNode(root, l.Path, l.Overwrite, false); note != "" {
			detail += ", " + note
		}
	}
	if !l.Hard {
		detail += ", owner " + spec.String()
	}
	if po.note != "" {
		detail += ", " + po.note
	}
	return []modules.Step{{
		Module: "files",
		Action: kind,
		Target: l.Path,
		Detail: detail,
		Origin: l.Origin,
		Apply: func(ctx context.Context, env *modules.Env) error {
			if err := applyLink(env.Root, l, spec); err != nil {
				return fmt.Errorf("%s: %s %s: %w", l.Origin, kind, rootfs.Printable(l.Path), err)
			}
			return nil
		},
	}}, nil
}

// linkUnchanged refuses an existing node that overwrite=false protects and
// reports a link that is already in place.
func linkUnchanged(cfg *config.Config, root *rootfs.Root, l config.Link, po plannedOwner) (bool, error) {
	if l.Hard && !root.Exists(l.Target) && !configPath(cfg, l.Target) {
		return false, fmt.Errorf("target %s does not exist in the target and is not written by this config", l.Target)
	}
	st, err := root.Lstat(l.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	same, err := linkInPlace(root, l, st)
	if err != nil {
		return false, err
	}
	if !same && noOverwrite(l.Overwrite) {
		return false, errExists
	}
	if !same && st.IsDir() && !overwrite(l.Overwrite) {
		return false, errors.New("a directory exists at this path")
	}
	return same && (l.Hard || (po.known && sameOwner(st, po.owner))), nil
}

func configPath(cfg *config.Config, p string) bool {
	for _, f := range cfg.Files {
		if cleanPath(f.Path) == cleanPath(p) {
			return true
		}
	}
	return false
}

// linkInPlace reports whether the node at l.Path already is the link.
func linkInPlace(root *rootfs.Root, l config.Link, st fs.FileInfo) (bool, error) {
	if !l.Hard {
		if st.Mode()&fs.ModeSymlink == 0 {
			return false, nil
		}
		host, err := root.Resolve(l.Path)
		if err != nil {
			return false, err
		}
		// Compared cleaned, as Ignition does ("a/../b" is "b").
		target, err := os.Readlink(host)
		return err == nil && path.Clean(target) == path.Clean(l.Target), nil
	}
	tst, err := root.Lstat(l.Target)
	if err != nil {
		return false, nil
	}
	return os.SameFile(st, tst), nil
}

func applyLink(root *rootfs.Root, l config.Link, spec ownerSpec) error {
	owner, err := resolveOwner(root, spec)
	if err != nil {
		return err
	}
	st, err := root.Lstat(l.Path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err == nil {
		same, err := linkInPlace(root, l, st)
		if err != nil {
			return err
		}
		switch {
		case same && l.Hard:
			return nil
		case same:
			return root.Chown(l.Path, owner)
		case noOverwrite(l.Overwrite):
			return errExists
		case st.IsDir() && overwrite(l.Overwrite):
			if err := removeTree(root, l.Path); err != nil {
				return fmt.Errorf("removing the directory in the way (overwrite: true): %w", err)
			}
		case st.IsDir():
			return errors.New("a directory exists at this path")
		}
	}
	if l.Hard {
		if _, err := root.Lstat(l.Target); err != nil {
			return fmt.Errorf("target: %w", err)
		}
		return root.Link(l.Target, l.Path)
	}
	if err := root.Symlink(l.Target, l.Path); err != nil {
		return err
	}
	// Chown does not follow the link: it sets the link's own owner, as
	// Ignition does.
	return root.Chown(l.Path, owner)
}
