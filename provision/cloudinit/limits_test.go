package cloudinit

import (
	"context"
	"strings"
	"testing"
)

// TestArchiveEntriesLimit: a #cloud-config-archive with more entries than
// the part limit is refused before any entry is parsed, naming the limit
// (MIME has had the limit; an archive's entries are parts too).
func TestArchiveEntriesLimit(t *testing.T) {
	var b strings.Builder
	b.WriteString("#cloud-config-archive\n")
	for range maxParts + 1 {
		b.WriteString("- 'locale: C'\n")
	}
	_, err := Parse(context.Background(), DataSet{UserData: &Blob{Data: []byte(b.String())}}, Options{})
	if err == nil || !strings.Contains(err.Error(), "more than the limit of 4096") {
		t.Fatalf("got %v", err)
	}
	b.Reset()
	b.WriteString("#cloud-config-archive\n")
	for range 10 {
		b.WriteString("- 'locale: C'\n")
	}
	if _, err := Parse(context.Background(), DataSet{UserData: &Blob{Data: []byte(b.String())}}, Options{}); err != nil {
		t.Fatal(err)
	}
}
