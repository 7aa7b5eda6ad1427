package disk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// makeImage partitions a sparse image of size MiB with the real sfdisk.
func makeImage(t *testing.T, mib int64, script string) string {
	t.Helper()
	if _, err := exec.LookPath("sfdisk"); err != nil {
		t.Skip("sfdisk (fdisk package) is not installed: the reference tables cannot be made")
	}
	p := filepath.Join(t.TempDir(), "disk.img")
	if err := os.Truncate(p, 0); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	resize(t, p, mib)
	cmd := exec.Command("sfdisk", "--no-reread", "--no-tell-kernel", "-q", p)
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	return p
}

func resize(t *testing.T, p string, mib int64) {
	t.Helper()
	if err := os.Truncate(p, mib<<20); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "copy.img")
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

// dump is `sfdisk --dump` with the image's name taken out.
func dump(t *testing.T, p string) string {
	t.Helper()
	out, err := exec.Command("sfdisk", "--dump", p).CombinedOutput()
	if err != nil {
		t.Fatalf("sfdisk --dump: %v\n%s", err, out)
	}
	return strings.ReplaceAll(string(out), p, "IMG")
}

func growFile(t *testing.T, p string, part int) Growth {
	t.Helper()
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	g, err := Grow(f, st.Size(), 512, part, false)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// growpartRef runs cloud-utils' growpart on a copy; "" when it is missing.
func growpartRef(t *testing.T, p string, part int) (string, string) {
	t.Helper()
	gp, err := exec.LookPath("growpart")
	if err != nil {
		return "", ""
	}
	ref := copyFile(t, p)
	out, _ := exec.Command(gp, ref, strconvI(part)).CombinedOutput()
	return ref, string(out)
}

func strconvI(i int) string { return string(rune('0' + i)) }

func TestGrowMatchesGrowpart(t *testing.T) {
	for _, tc := range []struct {
		name, script string
		part         int
		grown        int64 // MiB after growing the image
		changed      bool
	}{
		{"gpt-last", "label: gpt\nstart=2048, size=32768, type=uefi\nsize=65536, type=linux\n", 2, 200, true},
		{"gpt-followed", "label: gpt\nstart=2048, size=32768\nsize=32768\nstart=100000, size=20000\n", 2, 128, true},
		{"gpt-not-grown-disk", "label: gpt\nstart=2048, size=32768\nsize=32768\n", 2, 64, true},
		{"gpt-blocked", "label: gpt\nstart=2048, size=32768\nsize=32768\nsize=2048\n", 2, 128, false},
		{"dos-last", "label: dos\nstart=2048, size=32768, type=c, bootable\nsize=65536, type=83\n", 2, 200, true},
		{"dos-first-of-two", "label: dos\nstart=2048, size=32768\nstart=100000, size=20000\n", 1, 128, true},
		{"dos-tiny-gain", "label: dos\nstart=2048, size=129000\n", 1, 64, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := makeImage(t, 64, tc.script)
			resize(t, img, tc.grown)
			ref, refOut := growpartRef(t, img, tc.part)
			g := growFile(t, img, tc.part)
			if g.Changed() != tc.changed {
				t.Fatalf("changed %v, want %v: %s", g.Changed(), tc.changed, g)
			}
			if ref == "" {
				t.Log("growpart (cloud-guest-utils) is not installed: compared with the expected change only")
				return
			}
			if !strings.HasPrefix(refOut, strings.Fields(g.String())[0]) {
				t.Errorf("growpart said %q, we %q", refOut, g)
			}
			if got, want := dump(t, img), dump(t, ref); got != want {
				t.Errorf("sfdisk --dump differs from growpart's:\nours:\n%s\ngrowpart's:\n%s", got, want)
			}
			// The tables live in the first and last MiB: byte for byte
			// what growpart (sfdisk) wrote, protective MBR and backup
			// GPT included.
			if a, b := ends(t, img), ends(t, ref); !bytes.Equal(a, b) {
				t.Errorf("the table sectors differ from growpart's")
			}
			if tc.changed && strings.TrimSpace(refOut) != g.String() {
				t.Errorf("growpart said %q, we %q", strings.TrimSpace(refOut), g)
			}
			// A second run is growpart's NOCHANGE.
			if again := growFile(t, img, tc.part); again.Changed() {
				t.Errorf("second run changed again: %s", again)
			}
		})
	}
}

// TestGPTBackupMoved checks what sfdisk --dump does not show: the backup
// header at the new last sector, pointing back at LBA 1, with valid CRCs.
func TestGPTBackupMoved(t *testing.T) {
	img := makeImage(t, 64, "label: gpt\nstart=2048, size=32768\nsize=32768\n")
	resize(t, img, 100)
	growFile(t, img, 2)
	b, _ := os.ReadFile(img)
	n := int64(len(b)) / 512
	bh := b[(n-1)*512:][:512]
	if string(bh[:8]) != "EFI PART" {
		t.Fatal("no backup header at the last sector")
	}
	if my, alt := binary.LittleEndian.Uint64(bh[hdrMyLBA:]), binary.LittleEndian.Uint64(bh[hdrAltLBA:]); my != uint64(n-1) || alt != 1 {
		t.Errorf("backup header my=%d alt=%d", my, alt)
	}
	hs := binary.LittleEndian.Uint32(bh[12:])
	if headerCRC(bh[:hs]) != binary.LittleEndian.Uint32(bh[hdrCRC:]) {
		t.Error("backup header CRC is wrong")
	}
	if out, err := exec.Command("sfdisk", "--verify", img).CombinedOutput(); err != nil || bytes.Contains(out, []byte("corrupt")) {
		t.Errorf("sfdisk --verify: %v\n%s", err, out)
	}
	if pm := binary.LittleEndian.Uint32(b[446+12:]); int64(pm) != n-1 {
		t.Errorf("protective MBR covers %d sectors, want %d", pm, n-1)
	}
}

func TestRefusals(t *testing.T) {
	img := makeImage(t, 64, "label: dos\nstart=2048, size=20000\nstart=30000, type=5\nstart=32048, size=8000\n")
	resize(t, img, 128)
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	for part, want := range map[int]string{2: "extended", 5: "logical", 4: "no such"} {
		_, err := Grow(f, st.Size(), 512, part, false)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("partition %d: %v, want %q", part, err, want)
		}
		if want != "no such" && !errors.Is(err, ErrNotGrowable) {
			t.Errorf("partition %d: %v is not ErrNotGrowable", part, err)
		}
	}
}

func TestDamagedTables(t *testing.T) {
	img := makeImage(t, 64, "label: gpt\nstart=2048, size=32768\n")
	resize(t, img, 128)
	b, _ := os.ReadFile(img)
	bad := bytes.Clone(b)
	bad[512+hdrLastLBA] ^= 1 // header CRC no longer matches
	if _, err := Grow(memDev(bad), int64(len(bad)), 512, 1, false); err == nil || !strings.Contains(err.Error(), "CRC32") {
		t.Errorf("damaged header: %v", err)
	}
	bad = bytes.Clone(b)
	bad[1024+40] ^= 1 // an entry: the array CRC no longer matches
	if _, err := Grow(memDev(bad), int64(len(bad)), 512, 1, false); err == nil || !strings.Contains(err.Error(), "CRC32") {
		t.Errorf("damaged entries: %v", err)
	}
	if _, err := Grow(memDev(make([]byte, 1<<20)), 1<<20, 512, 1, false); !errors.Is(err, ErrNotGrowable) {
		t.Errorf("no table: %v", err)
	}
	if _, err := Grow(memDev(b), int64(len(b)), 1000, 1, false); err == nil {
		t.Error("sector size 1000 accepted")
	}
	mbr := make([]byte, 1<<20)
	mbr[510], mbr[511] = 0x55, 0xAA
	mbr[446+4] = 0x83 // a type, but no sectors
	if _, err := Grow(memDev(mbr), int64(len(mbr)), 512, 1, false); err == nil || !strings.Contains(err.Error(), "not a partition") {
		t.Errorf("an empty MBR entry: %v", err)
	}
	gpt := tinyGPT()
	binary.LittleEndian.PutUint64(gpt[1024+40:], 20) // ends before it starts
	arr := gpt[1024 : 1024+4*128]
	binary.LittleEndian.PutUint32(gpt[512+hdrArrayCRC:], crc32.ChecksumIEEE(arr))
	binary.LittleEndian.PutUint32(gpt[512+hdrCRC:], headerCRC(gpt[512:604]))
	if _, err := Grow(memDev(gpt), int64(len(gpt)), 512, 1, false); err == nil || !strings.Contains(err.Error(), "not a partition") {
		t.Errorf("a GPT entry ending before its start: %v", err)
	}
}

// memDev is a disk in memory; reads past its end are short, as a file's.
type memDev []byte

func (m memDev) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(m)) {
		return 0, io.EOF
	}
	n := copy(p, m[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m memDev) WriteAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > int64(len(m)) {
		return 0, io.ErrShortWrite
	}
	return copy(m[off:], p), nil
}

// FuzzGrow: no table, however made, panics the grower or makes it write
// outside the disk.
func FuzzGrow(f *testing.F) {
	f.Add(make([]byte, 64<<10), 1)
	gpt := make([]byte, 64<<10)
	gpt[510], gpt[511] = 0x55, 0xAA
	gpt[446+4] = 0xEE
	copy(gpt[512:], "EFI PART")
	f.Add(gpt, 2)
	f.Add(tinyGPT(), 1)
	mbr := make([]byte, 64<<10)
	mbr[510], mbr[511] = 0x55, 0xAA
	e := mbr[446:]
	e[4] = 0x83
	binary.LittleEndian.PutUint32(e[8:], 2)
	binary.LittleEndian.PutUint32(e[12:], 8)
	f.Add(mbr, 1)
	f.Fuzz(func(t *testing.T, b []byte, part int) {
		if len(b) > 1<<20 {
			return
		}
		Grow(memDev(b), int64(len(b)), 512, part, false)
	})
}

// ends is an image's first and last MiB.
func ends(t *testing.T, p string) []byte {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	b := make([]byte, 2<<20)
	if _, err := f.ReadAt(b[:1<<20], 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ReadAt(b[1<<20:], st.Size()-1<<20); err != nil {
		t.Fatal(err)
	}
	return b
}

// tinyGPT is a valid GPT on 128 sectors: 4 entries, partition 1 at
// sectors 34-41, the backup where a 64-sector disk would end (grown).
func tinyGPT() []byte {
	const n = 128
	b := make([]byte, n*512)
	b[510], b[511] = 0x55, 0xAA
	b[446+4] = 0xEE
	binary.LittleEndian.PutUint32(b[446+8:], 1)
	binary.LittleEndian.PutUint32(b[446+12:], 63)
	arr := b[1024 : 1024+4*128]
	arr[0] = 1 // a non-zero type GUID
	binary.LittleEndian.PutUint64(arr[32:], 34)
	binary.LittleEndian.PutUint64(arr[40:], 41)
	h := b[512:1024]
	copy(h, "EFI PART")
	binary.LittleEndian.PutUint32(h[8:], 0x10000)
	binary.LittleEndian.PutUint32(h[12:], 92)
	binary.LittleEndian.PutUint64(h[hdrMyLBA:], 1)
	binary.LittleEndian.PutUint64(h[hdrAltLBA:], 63)
	binary.LittleEndian.PutUint64(h[hdrFirstLBA:], 3)
	binary.LittleEndian.PutUint64(h[hdrLastLBA:], 61)
	binary.LittleEndian.PutUint64(h[hdrEntryLBA:], 2)
	binary.LittleEndian.PutUint32(h[hdrEntries:], 4)
	binary.LittleEndian.PutUint32(h[hdrEntrySize:], 128)
	binary.LittleEndian.PutUint32(h[hdrArrayCRC:], crc32.ChecksumIEEE(arr))
	binary.LittleEndian.PutUint32(h[hdrCRC:], headerCRC(h[:92]))
	return b
}

func TestTinyGPTGrows(t *testing.T) {
	b := tinyGPT()
	g, err := Grow(memDev(b), int64(len(b)), 512, 1, false)
	// 128 sectors leave no MiB to grow by: growpart's fudge says no.
	if err != nil || g.Changed() {
		t.Fatalf("%v %v", g, err)
	}
	if !strings.Contains(g.NoChange, "could only be grown by") {
		t.Errorf("%s", g)
	}
}
