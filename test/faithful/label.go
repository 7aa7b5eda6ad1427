package faithful

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// FileContexts is the file_contexts of the policy the root's
// /etc/selinux/config names (SELINUXTYPE=, "targeted" when absent, as
// libselinux defaults), below root.
func FileContexts(root string) (string, error) {
	typ := "targeted"
	cfg, err := os.ReadFile(filepath.Join(root, "etc/selinux/config"))
	if err != nil && !os.IsNotExist(err) {
		return "", err
	}
	sc := bufio.NewScanner(bytes.NewReader(cfg))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if k, v, ok := strings.Cut(line, "="); ok && strings.EqualFold(strings.TrimSpace(k), "SELINUXTYPE") {
			if v = strings.Trim(strings.TrimSpace(v), `"`); v != "" {
				typ = v
			}
		}
	}
	fc := filepath.Join(root, "etc/selinux", typ, "contexts/files/file_contexts")
	if _, err := os.Stat(fc); err != nil {
		return "", fmt.Errorf("faithful: labelling needs the policy's file_contexts: %w", err)
	}
	return fc, nil
}

// label is microos-reality.md §7.2 step 9: every file of the root gets
// the label the stage's own policy gives its path, written by the host's
// setfiles. Each subvolume and filesystem is passed explicitly (setfiles
// does not cross into another st_dev, §3.5); -r maps the host path to the
// path the booted system sees, so nothing needs to be mounted into the
// snapshot: the siblings sit at @/<mount point>, as the snapshot root sits
// at snapshot 1 and the /var filesystem of F at <work>/var.
func (b *builder) label() error {
	fc, err := FileContexts(b.snap)
	if err != nil {
		return err
	}
	type group struct {
		root  string
		paths []string
	}
	snapPaths := []string{b.snap}
	if b.t.nestedEtc {
		snapPaths = append(snapPaths, filepath.Join(b.snap, "etc"))
	}
	at := filepath.Join(b.top, "@")
	sibs := []string{filepath.Join(at, ".snapshots")}
	for _, s := range b.t.siblings() {
		sibs = append(sibs, filepath.Join(at, s))
	}
	groups := []group{{b.snap, snapPaths}, {at, sibs}}
	if b.t.varFS {
		groups = append(groups, group{filepath.Dir(b.varRoot), []string{b.varRoot}})
	}
	for _, g := range groups {
		// -F: the whole context, not only the type; -T 0: a thread per
		// core.
		args := append([]string{"-F", "-T", "0", "-r", g.root, fc}, g.paths...)
		if err := b.run("setfiles", args...); err != nil {
			return err
		}
	}
	return nil
}

// Label reads the security.selinux xattr of p ("" if it has none).
func Label(p string) (string, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Lgetxattr(p, "security.selinux", buf)
		switch {
		case errors.Is(err, unix.ERANGE):
			buf = make([]byte, 2*len(buf))
			continue
		case errors.Is(err, unix.ENODATA):
			return "", nil
		case err != nil:
			return "", err
		}
		return strings.TrimRight(string(buf[:n]), "\x00"), nil
	}
}

// WantLabel is what the policy of fc gives path p of the booted system, a
// file or a directory as host is, by the host's matchpathcon.
func WantLabel(fc, p, host string) (string, error) {
	fi, err := os.Lstat(host)
	if err != nil {
		return "", err
	}
	mode := "file"
	switch {
	case fi.IsDir():
		mode = "dir"
	case fi.Mode()&os.ModeSymlink != 0:
		mode = "lnk_file"
	}
	out, err := run("matchpathcon", "-f", fc, "-m", mode, "-n", p)
	return strings.TrimSpace(out), err
}
