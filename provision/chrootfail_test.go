package provision

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/provision-dev/provision/provision/chroot"
	"github.com/provision-dev/provision/sources"
	"github.com/provision-dev/provision/sources/dir"
)

// TestChrootFailureTypedNil: a chroot preparation that fails (an fstab
// device that is not there) and hands back a typed nil with its error is a
// clean abort: no panic, the run failed and rolled back, the tree as it was.
func TestChrootFailureTypedNil(t *testing.T) {
	root := newTarget(t)
	before := treeState(t, root)
	seed := seedDir(t, "#cloud-config\nruncmd: [\"true\"]\n")
	var console bytes.Buffer
	res := Run(context.Background(), Options{
		Root: root, Sources: []sources.Source{dir.New(seed)}, Console: &console,
		Begin: beginSnapshot(io.Discard, new(currentTxn)),
		Chroot: func(ctx context.Context, root string, exec bool) (Chroot, error) {
			var env *chroot.Env
			return env, errors.New("chroot: /etc/fstab:3: /srv: device UUID=none not found")
		},
	})
	if res.Err == nil || !strings.Contains(res.Err.Error(), "preparing the chroot") {
		t.Fatalf("got %v\n%s", res.Err, console.String())
	}
	if !strings.Contains(console.String(), "rolled back") {
		t.Errorf("no rollback:\n%s", console.String())
	}
	if !equalState(before, treeState(t, root)) {
		t.Error("the tree changed")
	}
}
