package blockdevtest

import (
	"context"
	"strings"
	"testing"

	"github.com/provision-dev/provision/sources"
	"github.com/provision-dev/provision/sources/blockdev"
)

// Summary prints documents one a line, source|file|kind|data, so a test can
// compare what a source read with one string.
func Summary(docs []sources.Document) string {
	var b strings.Builder
	for _, d := range docs {
		b.WriteString(d.Origin.Source + "|" + d.Origin.File + "|" + string(d.Kind) + "|" + string(d.Data) + "\n")
	}
	return b.String()
}

// OpenImage opens the first filesystem found in an image file, as the
// sources' ReadMedium functions take it; it is closed when the test ends.
func OpenImage(t testing.TB, img string) *blockdev.Medium {
	t.Helper()
	vols, err := blockdev.ScanImage(img)
	if err != nil {
		t.Fatal(err)
	}
	if len(vols) == 0 {
		t.Fatalf("%s: no filesystem found", img)
	}
	m, err := blockdev.Env{}.Open(context.Background(), vols[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}
