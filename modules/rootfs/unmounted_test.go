package rootfs

import (
	"strings"
	"testing"
)

// A mount point left unmounted refuses every change below it, and only
// below it.
func TestUnmountedRefusesWritesBelow(t *testing.T) {
	r, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r.Unmounted = []Unmounted{{Dir: "/srv", Why: "/etc/fstab:4: UUID=x: no such device"}}
	for _, p := range []string{"/srv/www/index.html", "/srv"} {
		err := r.WriteFile(p, []byte("x"), 0o644, Owner{-1, -1})
		if err == nil || !strings.Contains(err.Error(), "which is not mounted (/etc/fstab:4") {
			t.Errorf("%s: %v", p, err)
		}
	}
	if err := r.MkdirAll("/srv/data", 0o755, Owner{-1, -1}); err == nil {
		t.Error("MkdirAll below /srv: no error")
	}
	if r.Exists("/srv") {
		t.Error("/srv created in the root's mount point")
	}
	for _, p := range []string{"/srvx/a", "/etc/a"} {
		if err := r.WriteFile(p, []byte("x"), 0o644, Owner{-1, -1}); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}
