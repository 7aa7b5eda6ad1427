package selinux

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// substitution is one line of file_contexts.subs or .subs_dist: paths under
// src are labelled as if they were under dst.
type substitution struct {
	src, dst string
}

// readSubs reads a substitution file: "src dst" per line, '#' comments,
// extra fields ignored. A missing file is no substitutions. The result is
// in reverse file order because libselinux keeps the entries in a list it
// prepends to and takes the first match: the last matching line wins.
func readSubs(name string) ([]substitution, error) {
	data, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("file contexts substitutions: %w", err)
	}
	var subs []substitution
	for len(data) > 0 {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte{'\n'})
		f := fieldsC(line)
		if len(f) < 2 || f[0][0] == '#' {
			continue
		}
		subs = append(subs, substitution{src: f[0], dst: f[1]})
	}
	for i, j := 0, len(subs)-1; i < j; i, j = i+1, j-1 {
		subs[i], subs[j] = subs[j], subs[i]
	}
	return subs, nil
}

// apply rewrites p by the first substitution whose src is p or a parent
// directory of p; ok is false when none applies.
func apply(subs []substitution, p string) (string, bool) {
	for _, s := range subs {
		if !strings.HasPrefix(p, s.src) {
			continue
		}
		rest := p[len(s.src):]
		if rest != "" && rest[0] != '/' {
			continue
		}
		if rest != "" && s.dst == "/" {
			// "/x /" maps /x/y to /y, not //y.
			rest = rest[1:]
		}
		return s.dst + rest, true
	}
	return p, false
}

// substitute applies the local substitutions and then the distribution
// ones to the result, as libselinux's selabel_sub_key does; each list is
// applied at most once.
func (db *database) substitute(key string) string {
	if k, ok := apply(db.subs, key); ok {
		key = k
	}
	k, _ := apply(db.distSubs, key)
	return k
}
