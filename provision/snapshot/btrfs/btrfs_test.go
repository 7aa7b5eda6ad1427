package btrfs

import (
	"bytes"
	"encoding/binary"
	"os"
	"strings"
	"testing"
	"unsafe"
)

func TestArgSizes(t *testing.T) {
	// Every argument struct must be exactly what linux/btrfs.h declares,
	// or the kernel reads and writes the wrong bytes.
	for name, size := range map[string]uintptr{
		"vol_args":        unsafe.Sizeof(volArgs{}),
		"vol_args_v2":     unsafe.Sizeof(volArgsV2{}),
		"ino_lookup_args": unsafe.Sizeof(inoLookupArgs{}),
		"search_args":     unsafe.Sizeof(searchArgs{}),
	} {
		if size != 4096 {
			t.Errorf("%s: %d bytes, want 4096", name, size)
		}
	}
	if s := unsafe.Sizeof(searchKey{}); s != 104 {
		t.Errorf("search_key: %d bytes, want 104", s)
	}
}

func TestIoctlNumbers(t *testing.T) {
	// Values from linux/btrfs.h as compiled on x86_64.
	for name, tc := range map[string]struct{ got, want uintptr }{
		"SNAP_DESTROY":    {iocSnapDestroy, 0x5000940f},
		"TREE_SEARCH":     {iocTreeSearch, 0xd0009411},
		"INO_LOOKUP":      {iocInoLookup, 0xd0009412},
		"DEFAULT_SUBVOL":  {iocDefaultSubvol, 0x40089413},
		"SNAP_CREATE_V2":  {iocSnapCreateV2, 0x50009417},
		"SUBVOL_GETFLAGS": {iocSubvolGetFlags, 0x80089419},
		"SUBVOL_SETFLAGS": {iocSubvolSetFlags, 0x4008941a},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %#x, want %#x", name, tc.got, tc.want)
		}
	}
}

func dirItem(id uint64, name string) []byte {
	item := make([]byte, 30+len(name))
	binary.LittleEndian.PutUint64(item[0:], id)
	item[8] = 132 // ROOT_ITEM_KEY
	binary.LittleEndian.PutUint16(item[27:], uint16(len(name)))
	copy(item[30:], name)
	hdr := make([]byte, searchHeaderSize)
	binary.LittleEndian.PutUint64(hdr[8:], rootTreeDirObjectID)
	binary.LittleEndian.PutUint32(hdr[24:], dirItemKey)
	binary.LittleEndian.PutUint32(hdr[28:], uint32(len(item)))
	return append(hdr, item...)
}

func TestParseDefaultItem(t *testing.T) {
	id, err := parseDefaultItem(dirItem(258, "default"))
	if err != nil || id != 258 {
		t.Fatalf("got %d, %v", id, err)
	}
	for name, buf := range map[string][]byte{
		"short":      make([]byte, 10),
		"other name": dirItem(258, "nondefault"),
		"bad len":    func() []byte { b := dirItem(5, "default"); b[28] = 0xff; return b }(),
		"bad name":   func() []byte { b := dirItem(5, "default"); b[32+27] = 200; return b }(),
	} {
		if _, err := parseDefaultItem(buf); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestParseMountinfo(t *testing.T) {
	f, err := os.Open("testdata/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ms, err := ParseMountinfo(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path, mount, rel, root, source string
	}{
		{"/sysroot", "/sysroot", ".", "/@/.snapshots/1/snapshot", "/dev/vdb2"},
		{"/sysroot/etc", "/sysroot", "etc", "/@/.snapshots/1/snapshot", "/dev/vdb2"},
		{"/sysroot/var/lib", "/sysroot/var", "lib", "/@/var", "/dev/vdb2"},
		{"/sysrootx", "/", "sysrootx", "/", "/dev/vda1"},
		{"/mnt/a b/c", "/mnt/a b", "c", "/@/home/with space", "/dev/vdb2"},
	} {
		m, rel, ok := MountOf(ms, tc.path)
		if !ok || m.MountPoint != tc.mount || rel != tc.rel || m.Root != tc.root || m.Source != tc.source {
			t.Errorf("%s: got %+v %q %v", tc.path, m, rel, ok)
		}
	}
	m, _, _ := MountOf(ms, "/sysroot")
	if v, ok := m.Option("subvolid"); !ok || v != "258" {
		t.Errorf("subvolid = %q %v", v, ok)
	}
	if _, ok := m.Option("nosuch"); ok {
		t.Error("nosuch option found")
	}
}

func TestParseMountinfoErrors(t *testing.T) {
	for _, in := range []string{
		"garbage\n",
		"1 2 0:1 / / rw - ext4\n",
		"x 2 0:1 / / rw - ext4 /dev/a rw\n",
		"25 1 0:23 / / rw,relatime shared:1 ext4 /dev/vda1 rw\n",
	} {
		_, err := ParseMountinfo(strings.NewReader("22 1 0:21 / /proc rw - proc proc rw\n" + in))
		if err == nil || !strings.HasPrefix(err.Error(), "mountinfo:2: ") {
			t.Errorf("%q: %v", in, err)
		}
	}
}

func TestReadMountinfo(t *testing.T) {
	ms, err := ReadMountinfo()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, ok := MountOf(ms, "/"); !ok {
		t.Error("no mount for /")
	}
}

func FuzzParseMountinfo(f *testing.F) {
	if data, err := os.ReadFile("testdata/mountinfo"); err == nil {
		f.Add(data)
	}
	f.Add([]byte("1 2 3 \\ \\04 x - a b c\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ms, err := ParseMountinfo(strings.NewReader(string(data)))
		if err != nil {
			return
		}
		for _, m := range ms {
			m.Option("subvol")
		}
		MountOf(ms, "/a/b")
	})
}

// topDirItems is n tree search results of the top level's root directory:
// each item one []string of names (more than one: names whose hash
// collides), at offsets 1, 2...
func topDirItems(items ...[]string) []byte {
	var buf []byte
	for i, names := range items {
		var item []byte
		for _, name := range names {
			e := make([]byte, 30+len(name))
			binary.LittleEndian.PutUint64(e[0:], 257)
			binary.LittleEndian.PutUint16(e[27:], uint16(len(name)))
			copy(e[30:], name)
			item = append(item, e...)
		}
		hdr := make([]byte, searchHeaderSize)
		binary.LittleEndian.PutUint64(hdr[8:], firstFreeObjectID)
		binary.LittleEndian.PutUint64(hdr[16:], uint64(i+1))
		binary.LittleEndian.PutUint32(hdr[24:], dirItemKey)
		binary.LittleEndian.PutUint32(hdr[28:], uint32(len(item)))
		buf = append(buf, append(hdr, item...)...)
	}
	return buf
}

func TestDirItemsHold(t *testing.T) {
	buf := topDirItems([]string{"@"}, []string{"@home", ".provision"}, []string{"x"})
	for name, want := range map[string]bool{"@": true, ".provision": true, "x": true, ".provisio": false, "": false} {
		found, _, err := dirItemsHold(buf, 3, name)
		if err != nil || found != want {
			t.Errorf("%q: got %v, %v; want %v", name, found, err, want)
		}
	}
	if _, last, _ := dirItemsHold(buf, 3, "none"); last != 3 {
		t.Errorf("last offset %d, want 3", last)
	}
	for name, bad := range map[string][]byte{
		"short header": make([]byte, 10),
		"item beyond the buffer": func() []byte {
			b := topDirItems([]string{"@"})
			binary.LittleEndian.PutUint32(b[28:], 999)
			return b
		}(),
		"name beyond the item": func() []byte {
			b := topDirItems([]string{"@"})
			binary.LittleEndian.PutUint16(b[searchHeaderSize+27:], 99)
			return b
		}(),
		"short entry": func() []byte {
			b := topDirItems([]string{"@"})
			binary.LittleEndian.PutUint32(b[28:], 20)
			return b[:searchHeaderSize+20]
		}(),
	} {
		if _, _, err := dirItemsHold(bad, 1, ".provision"); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// FuzzDirItemsHold: any search result is read without a panic, and a
// name it reports found is one of the bytes it was given.
func FuzzDirItemsHold(f *testing.F) {
	f.Add(topDirItems([]string{"@"}, []string{"@home", ".provision"}), uint8(2), ".provision")
	f.Add(make([]byte, 40), uint8(1), "")
	f.Fuzz(func(t *testing.T, buf []byte, n uint8, name string) {
		found, _, err := dirItemsHold(buf, int(n), name)
		if found && (err != nil || !bytes.Contains(buf, []byte(name))) {
			t.Fatalf("found %q (%v) in bytes that do not hold it", name, err)
		}
	})
}
