package chroot

import (
	"bufio"
	"bytes"
	"fmt"
	"github.com/provision-dev/provision/modules/fstab"
	"os"
	"strconv"
	"strings"
)

// mountInfo is one line of /proc/self/mountinfo.
type mountInfo struct {
	ID, Parent   int
	Root         string // path of the mount's root within its filesystem
	MountPoint   string
	Options      string
	FSType       string
	Source       string
	SuperOptions string
}

func readMountInfo() ([]mountInfo, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	return parseMountInfo(data)
}

// parseMountInfo parses proc(5) mountinfo: "ID PARENT MAJ:MIN ROOT POINT
// OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS".
func parseMountInfo(data []byte) ([]mountInfo, error) {
	var out []mountInfo
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if len(f) < 7 || sep < 0 || len(f) < sep+3 {
			return nil, fmt.Errorf("mountinfo: malformed line %q", sc.Text())
		}
		id, err1 := strconv.Atoi(f[0])
		parent, err2 := strconv.Atoi(f[1])
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("mountinfo: malformed line %q", sc.Text())
		}
		m := mountInfo{
			ID:         id,
			Parent:     parent,
			Root:       fstab.UnescapeOctal(f[3]),
			MountPoint: fstab.UnescapeOctal(f[4]),
			Options:    f[5],
			FSType:     f[sep+1],
			Source:     fstab.UnescapeOctal(f[sep+2]),
		}
		if len(f) > sep+3 {
			m.SuperOptions = f[sep+3]
		}
		out = append(out, m)
	}
	return out, sc.Err()
}

// under reports whether p is dir or below it (both clean absolute paths).
func under(p, dir string) bool {
	if dir == "/" {
		return true
	}
	return p == dir || strings.HasPrefix(p, dir+"/")
}

// mountOf returns the mount that holds path p: the last-mounted entry whose
// mount point is the longest prefix of p.
func mountOf(mounts []mountInfo, p string) (mountInfo, bool) {
	best, found := mountInfo{}, false
	for _, m := range mounts {
		if !under(p, m.MountPoint) {
			continue
		}
		if !found || len(m.MountPoint) >= len(best.MountPoint) {
			best, found = m, true
		}
	}
	return best, found
}
