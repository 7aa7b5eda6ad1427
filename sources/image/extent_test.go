package image_test

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskfs/go-diskfs/filesystem/iso9660"

	"github.com/provision-dev/provision/sources/blockdev/blockdevtest"
)

// seedISO makes a NoCloud ISO with genisoimage and returns it with the
// block number of user-data's extent.
func seedISO(t *testing.T, flags ...string) (string, uint32) {
	t.Helper()
	img := blockdevtest.MakeISO(t, filepath.Join(t.TempDir(), "seed.iso"), "cidata", map[string]string{
		"user-data": "#cloud-config\nhostname: h\n", "meta-data": "instance-id: i-1\n",
	}, flags...)
	fi, err := blockdevtest.OpenImage(t, img).Stat("user-data")
	if err != nil {
		t.Fatal(err)
	}
	return img, fi.Sys().(*iso9660.StatT).Location
}

// bothEndian is how ISO 9660 records a 32-bit number: little then big endian.
func bothEndian(v uint32) []byte {
	b := make([]byte, 8)
	binary.LittleEndian.PutUint32(b, v)
	binary.BigEndian.PutUint32(b[4:], v)
	return b
}

// An extent that lies past the end of the image, or begins where a
// truncated image ends, is an error naming the medium and the file: never
// zeros taken for the content (the truncated seed was recorded as
// provisioned before).
func TestUserDataExtentOutsideImage(t *testing.T) {
	for _, flags := range [][]string{{"-r"}, {"-J", "-r"}, {"-J"}} {
		name := strings.Join(flags, "")
		t.Run("past-end"+name, func(t *testing.T) {
			img, loc := seedISO(t, flags...)
			b, err := os.ReadFile(img)
			if err != nil {
				t.Fatal(err)
			}
			// Every directory record of user-data (primary and Joliet trees).
			old := bothEndian(loc)
			if bytes.Count(b, old) == 0 {
				t.Fatalf("no record with extent %d", loc)
			}
			b = bytes.ReplaceAll(b, old, bothEndian(0x00FFFFFF))
			if err := os.WriteFile(img, b, 0o644); err != nil {
				t.Fatal(err)
			}
			wantError(t, img)
		})
		t.Run("truncated"+name, func(t *testing.T) {
			img, loc := seedISO(t, flags...)
			if err := os.Truncate(img, int64(loc)*2048); err != nil {
				t.Fatal(err)
			}
			wantError(t, img)
		})
	}
}

func wantError(t *testing.T, img string) {
	t.Helper()
	docs, err := fetch(t, img)
	if err == nil {
		t.Fatalf("read %d documents, want an error", len(docs))
	}
	for _, want := range []string{img, "user-data", "past the end of the medium"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}
