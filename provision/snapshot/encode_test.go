package snapshot

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

func sameAsMarshal(t *testing.T, v any, got []byte) {
	t.Helper()
	want, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("hand-written record differs from encoding/json:\n got: %s\nwant: %s", got, want)
	}
}

func TestRecordsMatchEncodingJSON(t *testing.T) {
	for _, d := range []dirTimes{{}, {Atime: 1, Mtime: -1, Root: "/sysroot"}, {Root: "/a <&> \"b\"\n\xff"}} {
		sameAsMarshal(t, d, appendDirTimes(nil, d))
	}
	now := time.Now()
	for _, st := range []btrfsState{
		{},
		{Snapshot: "@/.snapshots/2/snapshot", SnapperDir: ".snapshots/2", Num: 2, Root: "@/.snapshots/1/snapshot", OldDefault: 259, Created: now, Top: "/run/provision/top"},
		{Snapshot: "x\u2028", Root: "<r>", Created: time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("", 5*3600+1800)),
			Outside: []outsideSubvol{{Target: "/var", Orig: "/@/var", Snap: "/@/var.provision-new", Trash: "/@/var.provision-old"}, {}}},
	} {
		sameAsMarshal(t, &st, appendBtrfsState(nil, &st))
	}
}

func FuzzRecordsMatchEncodingJSON(f *testing.F) {
	f.Add("@/.snapshots/2/snapshot", ".snapshots/2", uint64(2), int64(1700000000123456789), "/var", int64(-1))
	f.Fuzz(func(t *testing.T, a, b string, n uint64, nanos int64, c string, x int64) {
		sameAsMarshal(t, dirTimes{Atime: nanos, Mtime: x, Root: a}, appendDirTimes(nil, dirTimes{Atime: nanos, Mtime: x, Root: a}))
		// Times encoding/json can write: years 0 to 9999.
		created := time.Unix(0, nanos).In(time.FixedZone("", int(x%(14*3600))))
		st := btrfsState{Snapshot: a, SnapperDir: b, Num: n, Root: c, OldDefault: n / 3, Created: created, Top: b + c}
		if n%2 == 0 {
			st.Outside = []outsideSubvol{{Target: a, Orig: b, Snap: c, Trash: a + c}}
		}
		sameAsMarshal(t, &st, appendBtrfsState(nil, &st))
	})
}
