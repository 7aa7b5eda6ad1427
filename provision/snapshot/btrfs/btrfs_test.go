package btrfs

import (
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
