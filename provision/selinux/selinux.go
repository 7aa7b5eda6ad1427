// Package selinux computes the SELinux file contexts the target's policy
// assigns to paths and writes them as security.selinux xattrs, so files the
// agent creates from the initrd (where no policy is loaded) are not left
// unlabeled_t when the system boots enforcing.
package selinux

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Policy is the file-context database of one policy type of a target tree.
// Lookup and Label are safe for concurrent use.
type Policy struct {
	// Mode is the SELINUX= value of the target's config: "enforcing",
	// "permissive", or "" when the config names neither (the kernel then
	// still loads the policy).
	Mode string
	// Type is the SELINUXTYPE= value (the policy directory name).
	Type string
	// FileContexts is the host path of the base file_contexts file.
	FileContexts string

	db *database
}

// Load reads the SELinux configuration and file contexts of the target tree
// at root (a host path). It returns a nil Policy and no error when the
// target does not use SELinux: no config, SELINUX=disabled, or no contexts
// directory for the configured type.
func Load(root string) (*Policy, error) {
	cfgPath := filepath.Join(root, "etc/selinux/config")
	mode, typ, err := readConfig(cfgPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if mode == "disabled" {
		return nil, nil
	}
	if typ == "" {
		// libselinux's own fallback (SELINUXDEFAULT), so it is what the
		// booted system uses; an explicit SELINUXTYPE= always wins.
		typ = "targeted"
	}
	dir := filepath.Join(root, "etc/selinux", typ, "contexts")
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		// A config naming a policy that is not installed is what a
		// system without the policy package looks like; nothing can be
		// labelled, and the booted system will not enforce that type.
		return nil, nil
	}
	fc := filepath.Join(dir, "files", "file_contexts")
	db, err := loadDatabase(fc)
	if err != nil {
		return nil, err
	}
	return &Policy{Mode: mode, Type: typ, FileContexts: fc, db: db}, nil
}

// readConfig reads /etc/selinux/config as libselinux does: the mode from
// the first line starting exactly "SELINUX=" whose value begins with
// enforcing, permissive or disabled (any case); the type from the last line
// starting, after blanks, with "SELINUXTYPE=" (any case), blanks trimmed.
// An unrecognised or missing mode leaves mode "": the system still loads
// the policy then, so files need labels.
func readConfig(path string) (mode, typ string, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", "", fmt.Errorf("selinux config: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	line := 0
	for sc.Scan() {
		line++
		raw := sc.Text()
		if v, ok := strings.CutPrefix(raw, "SELINUX="); ok && mode == "" {
			v = strings.ToLower(strings.TrimLeft(v, " \t\v\f\r"))
			for _, m := range []string{"enforcing", "permissive", "disabled"} {
				if strings.HasPrefix(v, m) {
					mode = m
					break
				}
			}
			continue
		}
		s := strings.TrimLeft(raw, " \t\v\f\r")
		const tag = "SELINUXTYPE="
		if len(s) >= len(tag) && strings.EqualFold(s[:len(tag)], tag) {
			v := strings.TrimSpace(s[len(tag):])
			// The type becomes a directory name under /etc/selinux.
			if v == "" || v == "." || v == ".." || strings.ContainsRune(v, '/') {
				return "", "", fmt.Errorf("%s:%d: SELINUXTYPE=%q is not a policy directory name", path, line, v)
			}
			typ = v
		}
	}
	return mode, typ, nil
}

// Lookup returns the context the policy assigns to the absolute path as the
// booted system sees it, for a file of the given type (mode.Type(); a
// regular file has no type bits). Pass fs.ModeIrregular when the type is
// unknown: then specifications for any type match, as matchpathcon does
// without -m. ok is false when nothing matches or the match is <<none>>.
func (p *Policy) Lookup(path string, mode fs.FileMode) (label string, ok bool) {
	if p == nil || p.db == nil {
		return "", false
	}
	return p.db.lookup(path, kindOf(mode))
}
