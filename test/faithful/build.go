package faithful

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Options describe one test root.
type Options struct {
	Variant Variant
	// Stage is a populated OS tree, copied into snapshot 1 (and the
	// sibling subvolumes); it is not modified.
	Stage string
	// Size is the image size in bytes; 0 means 1 GiB (sparse).
	Size int64
	// SELinux is "", "enforcing", "permissive" or "disabled". When set and
	// the stage has /etc/selinux, /etc/selinux/config gets SELINUX=<mode>
	// and SELINUXTYPE=targeted (D lowers enforcing to permissive).
	SELinux string
	// Label labels every subvolume and filesystem of the root (not the
	// ESP) with the host's setfiles and the file_contexts of the policy
	// the root's /etc/selinux/config names (after SELinux above wrote it),
	// before snapshot 1 is made read-only. The stage must have the policy.
	Label bool
	// EntryToken is C's /etc/kernel/entry-token; "opensuse-microos" if empty.
	EntryToken string
	// Cmdline is the kernel command line without root=: C's
	// /etc/kernel/cmdline, GRUB_CMDLINE_LINUX_DEFAULT elsewhere;
	// "console=ttyS0" if empty. SELinux enforcing or permissive appends
	// "security=selinux selinux=1" (Debian kernels need it).
	Cmdline string
	// Kernel and Initrd name C's boot files: relative paths are inside the
	// stage, absolute ones on the host. Empty: the stage's only kernel
	// (/boot/vmlinuz-<v> or /usr/lib/modules/<v>/vmlinuz) and its initrd,
	// or dummy files when there is none. KernelVersion is derived from the
	// kernel's path when empty.
	Kernel, Initrd, KernelVersion string
	// ESPSize is the ESP of C and E in bytes; 0 means 64 MiB, grown to fit
	// the kernel and initrd.
	ESPSize int64
}

// Part is one partition of the image.
type Part struct {
	Number      int
	Start, Size int64  // bytes
	Type        string // GPT type GUID or MBR type as sfdisk prints it
}

// Disk is a built image.
type Disk struct {
	Variant Variant
	Path    string // the disk image
	Size    int64
	Table   string // "gpt" or "dos"
	Parts   []Part
	// Partition numbers (0 = none).
	RootPart, ESPPart, VarPart int
	UUID                       string // root btrfs (label ROOT)
	VarUUID                    string // F: the /var btrfs (label VAR)
	ESPUUID                    string // C, E: vfat volume id as fstab names it, XXXX-XXXX
	// Cmdline is the kernel command line the image's boot loader would
	// pass, without root= (and, except in C's entry, without rootflags=).
	Cmdline string
	SELinux string // the mode written to /etc/selinux/config, "" if none
	// C: the ESP paths of the entry, kernel and initrd, and the kernel
	// version the entry names.
	EntryToken, KernelVersion string
	Entry, Kernel, Initrd     string
}

func (d *Disk) part(n int) Part {
	for _, p := range d.Parts {
		if p.Number == n {
			return p
		}
	}
	return Part{}
}

// ESPImage is the ESP as mtools' -i names it (IMAGE@@OFFSET), "" if none.
func (d *Disk) ESPImage() string {
	if d.ESPPart == 0 {
		return ""
	}
	return fmt.Sprintf("%s@@%d", d.Path, d.part(d.ESPPart).Start)
}

const (
	mib            = int64(1) << 20
	defaultSize    = int64(1) << 30
	defaultESPSize = 64 * mib
	// sfdisk's default alignment: the first partition starts at 1 MiB and
	// GPT keeps 33 sectors of backup at the end.
	tableOverhead = 2 * mib
)

// GPT and MBR partition types.
const (
	TypeESP        = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
	TypeLinux      = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
	TypeMBRFAT32   = "c"
	TypeMBRLinux   = "83"
	defaultToken   = "opensuse-microos"
	defaultCmdline = "console=ttyS0"
)

func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func newVolID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%02X%02X-%02X%02X", b[0], b[1], b[2], b[3])
}

// Build makes the image of the variant in dir (faithful-<variant>.img,
// replaced if it exists) from the stage and returns it detached.
func Build(dir string, o Options) (*Disk, error) {
	t, err := traitsOf(o.Variant)
	if err != nil {
		return nil, err
	}
	if o.Label {
		if _, err := exec.LookPath("setfiles"); err != nil {
			return nil, fmt.Errorf("faithful: Options.Label needs setfiles on the host (package policycoreutils): %w", err)
		}
		if _, err := FileContexts(o.Stage); err != nil && o.SELinux == "" {
			return nil, err
		}
	}
	switch o.SELinux {
	case "", "enforcing", "permissive", "disabled":
	default:
		return nil, fmt.Errorf("faithful: SELinux mode %q: want enforcing, permissive, disabled or empty", o.SELinux)
	}
	if st, err := os.Stat(o.Stage); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("faithful: stage %q is not a directory (%v)", o.Stage, err)
	}
	if o.Size == 0 {
		o.Size = defaultSize
	}
	if o.EntryToken == "" {
		o.EntryToken = defaultToken
	}
	if o.Cmdline == "" {
		o.Cmdline = defaultCmdline
	}
	d := &Disk{Variant: o.Variant, Path: filepath.Join(dir, "faithful-"+strings.ToLower(string(o.Variant))+".img"),
		Size: o.Size, Table: t.table, UUID: newUUID(), Cmdline: o.Cmdline}
	d.SELinux = selinuxMode(o, t)
	if d.SELinux == "enforcing" || d.SELinux == "permissive" {
		d.Cmdline += " security=selinux selinux=1"
	}
	var bf bootFiles
	if t.sdboot {
		d.EntryToken = o.EntryToken
		if bf, err = findBootFiles(o); err != nil {
			return nil, err
		}
	}
	if err := partition(d, t, o, bf); err != nil {
		_ = os.Remove(d.Path)
		return nil, err
	}
	work, err := os.MkdirTemp(dir, ".faithful-build-")
	if err != nil {
		return nil, err
	}
	err = build(d, t, o, bf, work)
	if rerr := removeTemp(work); err == nil {
		err = rerr
	}
	if err != nil {
		_ = os.Remove(d.Path)
		return nil, err
	}
	return d, nil
}

func build(d *Disk, t traits, o Options, bf bootFiles, work string) error {
	if t.esp {
		if err := makeESP(d, t, o, bf, work); err != nil {
			return err
		}
	}
	a, err := d.Attach()
	if err != nil {
		return err
	}
	err = fill(a, t, o, work)
	return errors.Join(err, a.Detach())
}

func selinuxMode(o Options, t traits) string {
	if o.SELinux == "" {
		return ""
	}
	if st, err := os.Stat(inRoot(o.Stage, "etc/selinux")); err != nil || !st.IsDir() {
		return ""
	}
	if t.permissiveOnly && o.SELinux == "enforcing" {
		return "permissive"
	}
	return o.SELinux
}

// partition creates the sparse image and its partition table.
func partition(d *Disk, t traits, o Options, bf bootFiles) error {
	espSize := o.ESPSize
	if espSize == 0 {
		espSize = max(defaultESPSize, (bf.size()+bf.size()/4+16*mib+mib-1)/mib*mib)
	}
	var script strings.Builder
	fmt.Fprintf(&script, "label: %s\n", t.table)
	n := 0
	add := func(size int64, typ string) int {
		n++
		if size > 0 {
			fmt.Fprintf(&script, "size=%dMiB, type=%s\n", size/mib, typ)
		} else {
			fmt.Fprintf(&script, "type=%s\n", typ)
		}
		return n
	}
	linux := TypeLinux
	if t.table == "dos" {
		linux = TypeMBRLinux
	}
	switch {
	case t.esp:
		espType := TypeESP
		if t.table == "dos" {
			espType = TypeMBRFAT32
		}
		d.ESPPart, d.ESPUUID = add(espSize, espType), newVolID()
		d.RootPart = add(0, linux)
	case t.varFS:
		varSize := max(256*mib, d.Size/4/mib*mib)
		d.RootPart = add(d.Size-varSize-tableOverhead, linux)
		d.VarPart, d.VarUUID = add(0, linux), newUUID()
	default:
		d.RootPart = add(0, linux)
	}
	if err := os.WriteFile(d.Path, nil, 0o644); err != nil {
		return err
	}
	if err := os.Truncate(d.Path, d.Size); err != nil {
		return err
	}
	if _, err := runStdin(script.String(), "sfdisk", "-q", d.Path); err != nil {
		return err
	}
	out, err := run("sfdisk", "--json", d.Path)
	if err != nil {
		return err
	}
	var j struct {
		PartitionTable struct {
			SectorSize int64 `json:"sectorsize"`
			Partitions []struct {
				Start, Size int64
				Type        string
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		return fmt.Errorf("sfdisk --json %s: %w\n%s", d.Path, err, out)
	}
	ss := j.PartitionTable.SectorSize
	if ss == 0 {
		ss = 512
	}
	for i, p := range j.PartitionTable.Partitions {
		d.Parts = append(d.Parts, Part{Number: i + 1, Start: p.Start * ss, Size: p.Size * ss, Type: p.Type})
	}
	if len(d.Parts) != n {
		return fmt.Errorf("sfdisk made %d partitions, want %d:\n%s", len(d.Parts), n, out)
	}
	return nil
}

// fill makes the filesystems on the attached disk and lays out the root.
func fill(a *Attached, t traits, o Options, work string) (err error) {
	d := a.Disk
	if _, err := run("mkfs.btrfs", "-q", "-f", "-L", "ROOT", "-U", d.UUID, a.Root); err != nil {
		return err
	}
	top := filepath.Join(work, "top")
	umountTop, err := a.MountTop(top, false)
	if err != nil {
		return err
	}
	defer func() {
		if uerr := umountTop(); err == nil {
			err = uerr
		}
	}()
	varRoot := filepath.Join(top, "@/var")
	if t.varFS {
		if _, err := run("mkfs.btrfs", "-q", "-f", "-L", "VAR", "-U", d.VarUUID, a.Var); err != nil {
			return err
		}
		varRoot = filepath.Join(work, "var")
		umountVar, err := a.mount(varRoot, "-t", "btrfs", a.Var)
		if err != nil {
			return err
		}
		defer func() {
			if uerr := umountVar(); err == nil {
				err = uerr
			}
		}()
	}
	return layout(&builder{t: t, o: o, d: d, top: top, varRoot: varRoot, snap: filepath.Join(top, snap1)})
}
