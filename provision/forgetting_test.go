package provision

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/modules/accounts"
	"github.com/provision-dev/provision/modules/rootfs/rootfstest"
)

// addsUser is a program run in the target that adds a user the way
// useradd does: behind the Root's back.
type addsUser struct{ dir string }

func (a addsUser) Run(context.Context, modules.Command) (int, error) {
	return 0, os.WriteFile(filepath.Join(a.dir, "etc/passwd"), []byte("root:x:0:0::/root:/bin/sh\npkguser:x:990:990::/:/bin/false\n"), 0o644)
}

// After a program runs, the account databases the run memoized are read
// again: a deferred write_files owned by a user a package made finds it.
func TestProgramsDropMemoizedDatabases(t *testing.T) {
	root := rootfstest.NewRoot(t, map[string]string{"etc/passwd": "root:x:0:0::/root:/bin/sh\n"})
	if _, _, _, err := accounts.LookupUser(root, "pkguser"); err == nil {
		t.Fatal("pkguser found before the program ran")
	}
	exec := forgetting{Executor: addsUser{root.Dir}, root: root}
	if _, err := exec.Run(context.Background(), modules.Command{Argv: []string{"useradd"}}); err != nil {
		t.Fatal(err)
	}
	if uid, _, _, err := accounts.LookupUser(root, "pkguser"); err != nil || uid != 990 {
		t.Fatalf("after the program: uid %d, %v", uid, err)
	}
}
