package blockdev

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Volume is one filesystem found on a device or in an image: where its bytes
// are and what its superblock says.
type Volume struct {
	// Name is how messages and document origins call it: "/dev/vdb",
	// "/tmp/disk.img" or "/tmp/disk.img#p2" for a partition of an image.
	Name string
	// File is the path opened to read it (including any Env prefix).
	File string
	// Offset and Size locate the filesystem inside File.
	Offset, Size int64
	// BlockDevice is true when File is a device node the kernel can mount
	// directly (a whole disk or a partition as sysfs lists it).
	BlockDevice bool
	Probe
}

// ProbeFile identifies the filesystem in bytes [offset, offset+size) of path.
func ProbeFile(path string, offset, size int64) (Probe, error) {
	f, err := os.Open(path)
	if err != nil {
		return Probe{}, err
	}
	defer f.Close()
	return ProbeReader(io.NewSectionReader(f, offset, size), size)
}

// ScanDevices probes every block device sysfs lists (once, no waiting) and
// returns those holding a filesystem we recognise, in sysfs order.
//
// With env.Scan set, the first call scans and later ones get its result:
// a detection asks once per source, and a probe reads every device's
// superblocks (the ISO's volume descriptors, a FAT's boot sector...),
// which an emulated machine pays for in milliseconds per device. A wait
// for a device that is not there yet scans afresh (FindAllByLabel).
func ScanDevices(env Env) ([]Volume, error) {
	if env.Scan == nil {
		return scanDevices(env)
	}
	env.Scan.once.Do(func() { env.Scan.vols, env.Scan.err = scanDevices(env) })
	return env.Scan.vols, env.Scan.err
}

// Scan holds the result of the first ScanDevices of an Env that shares it.
type Scan struct {
	once sync.Once
	vols []Volume
	err  error
}

func scanDevices(env Env) ([]Volume, error) {
	devs, err := Enumerate(env.Prefix)
	if err != nil {
		return nil, err
	}
	var vols []Volume
	for _, d := range devs {
		file := filepath.Join(env.Prefix, d.Path)
		p, err := ProbeFile(file, 0, d.Size)
		if err != nil {
			continue // unreadable or unknown: not a seed
		}
		vols = append(vols, Volume{Name: d.Path, File: file, Size: d.Size, BlockDevice: true, Probe: p})
	}
	return vols, nil
}

// ScanImage finds the filesystems in an image file or a block device given
// by path (a dry run's --source): the whole of it when it holds a filesystem
// (ISO, FAT stick image), else each partition of its MBR or GPT table.
func ScanImage(path string) ([]Volume, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, err := fileSize(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	isDev := st.Mode()&os.ModeDevice != 0
	if p, err := ProbeReader(f, size); err == nil {
		return []Volume{{Name: path, File: path, Size: size, BlockDevice: isDev, Probe: p}}, nil
	}
	var vols []Volume
	for _, part := range ReadPartitions(f, size) {
		p, err := ProbeReader(io.NewSectionReader(f, part.Start, part.Size), part.Size)
		if err != nil {
			continue
		}
		vols = append(vols, Volume{
			Name:   path + "#p" + strconv.Itoa(part.Number),
			File:   path,
			Offset: part.Start, Size: part.Size,
			Probe: p,
		})
	}
	if len(vols) == 0 {
		return nil, fmt.Errorf("%s: %w (nor any partition holding one)", path, ErrUnknownFilesystem)
	}
	return vols, nil
}

// fileSize works for regular files and block devices alike (Stat reports 0
// for a device).
func fileSize(f *os.File) (int64, error) {
	n, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, err
	}
	_, err = f.Seek(0, io.SeekStart)
	return n, err
}

// ErrNoDevice means no device with any of the wanted labels was found.
var ErrNoDevice = errors.New("no device with that label")

// SelectByLabel keeps the volumes whose label is one of labels, ordered by
// the position of their label in labels and then by their order in vols.
// Labels compare exactly: "cidata" and "CIDATA" are both listed where both
// are accepted, as the reference tools do.
func SelectByLabel(vols []Volume, labels []string) []Volume {
	var out []Volume
	for _, l := range labels {
		for _, v := range vols {
			if v.Label == l {
				out = append(out, v)
			}
		}
	}
	return out
}

// FindAllByLabel scans the devices for filesystems labelled with any of
// labels. With timeout > 0 it rescans until at least one appears or the
// timeout (or ctx) ends; with 0 it scans once. Use it only with a timeout
// when something says the device should exist: a scan costs microseconds,
// a wait for nothing costs the whole timeout.
func FindAllByLabel(ctx context.Context, env Env, labels []string, timeout time.Duration) ([]Volume, error) {
	var deadline <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		deadline = t.C
	}
	look := func(scan func(Env) ([]Volume, error)) ([]Volume, error) {
		vols, err := scan(env)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		return SelectByLabel(vols, labels), nil
	}
	// The shared scan first, then one of our own at once: a device may
	// have appeared since the shared scan, and it is not made to wait a
	// poll interval for that.
	if env.Scan != nil {
		if sel, err := look(ScanDevices); err != nil || len(sel) > 0 {
			return sel, err
		}
	}
	for {
		if sel, err := look(scanDevices); err != nil || len(sel) > 0 {
			return sel, err
		}
		if deadline == nil {
			return nil, fmt.Errorf("%w %q", ErrNoDevice, labels)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for a device labelled %q: %w", labels, ctx.Err())
		case <-deadline:
			return nil, fmt.Errorf("%w %q after waiting %s", ErrNoDevice, labels, timeout)
		case <-time.After(env.pollInterval()):
		}
	}
}

// FindByLabel returns the first medium labelled with one of labels (in the
// order of labels, then sysfs order) that opens. The caller closes it.
func FindByLabel(ctx context.Context, env Env, labels []string, timeout time.Duration) (*Medium, error) {
	vols, err := FindAllByLabel(ctx, env, labels, timeout)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, v := range vols {
		m, err := env.Open(ctx, v)
		if err == nil {
			return m, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// HasLabel reports whether any volume carries one of labels.
func HasLabel(vols []Volume, labels ...string) bool {
	return slices.ContainsFunc(vols, func(v Volume) bool { return slices.Contains(labels, v.Label) })
}

// DefaultDeviceTimeout is how long a source waits for a labelled device
// when told one should exist and provision.device_timeout= is not given.
const DefaultDeviceTimeout = 10 * time.Second

// DeviceTimeout reads provision.device_timeout=SECONDS from the kernel
// command line. given reports whether the word was there: asking for a
// timeout is taken as saying a device should appear, so sources wait.
func DeviceTimeout(cmdline []string) (timeout time.Duration, given bool) {
	timeout = DefaultDeviceTimeout
	for _, w := range cmdline {
		v, ok := strings.CutPrefix(w, "provision.device_timeout=")
		if !ok {
			continue
		}
		if s, err := strconv.ParseFloat(v, 64); err == nil && s >= 0 && s < 3600 {
			timeout, given = time.Duration(s*float64(time.Second)), s > 0
		}
	}
	return timeout, given
}

// ReadFileLimit reads name from fsys, refusing files over limit bytes (0
// means DefaultMaxFileSize). Sources use it for any fs.FS, not only media.
func ReadFileLimit(fsys fs.FS, name string, limit int64) ([]byte, error) {
	if limit <= 0 {
		limit = DefaultMaxFileSize
	}
	if m, ok := fsys.(*Medium); ok {
		return m.ReadFile(name)
	}
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return nil, &fs.PathError{Op: "read", Path: name, Err: errors.New("is a directory")}
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: name, Err: err}
	}
	if int64(len(b)) > limit {
		return nil, &fs.PathError{Op: "read", Path: name, Err: fmt.Errorf("file is more than the %d-byte limit", limit)}
	}
	return b, nil
}
