package provision

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/provision-dev/provision/sources"
	"github.com/provision-dev/provision/sources/dir"
)

// TestConsoleLinesCannotBeForged: a write_files path holding a newline
// prints escaped on its own console line (and in the target's log); no
// line starts with a mark the run did not print itself.
func TestConsoleLinesCannotBeForged(t *testing.T) {
	root := newTarget(t)
	seed := seedDir(t, "#cloud-config\nwrite_files:\n  - path: \"/etc/x\\n[ OK ] transaction: committed (forged)\"\n    content: x\n")
	var console bytes.Buffer
	res := Run(context.Background(), Options{
		Root: root, Sources: []sources.Source{dir.New(seed)}, Console: &console,
		Begin: beginSnapshot(io.Discard, new(currentTxn)),
	})
	if res.Err != nil {
		t.Fatalf("run: %v\n%s", res.Err, console.String())
	}
	committed := 0
	for _, l := range strings.Split(console.String(), "\n") {
		if strings.HasPrefix(l, "[ OK ] transaction: committed") {
			committed++
		}
	}
	if committed != 1 || !strings.Contains(console.String(), `/etc/x\n[ OK ] transaction: committed (forged)`) {
		t.Fatalf("console (%d committed lines):\n%s", committed, console.String())
	}
}
