package journal

import (
	"bytes"
	"encoding/json"
	"testing"
)

func checkEntry(t *testing.T, e entry) {
	t.Helper()
	want, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	if got := appendEntry(nil, &e); !bytes.Equal(got, want) {
		t.Fatalf("appendEntry differs from encoding/json:\n got: %s\nwant: %s", got, want)
	}
	var back entry
	if err := json.Unmarshal(appendEntry(nil, &e), &back); err != nil {
		t.Fatalf("the record does not read back: %v", err)
	}
}

func TestAppendEntryMatchesEncodingJSON(t *testing.T) {
	for _, e := range []entry{
		{},
		{Seq: 1, Path: "/etc/passwd", Kind: kindFile, Mode: 0o644, UID: 0, GID: 0, Atime: 1, Mtime: -2, Inline: true, Data: []byte("root:x:0:0::/root:/bin/sh\n")},
		{Seq: 2, Path: "/x <&> \"q\" \xff", Kind: kindSymlink, Target: "../a\nb", UID: -1, GID: 65534},
		{Seq: 3, Path: "/d", Kind: kindDir, Mode: 0o7777, Xattrs: map[string][]byte{"user.b": []byte("2"), "security.selinux": []byte("system_u:object_r:etc_t:s0\x00"), "user.nil": nil, "user.empty": {}}},
		{Seq: 4, Kind: kindAbsent, Xattrs: map[string][]byte{}, Data: []byte{}},
	} {
		checkEntry(t, e)
	}
}

func FuzzAppendEntry(f *testing.F) {
	f.Add(7, "/etc/shadow", "file", uint32(0o640), 0, 42, int64(1), int64(2), "", "user.x", []byte("v"), true, []byte("data"))
	f.Fuzz(func(t *testing.T, seq int, path, kind string, mode uint32, uid, gid int, atime, mtime int64, target, xname string, xval []byte, inline bool, data []byte) {
		e := entry{Seq: seq, Path: path, Kind: kind, Mode: mode, UID: uid, GID: gid, Atime: atime, Mtime: mtime, Target: target, Inline: inline, Data: data}
		if xname != "" {
			e.Xattrs = map[string][]byte{xname: xval, xname + "2": data}
		}
		checkEntry(t, e)
	})
}
