package rootfs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSpecialFilesRefused: appending to, or reading, a FIFO or a device
// planted in the target is a clear error at once, never a hang (a FIFO
// without a writer) or an unbounded read (/dev/zero).
func TestSpecialFilesRefused(t *testing.T) {
	r, _ := newRoot(t)
	if err := syscall.Mkfifo(filepath.Join(r.Dir, "etc/fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	paths := []string{"/etc/fifo"}
	if os.Geteuid() == 0 {
		if err := syscall.Mknod(filepath.Join(r.Dir, "etc/zero"), syscall.S_IFCHR|0o666, 1<<8|5); err != nil {
			t.Fatal(err)
		}
		os.Symlink("/etc/zero", filepath.Join(r.Dir, "etc/zlink"))
		paths = append(paths, "/etc/zero", "/etc/zlink")
	} else {
		t.Log("not root: the /dev/zero case (mknod) is skipped")
	}
	for _, p := range paths {
		for name, op := range map[string]func() error{
			"append": func() error { return r.AppendFile(p, []byte("x\n"), 0, Owner{-1, -1}) },
			"read":   func() error { _, err := r.ReadFile(p); return err },
		} {
			done := make(chan error, 1)
			go func() { done <- op() }()
			select {
			case err := <-done:
				if !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), p) {
					t.Errorf("%s %s: got %v, want ErrNotRegular naming the path", name, p, err)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("%s %s: hangs", name, p)
			}
		}
	}
}

// TestReadFileBounded: a regular file larger than the read limit is an
// error, not an allocation of its size.
func TestReadFileBounded(t *testing.T) {
	r, _ := newRoot(t)
	f, err := os.Create(filepath.Join(r.Dir, "etc/huge"))
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(MaxReadSize + 1)
	f.Close()
	if _, err := r.ReadFile("/etc/huge"); err == nil || !strings.Contains(err.Error(), "/etc/huge") {
		t.Fatalf("got %v", err)
	}
}
