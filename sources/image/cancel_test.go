package image_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/provision-dev/provision/sources/blockdev/blockdevtest"
	"github.com/provision-dev/provision/sources/image"
)

// --source IMAGE honours the run's context: a signal before or while the
// image is read ends the fetch with the context's error, for every kind of
// seed the image may hold.
func TestFetchCancelled(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name  string
		label string
		files map[string]string
	}{
		{"combustion", "combustion", map[string]string{"combustion/script": "#!/bin/sh\n"}},
		{"nocloud", "cidata", map[string]string{"user-data": "#cloud-config\n", "meta-data": "instance-id: x\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := blockdevtest.MakeFAT(t, filepath.Join(dir, tc.name+".img"),
				blockdevtest.FAT{Label: tc.label, Bits: 12, SizeKiB: 1440, Files: tc.files})
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			docs, err := (&image.Source{Path: img}).Fetch(ctx)
			if !errors.Is(err, context.Canceled) || len(docs) != 0 {
				t.Fatalf("Fetch with a cancelled context: %d documents, %v; want context.Canceled", len(docs), err)
			}
		})
	}
}
