package seed

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem"
	"github.com/diskfs/go-diskfs/filesystem/fat12"
	"github.com/diskfs/go-diskfs/filesystem/fat16"
	"github.com/diskfs/go-diskfs/filesystem/iso9660"
)

// Write writes the layout as an image at out. The image is built next to
// out and renamed over it, so out is either the old file or the complete
// new image. out must be a regular file or not exist: writing straight to
// a device is dd's job.
func Write(l *Layout, out string) error {
	if st, err := os.Stat(out); err == nil && !st.Mode().IsRegular() {
		return fmt.Errorf("%w: %s exists and is not a regular file", ErrInput, out)
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing to remove
	switch l.Filesystem {
	case ISO9660:
		err = writeISO(l, tmp)
	case VFAT:
		err = writeFAT(l, tmp)
	default:
		err = fmt.Errorf("%w: filesystem %q", ErrInput, l.Filesystem)
	}
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s image %s: %w", l.Filesystem, out, err)
	}
	return os.Rename(tmp.Name(), out)
}

// writeISO writes an ISO9660 image with Rock Ridge and without Joliet.
//
// Rock Ridge is what keeps the names: without it go-diskfs writes ISO9660
// level 1 names (user-data becomes USER_DAT.;1), and Linux's isofs would
// show user_dat. genisoimage -r, which cloud-localds uses, does the same.
// Joliet stays off: go-diskfs's Joliet tree is wrong below the root, and
// Linux prefers Joliet over Rock Ridge only when Rock Ridge is absent.
func writeISO(l *Layout, out *os.File) error {
	// go-diskfs builds an ISO from a directory tree on disk.
	ws, err := os.MkdirTemp("", "provision-seed-iso-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(ws)
	// Directories on the medium are 0755 whatever the umask and MkdirTemp's
	// 0700 say: Rock Ridge records the workspace's modes.
	if err := os.Chmod(ws, 0o755); err != nil {
		return err
	}
	for _, f := range l.Files {
		p := filepath.Join(ws, filepath.FromSlash(f.Name))
		for d := path.Dir(f.Name); d != "."; d = path.Dir(d) {
			dp := filepath.Join(ws, filepath.FromSlash(d))
			if err := os.MkdirAll(dp, 0o755); err != nil {
				return err
			}
			if err := os.Chmod(dp, 0o755); err != nil {
				return err
			}
		}
		if err := os.WriteFile(p, f.Data, 0o600); err != nil {
			return err
		}
		// WriteFile's mode is filtered by the umask; the medium gets the
		// layout's bits.
		if err := os.Chmod(p, f.Mode.Perm()); err != nil {
			return err
		}
	}
	fsys, err := iso9660.Create(file.New(out, false), 0, 0, 2048, ws)
	if err != nil {
		return err
	}
	return fsys.Finalize(iso9660.FinalizeOptions{
		RockRidge:        true,
		VolumeIdentifier: l.Label,
	})
}

// FAT sizing. The smallest image is cloud-localds's 128 KiB; an image is
// sized to its content plus a quarter, and retried twice as big if the
// content does not fit after all.
const (
	minFATSize  = 128 << 10
	fatAttempts = 8
)

// errFATFull says the content did not fit the image; the caller retries
// with a larger one.
var errFATFull = errors.New("content does not fit the FAT image")

// writeFAT writes a FAT12 image when the content fits one, else FAT16, as
// mkfs.fat picks for small media. FAT32 is not used: below 65525 clusters
// (about 33 MiB) a FAT32 volume breaks the specification and mtools
// refuses to read the ones go-diskfs makes, and seeds are far smaller.
func writeFAT(l *Layout, out *os.File) error {
	size := estimateFATSize(l.Files)
	var err error
	for range fatAttempts {
		err = writeFATSized(l, out, size)
		if !errors.Is(err, errFATFull) {
			return err
		}
		size *= 2
	}
	return err
}

// estimateFATSize counts every file and directory rounded up to 4 KiB
// clusters (the largest go-diskfs uses for FAT12 images below 16 MiB), and
// adds room for the tables and a quarter of headroom.
func estimateFATSize(files []File) int64 {
	const cluster = 4 << 10
	dirs := map[string]bool{}
	var data int64
	for _, f := range files {
		data += (int64(len(f.Data)) + cluster - 1) / cluster * cluster
		for d := path.Dir(f.Name); d != "."; d = path.Dir(d) {
			if !dirs[d] {
				dirs[d] = true
				data += cluster
			}
		}
	}
	size := data + data/4 + 64<<10
	size = (size + 64<<10 - 1) / (64 << 10) * (64 << 10)
	return max(size, minFATSize)
}

func writeFATSized(l *Layout, out *os.File, size int64) error {
	if err := out.Truncate(0); err != nil {
		return err
	}
	if err := out.Truncate(size); err != nil {
		return err
	}
	b := file.New(out, false)
	var fsys filesystem.FileSystem
	fsys, err := fat12.Create(b, size, 0, 512, l.Label, false)
	if err != nil {
		// Too many clusters for FAT12.
		var err16 error
		fsys, err16 = fat16.Create(b, size, 0, 512, l.Label, false)
		if err16 != nil {
			return fmt.Errorf("creating FAT12 (%v) or FAT16: %w", err, err16)
		}
	}
	made := map[string]bool{}
	for _, f := range l.Files {
		if err := mkdirAll(fsys, path.Dir(f.Name), made); err != nil {
			return err
		}
		if err := writeFATFile(fsys, f); err != nil {
			if strings.Contains(err.Error(), "no space left") {
				return errFATFull
			}
			return err
		}
	}
	if err := finishFAT(out, size); err != nil {
		return err
	}
	return verifyFAT(l, out, size)
}

// verifyFAT reads every file back by its name. go-diskfs replaces
// characters 8.3 names cannot hold without adding a ~N tail ("+" and "a+b"
// become "_" and "A_B"), and opens a name that equals another file's short
// name as that file, so some pairs of names end up in one entry (the
// second overwrites the first) or share a short name (tidyDir notices).
// Seeds with such names are refused rather than written wrong.
func verifyFAT(l *Layout, out *os.File, size int64) error {
	b := file.New(out, true)
	var fsys interface {
		Open(string) (iofs.File, error)
	}
	fsys, err := fat12.Read(b, size, 0, 512)
	if err != nil {
		var err16 error
		if fsys, err16 = fat16.Read(b, size, 0, 512); err16 != nil {
			return fmt.Errorf("reading the image back: %v; %w", err, err16)
		}
	}
	for _, f := range l.Files {
		fh, err := fsys.Open("/" + f.Name)
		if err != nil {
			return fmt.Errorf("reading %s back: %w", f.Name, err)
		}
		got := make([]byte, len(f.Data))
		st, err := fh.Stat()
		if err == nil && st.Size() == int64(len(got)) && len(got) > 0 {
			_, err = io.ReadFull(fh, got)
		}
		fh.Close()
		if err != nil {
			return fmt.Errorf("reading %s back: %w", f.Name, err)
		}
		if st.Size() != int64(len(got)) || !bytes.Equal(got, f.Data) {
			return fmt.Errorf("%w: %s: on FAT this name shares its 8.3 short name with another file here (go-diskfs gives it no ~N tail); rename one or use --iso", ErrInput, f.Name)
		}
	}
	return nil
}

func mkdirAll(fsys filesystem.FileSystem, dir string, made map[string]bool) error {
	if dir == "." || made[dir] {
		return nil
	}
	if err := mkdirAll(fsys, path.Dir(dir), made); err != nil {
		return err
	}
	if err := fsys.Mkdir("/" + dir); err != nil {
		if strings.Contains(err.Error(), "no space left") {
			return errFATFull
		}
		return fmt.Errorf("mkdir %s: %w", dir, err)
	}
	made[dir] = true
	return nil
}

func writeFATFile(fsys filesystem.FileSystem, f File) error {
	w, err := fsys.OpenFile("/"+f.Name, os.O_CREATE|os.O_RDWR|os.O_TRUNC)
	if err != nil {
		return fmt.Errorf("create %s: %w", f.Name, err)
	}
	// An empty write would still give the file a cluster (fsck.fat
	// reports it), so an empty file gets no write at all.
	var n int
	if len(f.Data) > 0 {
		n, err = w.Write(f.Data)
	}
	if err == nil && n != len(f.Data) {
		err = io.ErrShortWrite
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", f.Name, err)
	}
	return nil
}

// finishFAT checks and tidies what go-diskfs wrote, reading the image back:
//
//   - go-diskfs allocates from every entry the FAT has room for, and the
//     last FAT sector has room for entries past the last data cluster;
//     content placed there lies beyond the filesystem (and grows the
//     file). Seen as: the file grew, or an entry past the last cluster is
//     in use. Then the image was too small: errFATFull.
//   - FAT12/16 keep the root directory outside the data area, yet go-diskfs
//     marks cluster 2 as the root's end of chain, so fsck.fat reports a
//     lost cluster. Nothing refers to it; we free it.
//   - go-diskfs gives every new file a cluster, so an empty file has a
//     chain where FAT wants none (fsck.fat truncates it). We free those.
func finishFAT(f *os.File, size int64) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Size() != size {
		return errFATFull
	}
	v, err := loadFAT(f)
	if err != nil {
		return err
	}
	for n := v.clusters + 2; n < v.entries; n++ {
		if v.get(n) != 0 {
			return errFATFull
		}
	}
	used := map[uint32]bool{}
	if err := v.tidyDir(f, 0, "", used, 0); err != nil {
		return err
	}
	if !used[2] && v.get(2) >= v.eoc() {
		v.set(2, 0)
	}
	for i := range v.fats {
		if _, err := f.WriteAt(v.table, (v.reserved+i*v.fatSectors)*v.bps); err != nil {
			return err
		}
	}
	return nil
}

// fatVolume is the geometry of a FAT12/16 image and its first FAT.
type fatVolume struct {
	bps, spc, reserved, fats, fatSectors, rootEntries int64
	clusters, entries                                 int64
	fat16                                             bool
	table                                             []byte
}

func loadFAT(f *os.File) (*fatVolume, error) {
	bs := make([]byte, 512)
	if _, err := f.ReadAt(bs, 0); err != nil {
		return nil, err
	}
	v := &fatVolume{
		bps:         int64(binary.LittleEndian.Uint16(bs[11:])),
		spc:         int64(bs[13]),
		reserved:    int64(binary.LittleEndian.Uint16(bs[14:])),
		fats:        int64(bs[16]),
		rootEntries: int64(binary.LittleEndian.Uint16(bs[17:])),
		fatSectors:  int64(binary.LittleEndian.Uint16(bs[22:])),
	}
	total := int64(binary.LittleEndian.Uint16(bs[19:]))
	if total == 0 {
		total = int64(binary.LittleEndian.Uint32(bs[32:]))
	}
	if v.bps != 512 || v.spc == 0 || v.fatSectors == 0 || v.rootEntries == 0 || v.fats == 0 {
		return nil, fmt.Errorf("unexpected FAT boot sector written (bytes/sector %d, sectors/cluster %d, FAT sectors %d, root entries %d)", v.bps, v.spc, v.fatSectors, v.rootEntries)
	}
	v.clusters = (total - v.reserved - v.fats*v.fatSectors - v.rootSectors()) / v.spc
	v.fat16 = v.clusters >= 4085
	v.table = make([]byte, v.fatSectors*v.bps)
	if _, err := f.ReadAt(v.table, v.reserved*v.bps); err != nil {
		return nil, err
	}
	v.entries = int64(len(v.table)) * 2 / 3
	if v.fat16 {
		v.entries = int64(len(v.table)) / 2
	}
	return v, nil
}

func (v *fatVolume) rootSectors() int64 { return (v.rootEntries*32 + v.bps - 1) / v.bps }
func (v *fatVolume) rootOffset() int64  { return (v.reserved + v.fats*v.fatSectors) * v.bps }
func (v *fatVolume) clusterOffset(n uint32) int64 {
	return v.rootOffset() + v.rootSectors()*v.bps + (int64(n)-2)*v.spc*v.bps
}

// eoc is the smallest end-of-chain value.
func (v *fatVolume) eoc() uint32 {
	if v.fat16 {
		return 0xfff8
	}
	return 0xff8
}

func (v *fatVolume) get(n int64) uint32 {
	if v.fat16 {
		return uint32(binary.LittleEndian.Uint16(v.table[2*n:]))
	}
	x := uint32(binary.LittleEndian.Uint16(v.table[n*3/2:]))
	if n%2 == 1 {
		return x >> 4
	}
	return x & 0xfff
}

func (v *fatVolume) set(n int64, val uint32) {
	if v.fat16 {
		binary.LittleEndian.PutUint16(v.table[2*n:], uint16(val))
		return
	}
	off := n * 3 / 2
	x := binary.LittleEndian.Uint16(v.table[off:])
	if n%2 == 1 {
		x = x&0x000f | uint16(val)<<4
	} else {
		x = x&0xf000 | uint16(val)&0xfff
	}
	binary.LittleEndian.PutUint16(v.table[off:], x)
}

// chain lists the clusters from start, bounded by the cluster count so a
// loop cannot hang us.
func (v *fatVolume) chain(start uint32) ([]uint32, error) {
	var out []uint32
	for n := start; n < v.eoc(); n = v.get(int64(n)) {
		if n < 2 || int64(n) >= v.clusters+2 || int64(len(out)) > v.clusters {
			return nil, fmt.Errorf("FAT written with a broken cluster chain at %d", n)
		}
		out = append(out, n)
	}
	return out, nil
}

// tidyDir walks the directory starting at cluster dir (0: the fixed root),
// records the clusters in use and frees the chains of empty files.
func (v *fatVolume) tidyDir(f *os.File, dir uint32, dirName string, used map[uint32]bool, depth int) error {
	if depth > 64 {
		return errors.New("FAT written with directories nested too deep")
	}
	type region struct{ off, size int64 }
	var regions []region
	if dir == 0 {
		regions = []region{{v.rootOffset(), v.rootEntries * 32}}
	} else {
		cl, err := v.chain(dir)
		if err != nil {
			return err
		}
		for _, c := range cl {
			regions = append(regions, region{v.clusterOffset(c), v.spc * v.bps})
		}
	}
	shortNames := map[string]bool{}
	for _, r := range regions {
		buf := make([]byte, r.size)
		if _, err := f.ReadAt(buf, r.off); err != nil {
			return err
		}
		changed := false
		for i := 0; i+32 <= len(buf); i += 32 {
			e := buf[i : i+32]
			if e[0] == 0 {
				break
			}
			attr := e[11]
			if e[0] == 0xe5 || attr&0x0f == 0x0f || attr&0x08 != 0 || e[0] == '.' {
				continue // deleted, a long-name part, the label, or . and ..
			}
			short := strings.TrimRight(string(e[0:8]), " ")
			if ext := strings.TrimRight(string(e[8:11]), " "); ext != "" {
				short += "." + ext
			}
			if shortNames[short] {
				return fmt.Errorf("%w: two names in %s/ share the FAT short name %s (go-diskfs gives lossy 8.3 names no ~N tail); rename one or use --iso", ErrInput, dirName, short)
			}
			shortNames[short] = true
			start := uint32(binary.LittleEndian.Uint16(e[26:]))
			size := binary.LittleEndian.Uint32(e[28:])
			if start == 0 {
				continue
			}
			if attr&0x10 == 0 && size == 0 {
				cl, err := v.chain(start)
				if err != nil {
					return err
				}
				for _, c := range cl {
					v.set(int64(c), 0)
				}
				binary.LittleEndian.PutUint16(e[26:], 0)
				changed = true
				continue
			}
			cl, err := v.chain(start)
			if err != nil {
				return err
			}
			for _, c := range cl {
				used[c] = true
			}
			if attr&0x10 != 0 {
				if err := v.tidyDir(f, start, dirName+"/"+short, used, depth+1); err != nil {
					return err
				}
			}
		}
		if changed {
			if _, err := f.WriteAt(buf, r.off); err != nil {
				return err
			}
		}
	}
	return nil
}
