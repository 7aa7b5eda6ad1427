package units

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/provision-dev/provision/modules/rootfs"
)

// configDir is where systemctl enable writes (the persistent config path).
const configDir = "/etc/systemd/system"

// searchPath is systemd's unit search order for the system manager, as
// `systemctl --root` sees a target (generator and transient directories do
// not exist offline). /lib comes last: on merged-/usr targets it is the
// same directory as /usr/lib, and systemd builds for merged /usr name
// /usr/lib in the links they write.
var searchPath = []string{
	"/etc/systemd/system",
	"/run/systemd/system",
	"/usr/local/lib/systemd/system",
	"/usr/lib/systemd/system",
	"/lib/systemd/system",
}

const syscallENOTDIR = syscall.ENOTDIR

// entry is what a path holds: a file with known or unknown contents, a
// symlink, or nothing.
type entry struct {
	exists  bool
	symlink bool
	target  string // symlink target
	data    []byte // file contents; nil with unknown set when not knowable
	unknown bool   // a file whose contents are only known when applying
}

// view reads the target as it will be when units are enabled: the target
// root (nil when planning without one) with the writes this run makes
// before, laid over it.
type view struct {
	root    *rootfs.Root
	overlay map[string]entry
	dirs    map[string][]string // overlay names per directory, for drop-ins
}

func newView(root *rootfs.Root) *view {
	return &view{root: root, overlay: map[string]entry{}, dirs: map[string][]string{}}
}

func (v *view) put(p string, e entry) {
	p = path.Clean(p)
	if _, ok := v.overlay[p]; !ok {
		d := path.Dir(p)
		v.dirs[d] = append(v.dirs[d], path.Base(p))
	}
	v.overlay[p] = e
}

func (v *view) lstat(p string) (entry, error) {
	if e, ok := v.overlay[path.Clean(p)]; ok {
		return e, nil
	}
	if v.root == nil {
		return entry{}, nil
	}
	host, err := v.root.Resolve(p)
	if err != nil {
		return entry{}, err
	}
	st, err := os.Lstat(host)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscallENOTDIR) {
		return entry{}, nil
	}
	if err != nil {
		return entry{}, err
	}
	if st.Mode()&fs.ModeSymlink != 0 {
		t, err := os.Readlink(host)
		if err != nil {
			return entry{}, err
		}
		return entry{exists: true, symlink: true, target: t}, nil
	}
	if st.IsDir() {
		return entry{exists: true}, nil
	}
	data, err := os.ReadFile(host)
	if err != nil {
		return entry{}, err
	}
	return entry{exists: true, data: data}, nil
}

// readFollow reads p following symlinks within the target.
func (v *view) readFollow(p string) (entry, error) {
	for i := 0; i < 40; i++ {
		e, err := v.lstat(p)
		if err != nil || !e.exists || !e.symlink {
			return e, err
		}
		t := e.target
		if !strings.HasPrefix(t, "/") {
			t = path.Join(path.Dir(p), t)
		}
		p = t
	}
	return entry{}, fmt.Errorf("%s: too many levels of symbolic links", p)
}

// listDir lists the names in dir (target and overlay).
func (v *view) listDir(dir string) ([]string, error) {
	names := map[string]bool{}
	for _, n := range v.dirs[path.Clean(dir)] {
		names[n] = true
	}
	if v.root != nil {
		host, err := v.root.ResolveFollow(dir)
		if err != nil {
			return nil, err
		}
		ents, err := os.ReadDir(host)
		if err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscallENOTDIR) {
			return nil, err
		}
		for _, e := range ents {
			names[e.Name()] = true
		}
	}
	out := make([]string, 0, len(names))
	for n := range names {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

// unitFile is a unit found in the search path.
type unitFile struct {
	name   unitName // the name asked for (an instance keeps its instance)
	path   string   // absolute path inside the target, as links point at it
	masked bool
	info   installInfo
	// unknown: its contents are fetched when applying, so the links can
	// only be decided then.
	unknown bool
}

var errNotFound = errors.New("not found")

// lookup finds a unit as systemctl does: the full name in every search
// directory first, then, for an instance, its template. Aliases (symlinks
// to another name) are followed; a link to /dev/null or an empty file means
// masked.
func (v *view) lookup(name string) (*unitFile, error) {
	n, ok := parseUnitName(name)
	if !ok {
		return nil, fmt.Errorf("%q is not a valid unit name", name)
	}
	return v.lookupDepth(n, 0)
}

func (v *view) lookupDepth(n unitName, depth int) (*unitFile, error) {
	if depth > 8 {
		return nil, fmt.Errorf("%s: too many aliases", n.full)
	}
	candidates := []string{n.full}
	if n.instanced {
		candidates = append(candidates, n.templateName())
	}
	for _, cand := range candidates {
		for _, dir := range searchPath {
			p := dir + "/" + cand
			e, err := v.lstat(p)
			if err != nil {
				return nil, err
			}
			if !e.exists {
				continue
			}
			if e.symlink {
				if e.target == "/dev/null" {
					return &unitFile{name: n, path: p, masked: true}, nil
				}
				base := path.Base(e.target)
				if base != cand {
					// An alias: continue with the name it points to.
					an, ok := parseUnitName(base)
					if !ok {
						return nil, fmt.Errorf("%s is a symlink to %s, which is not a unit name", p, e.target)
					}
					if n.instanced && an.template {
						an, _ = parseUnitName(an.withInstance(n.instance))
					}
					return v.lookupDepth(an, depth+1)
				}
				// A linked unit file: systemctl points at the file itself.
				t := e.target
				if !strings.HasPrefix(t, "/") {
					t = path.Join(dir, t)
				}
				fe, err := v.readFollow(t)
				if err != nil {
					return nil, err
				}
				if !fe.exists {
					return nil, fmt.Errorf("%s is a dangling symlink to %s", p, e.target)
				}
				e, p = fe, t
			}
			uf := &unitFile{name: n, path: p}
			if e.unknown {
				uf.unknown = true
				return uf, nil
			}
			if len(strings.TrimSpace(string(e.data))) == 0 {
				uf.masked = true // systemd treats an empty unit file as masked
				return uf, nil
			}
			if err := parseInstall(e.data, p, &uf.info); err != nil {
				return nil, err
			}
			if err := v.dropins(n, &uf.info); err != nil {
				return nil, err
			}
			if uf.info.unknownDropin {
				uf.unknown = true
			}
			return uf, nil
		}
	}
	return nil, fmt.Errorf("unit %s: %w in %s", n.full, errNotFound, strings.Join(searchPath, ", "))
}

// dropins adds the [Install] settings of the unit's drop-ins: NAME.d/*.conf
// (and the template's for an instance) in every search directory, a file
// name in an earlier directory hiding the same name in later ones, applied
// in file-name order as systemd does.
func (v *view) dropins(n unitName, info *installInfo) error {
	dirs := []string{n.full + ".d"}
	if n.instanced {
		dirs = append(dirs, n.templateName()+".d")
	}
	chosen := map[string]string{}
	for _, d := range dirs {
		for _, sp := range searchPath {
			dir := sp + "/" + d
			names, err := v.listDir(dir)
			if err != nil {
				return err
			}
			for _, name := range names {
				if strings.HasSuffix(name, ".conf") {
					if _, ok := chosen[name]; !ok {
						chosen[name] = dir + "/" + name
					}
				}
			}
		}
	}
	names := make([]string, 0, len(chosen))
	for n := range chosen {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		e, err := v.readFollow(chosen[name])
		if err != nil {
			return err
		}
		if e.unknown {
			info.unknownDropin = true
			continue
		}
		if err := parseInstall(e.data, chosen[name], info); err != nil {
			return err
		}
	}
	return nil
}

// link is one symlink systemctl enable creates.
type link struct {
	path, target string
	force        bool // replace a different symlink (wants/requires); aliases are not replaced
}

// enableLinks computes the symlinks `systemctl enable NAME` creates,
// including those of units named in Also=.
func (v *view) enableLinks(name string) ([]link, error) {
	var out []link
	done := map[string]bool{}
	queue := []string{name}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if done[cur] {
			continue
		}
		done[cur] = true
		uf, err := v.lookup(cur)
		if err != nil {
			if cur != name && errors.Is(err, errNotFound) {
				return nil, fmt.Errorf("unit %s (named in Also= of %s) does not exist in the target", cur, name)
			}
			return nil, err
		}
		if uf.masked {
			return nil, fmt.Errorf("unit %s is masked (%s)", cur, uf.path)
		}
		if uf.unknown {
			return nil, errUnknown
		}
		links, also, err := uf.links()
		if err != nil {
			return nil, err
		}
		out = append(out, links...)
		queue = append(queue, also...)
	}
	return out, nil
}

// errUnknown: the unit file's contents are only known when applying.
var errUnknown = errors.New("unit contents are known only when applying")

// links applies install_info_apply: aliases, then the .wants/, .requires/
// and .upholds/ links.
func (uf *unitFile) links() ([]link, []string, error) {
	n := uf.name
	var out []link
	also, err := uf.alsoNames()
	if err != nil {
		return nil, nil, err
	}
	for _, a := range uf.info.alias {
		s, err := expand(a, n)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: Alias=: %w", uf.path, err)
		}
		dst, err := verifyAlias(n, s)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: Alias=%s: %w", uf.path, s, err)
		}
		out = append(out, link{path: configDir + "/" + dst, target: uf.path})
	}

	linkName := n.full
	templateNoInstance := false
	if n.template {
		if uf.info.defaultInstance != "" {
			inst, err := expand(uf.info.defaultInstance, n)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: DefaultInstance=: %w", uf.path, err)
			}
			in, ok := parseUnitName(n.withInstance(inst))
			if !ok {
				return nil, nil, fmt.Errorf("%s: DefaultInstance=%s gives an invalid unit name", uf.path, inst)
			}
			linkName = in.full
		} else {
			templateNoInstance = true
		}
	}
	for _, kind := range []struct {
		list   []string
		suffix string
	}{{uf.info.wantedBy, ".wants"}, {uf.info.requiredBy, ".requires"}, {uf.info.upheldBy, ".upholds"}} {
		for _, w := range kind.list {
			dst, err := expand(w, n)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %w", uf.path, err)
			}
			dn, ok := parseUnitName(dst)
			if !ok {
				return nil, nil, fmt.Errorf("%s: %q is not a valid unit name", uf.path, dst)
			}
			if templateNoInstance && !dn.template {
				return nil, nil, fmt.Errorf("%s: template %s has no DefaultInstance= and destination unit %s is a non-template unit (enable an instance, e.g. %s)",
					uf.path, n.full, dst, n.withInstance("NAME"))
			}
			out = append(out, link{path: configDir + "/" + dst + kind.suffix + "/" + linkName, target: uf.path, force: true})
		}
	}
	return out, also, nil
}

func (uf *unitFile) alsoNames() ([]string, error) {
	var also []string
	for _, a := range uf.info.also {
		s, err := expand(a, uf.name)
		if err != nil {
			return nil, fmt.Errorf("%s: Also=: %w", uf.path, err)
		}
		if _, ok := parseUnitName(s); !ok {
			return nil, fmt.Errorf("%s: Also=%s is not a valid unit name", uf.path, s)
		}
		also = append(also, s)
	}
	return also, nil
}

// verifyAlias applies systemd's rules for Alias= (unit_file_verify_alias):
// the same type suffix; a template's alias is a template; an instance's
// template alias takes the instance.
func verifyAlias(n unitName, alias string) (string, error) {
	an, ok := parseUnitName(alias)
	if !ok {
		return "", errors.New("not a valid unit name")
	}
	if an.suffix != n.suffix {
		return "", fmt.Errorf("an alias must have the same type suffix as %s", n.full)
	}
	switch {
	case n.template && !an.template:
		return "", fmt.Errorf("the alias of template %s must be a template", n.full)
	case n.instanced && an.template:
		return an.withInstance(n.instance), nil
	case n.instanced && an.instanced && an.instance != n.instance:
		return "", fmt.Errorf("the alias of %s must have the same instance", n.full)
	case !n.template && !n.instanced && (an.template || an.instanced):
		return "", fmt.Errorf("the alias of %s must not be a template or an instance", n.full)
	}
	return alias, nil
}

// disableRemovals computes the symlinks `systemctl disable NAME` removes:
// every symlink under /etc/systemd/system named after the unit (or a unit in
// its Also=) or pointing to one, repeated for links to the links removed.
// A masked unit is left alone, as systemctl does.
func (v *view) disableRemovals(name string) ([]string, error) {
	marked := map[string]bool{}
	done := map[string]bool{}
	queue := []string{name}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if done[cur] {
			continue
		}
		done[cur] = true
		uf, err := v.lookup(cur)
		if errors.Is(err, errNotFound) {
			marked[cur] = true
			continue
		}
		if err != nil {
			return nil, err
		}
		if uf.masked {
			if cur == name {
				return nil, nil
			}
			continue
		}
		if uf.unknown {
			return nil, errUnknown
		}
		marked[cur] = true
		also, err := uf.alsoNames()
		if err != nil {
			return nil, err
		}
		queue = append(queue, also...)
	}
	if v.root == nil {
		return nil, nil
	}
	var links []string // symlinks in the config dir, in-root paths
	host, err := v.root.ResolveFollow(configDir)
	if err != nil {
		return nil, err
	}
	err = filepath.WalkDir(host, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			rel, _ := filepath.Rel(host, p)
			links = append(links, configDir+"/"+filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	removed := map[string]bool{}
	for changed := true; changed; {
		changed = false
		for _, l := range links {
			if removed[l] {
				continue
			}
			if _, ok := parseUnitName(path.Base(l)); !ok {
				continue
			}
			e, err := v.lstat(l)
			if err != nil {
				return nil, err
			}
			if !e.symlink {
				continue
			}
			found := marked[e.target] || marked[path.Base(e.target)] || marked[path.Base(l)]
			if !found {
				if final, ok := v.chase(l); ok {
					found = marked[final] || marked[path.Base(final)]
				}
			}
			if found {
				removed[l] = true
				marked[l] = true
				changed = true
			}
		}
	}
	out := make([]string, 0, len(removed))
	for l := range removed {
		out = append(out, l)
	}
	sort.Strings(out)
	return out, nil
}

// chase resolves p's symlinks inside the target and returns the final path.
func (v *view) chase(p string) (string, bool) {
	host, err := v.root.ResolveFollow(p)
	if err != nil {
		return "", false
	}
	rel, err := filepath.Rel(v.root.Dir, host)
	if err != nil {
		return "", false
	}
	return "/" + filepath.ToSlash(rel), true
}
