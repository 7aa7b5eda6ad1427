package provision

import (
	"errors"
	"fmt"
	"path"
	"reflect"
	"strings"

	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/provision/config"
)

// pathClaim is one file, directory or link of the configuration, with the
// file it is in the target.
type pathClaim struct {
	path, kind string
	origin     config.Origin
	item       any // the definition, Path and Origin cleared
}

// resolvedConflicts finds what config.Validate cannot see: two names that
// differ yet are one file in the target once its symlinks are followed
// (/lib/systemd/... and /usr/lib/systemd/... on a merged-/usr root,
// /var/run and /run). Whichever came last would win silently; naming both
// is what Validate does for the same name. Identical definitions agree and
// are no conflict; appends add, they do not claim.
func resolvedConflicts(cfg *config.Config, root *rootfs.Root) error {
	if root == nil {
		return nil
	}
	seen := map[string]pathClaim{}
	var errs []error
	claim := func(p, kind string, o config.Origin, item any) {
		host, err := root.Resolve(p)
		if err != nil {
			return // the module reports a path it cannot resolve
		}
		inTarget := rootfs.Join(strings.TrimPrefix(host, root.Dir))
		c := pathClaim{path: path.Clean(p), kind: kind, origin: o, item: item}
		prev, ok := seen[inTarget]
		switch {
		case !ok:
			seen[inTarget] = c
		case prev.path == c.path:
			// The same name: config.Validate judged it.
		case prev.kind != c.kind || !reflect.DeepEqual(prev.item, c.item):
			where := ""
			if inTarget != c.path && inTarget != prev.path {
				where = " " + rootfs.Printable(inTarget)
			}
			errs = append(errs, fmt.Errorf("%s: %s %s conflicts with the %s %s defined at %s: in the target they are the same file%s (through its symbolic links)",
				o, kind, rootfs.Printable(p), prev.kind, rootfs.Printable(prev.path), prev.origin, where))
		}
	}
	for _, f := range cfg.Files {
		if f.Append {
			continue
		}
		item := f
		item.Path, item.Origin = "", config.Origin{}
		claim(f.Path, "file", f.Origin, item)
	}
	for _, d := range cfg.Directories {
		item := d
		item.Path, item.Origin = "", config.Origin{}
		claim(d.Path, "directory", d.Origin, item)
	}
	for _, l := range cfg.Links {
		item := l
		item.Path, item.Origin = "", config.Origin{}
		claim(l.Path, "link", l.Origin, item)
	}
	return errors.Join(errs...)
}
