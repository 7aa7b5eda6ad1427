package rootfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// CreateFile makes p a new empty regular file with mode and owner (a
// regular file already there is replaced; anything else is an error) and
// returns it open for writing. It is for files whose shape a module must
// set before any data is written, as a swap file's flags and allocation,
// which a write-and-rename cannot give. Unlike WriteFile it is not atomic:
// the caller removes the file when it fails half-way.
func (r *Root) CreateFile(p string, mode fs.FileMode, owner Owner) (*os.File, error) {
	host, err := r.Resolve(p)
	if err != nil {
		return nil, err
	}
	if st, err := os.Lstat(host); err == nil && !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: %w (%s)", p, ErrNotRegular, fileType(st.Mode()))
	}
	if err := r.mkdirParents(host, 0o755); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if err := r.preserve(host); err != nil {
		return nil, err
	}
	if err := os.Remove(host); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	// O_EXCL|O_NOFOLLOW: a symlink planted between the check and here is
	// not followed out of the root.
	f, err := OpenFile(host, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, err
	}
	if err := r.setAttrs(host, mode, owner); err != nil {
		f.Close()
		os.Remove(host)
		return nil, err
	}
	return f, nil
}
