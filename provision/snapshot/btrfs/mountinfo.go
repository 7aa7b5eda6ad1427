package btrfs

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/provision-dev/provision/modules/fstab"
)

// Mount is one line of /proc/self/mountinfo (proc(5)).
type Mount struct {
	ID, Parent int
	Root       string // the path inside the filesystem that is mounted here
	MountPoint string
	FSType     string
	Source     string
	SuperOpts  string
}

// Option returns the value of a super option such as subvol= or subvolid=.
func (m Mount) Option(name string) (string, bool) {
	for _, o := range strings.Split(m.SuperOpts, ",") {
		k, v, _ := strings.Cut(o, "=")
		if k == name {
			return v, true
		}
	}
	return "", false
}

// maxMountinfo bounds what we read: a real table is far smaller, and a
// hostile or broken /proc must not make us allocate without end.
const maxMountinfo = 16 << 20

// ParseMountinfo parses the format of /proc/self/mountinfo. Lines that do not
// have the documented shape are an error naming the line.
func ParseMountinfo(r io.Reader) ([]Mount, error) {
	var out []Mount
	sc := bufio.NewScanner(io.LimitReader(r, maxMountinfo))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		m, err := parseMountLine(line)
		if err != nil {
			return nil, fmt.Errorf("mountinfo:%d: %w", n, err)
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("mountinfo:%d: %w", n+1, err)
	}
	return out, nil
}

func parseMountLine(line string) (Mount, error) {
	f := strings.Fields(line)
	sep := -1
	for i := 6; i < len(f); i++ {
		if f[i] == "-" {
			sep = i
			break
		}
	}
	if len(f) < 10 || sep < 0 || len(f) < sep+4 {
		return Mount{}, fmt.Errorf("malformed line %q", truncate(line))
	}
	id, err1 := strconv.Atoi(f[0])
	parent, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil {
		return Mount{}, fmt.Errorf("bad mount id in %q", truncate(line))
	}
	return Mount{
		ID: id, Parent: parent,
		Root:       fstab.UnescapeOctal(f[3]),
		MountPoint: fstab.UnescapeOctal(f[4]),
		FSType:     fstab.UnescapeOctal(f[sep+1]),
		Source:     fstab.UnescapeOctal(f[sep+2]),
		SuperOpts:  fstab.UnescapeOctal(f[sep+3]),
	}, nil
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// ReadMountinfo parses /proc/self/mountinfo.
func ReadMountinfo() ([]Mount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseMountinfo(f)
}

// MountOf returns the mount that contains path (the last-mounted one with the
// longest matching mount point) and path relative to that mount point.
// path must be absolute and free of symlinks.
func MountOf(mounts []Mount, path string) (Mount, string, bool) {
	best := -1
	for i, m := range mounts {
		if !within(m.MountPoint, path) {
			continue
		}
		if best < 0 || len(m.MountPoint) >= len(mounts[best].MountPoint) {
			best = i
		}
	}
	if best < 0 {
		return Mount{}, "", false
	}
	rel, err := filepath.Rel(mounts[best].MountPoint, path)
	if err != nil {
		return Mount{}, "", false
	}
	return mounts[best], rel, true
}

func within(dir, path string) bool {
	if dir == "/" {
		return strings.HasPrefix(path, "/")
	}
	return path == dir || strings.HasPrefix(path, dir+"/")
}
