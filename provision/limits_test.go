package provision

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/provision-dev/provision/provision/config"
	"github.com/provision-dev/provision/sources"
	"github.com/provision-dev/provision/sources/dir"
)

// TestUsersLimitBeforeWork: a cloud-config with more users than the limit
// is refused as invalid before any work, naming the limit and the line of
// the first user past it, the tree untouched.
func TestUsersLimitBeforeWork(t *testing.T) {
	var b strings.Builder
	b.WriteString("#cloud-config\nusers:\n")
	for i := range config.MaxUsers + 1 {
		fmt.Fprintf(&b, "  - name: u%d\n", i)
	}
	root := newTarget(t)
	before := treeState(t, root)
	seed := seedDir(t, b.String())
	res := Run(context.Background(), Options{Root: root, Sources: []sources.Source{dir.New(seed)}, Begin: beginSnapshot(nil, new(currentTxn))})
	if res.Err == nil || !errors.Is(res.Err, ErrInvalid) || res.Status != StatusInvalid {
		t.Fatalf("got %s %v", res.Status, res.Err)
	}
	want := fmt.Sprintf("user-data:%d:5: %d users, more than the limit of %d", config.MaxUsers+3, config.MaxUsers+1, config.MaxUsers)
	if !strings.Contains(res.Err.Error(), want) {
		t.Errorf("error %q lacks %q", res.Err, want)
	}
	if !equalState(before, treeState(t, root)) {
		t.Error("the tree changed")
	}
}
