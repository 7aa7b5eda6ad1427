package faithful

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// DummyKernelVersion is the version of the stand-in kernel C gets when the
// stage has none.
const DummyKernelVersion = "0.0.0-faithful"

// bootFiles is the kernel and initrd that go onto C's ESP.
type bootFiles struct {
	version        string
	kernel, initrd string // host paths; "" = dummy content
}

func (b bootFiles) size() int64 {
	var n int64
	for _, p := range []string{b.kernel, b.initrd} {
		if st, err := os.Stat(p); p != "" && err == nil {
			n += st.Size()
		}
	}
	return n
}

// stagePath is p inside the stage when relative, a host path when absolute.
func stagePath(stage, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return inRoot(stage, p)
}

// findBootFiles picks the kernel and initrd named by the options, else the
// one kernel the stage has (Debian's /boot/vmlinuz-<v> or openSUSE's
// /usr/lib/modules/<v>/vmlinuz), else dummies.
func findBootFiles(o Options) (bootFiles, error) {
	b := bootFiles{version: o.KernelVersion}
	if o.Kernel != "" {
		b.kernel = stagePath(o.Stage, o.Kernel)
		if _, err := os.Stat(b.kernel); err != nil {
			return b, fmt.Errorf("faithful: kernel: %w", err)
		}
		if b.version == "" {
			base := filepath.Base(o.Kernel)
			if v, ok := strings.CutPrefix(base, "vmlinuz-"); ok {
				b.version = v
			} else if base == "vmlinuz" || base == "Image" {
				b.version = filepath.Base(filepath.Dir(o.Kernel))
			} else {
				return b, fmt.Errorf("faithful: cannot tell the version of kernel %s: set Options.KernelVersion", o.Kernel)
			}
		}
	} else {
		found := map[string]string{}
		boots, _ := filepath.Glob(filepath.Join(o.Stage, "boot/vmlinuz-*"))
		for _, p := range boots {
			found[strings.TrimPrefix(filepath.Base(p), "vmlinuz-")] = p
		}
		mods, _ := filepath.Glob(filepath.Join(o.Stage, "usr/lib/modules/*/vmlinuz"))
		for _, p := range mods {
			found[filepath.Base(filepath.Dir(p))] = p
		}
		var vs []string
		for v := range found {
			vs = append(vs, v)
		}
		sort.Strings(vs)
		switch {
		case len(vs) > 1:
			return b, fmt.Errorf("faithful: the stage has several kernels %v: name one in Options.Kernel", vs)
		case len(vs) == 1:
			b.version, b.kernel = vs[0], found[vs[0]]
		default:
			b.version = DummyKernelVersion
		}
	}
	if o.Initrd != "" {
		b.initrd = stagePath(o.Stage, o.Initrd)
		if _, err := os.Stat(b.initrd); err != nil {
			return b, fmt.Errorf("faithful: initrd: %w", err)
		}
		return b, nil
	}
	if b.kernel == "" {
		return b, nil
	}
	for _, p := range []string{"boot/initrd.img-" + b.version, "boot/initrd-" + b.version, "usr/lib/modules/" + b.version + "/initrd"} {
		if _, err := os.Stat(inRoot(o.Stage, p)); err == nil {
			b.initrd = inRoot(o.Stage, p)
			break
		}
	}
	return b, nil
}

func sha1File(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha1.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// entryOptions is the entry's options line as sdbootutil derives it from
// /etc/kernel/cmdline: whitespace collapsed, BOOT_IMAGE= and initrd=
// dropped, root= and rootflags=subvol= replaced in place or appended, and
// systemd.machine_id= dropped (the image has no /etc/machine-id).
func entryOptions(cmdline, uuid, subvol string) string {
	var out []string
	root, flags := false, false
	for _, f := range strings.Fields(cmdline) {
		switch {
		case strings.HasPrefix(f, "BOOT_IMAGE="), strings.HasPrefix(f, "initrd="), strings.HasPrefix(f, "systemd.machine_id="):
			continue
		case strings.HasPrefix(f, "root="):
			f, root = "root=UUID="+uuid, true
		case strings.HasPrefix(f, "rootflags=subvol="):
			f, flags = "rootflags=subvol="+subvol, true
		}
		out = append(out, f)
	}
	if !root {
		out = append(out, "root=UUID="+uuid)
	}
	if !flags {
		out = append(out, "rootflags=subvol="+subvol)
	}
	return strings.Join(out, " ")
}

// entryTitle is sdbootutil's title for snapshot 1 of a transactional
// system: PRETTY_NAME, plus VERSION_ID when os-release has no VERSION.
func entryTitle(rel map[string]string, kver string) string {
	title := rel["PRETTY_NAME"]
	if title == "" {
		title = "Linux " + kver
	}
	if rel["VERSION"] == "" {
		title += " " + rel["VERSION_ID"]
	}
	return title + " (Initial Installation)"
}

// bootEntry is a type #1 entry in sdbootutil's layout (microos-reality.md §4.2).
func bootEntry(title, sortKey, version, options, linux, initrd string) string {
	var b strings.Builder
	b.WriteString("# Boot Loader Specification type#1 entry\n")
	fmt.Fprintf(&b, "title      %s\n", title)
	fmt.Fprintf(&b, "version    %s\n", version)
	if sortKey != "" {
		fmt.Fprintf(&b, "sort-key   %s\n", sortKey)
	}
	fmt.Fprintf(&b, "options    %s\n", options)
	fmt.Fprintf(&b, "linux      %s\n", linux)
	fmt.Fprintf(&b, "initrd     %s\n", initrd)
	return b.String()
}

// LoaderConf is loader/loader.conf after `sdbootutil install` and
// `set-timeout 5` without EFI variables.
const LoaderConf = "#timeout 3\n#console-mode keep\n\ntimeout 5\n"

// rpiConfig stands in for the Raspberry Pi firmware files on E's ESP.
const rpiConfig = "# faithful test root: stand-in for the Raspberry Pi firmware's config.txt\n" +
	"# (firmware, device trees and U-Boot are not installed)\narm_64bit=1\n"

// makeESP formats the ESP inside the image file (mkfs.vfat at the
// partition's offset; the host has no vfat driver) and fills it with
// mtools: C's loader files, kernel and initrd; E's firmware stand-in; and
// whatever the stage had under /boot/efi.
func makeESP(d *Disk, t traits, o Options, bf bootFiles, work string) error {
	p := d.part(d.ESPPart)
	img := fmt.Sprintf("%s@@%d", d.Path, p.Start)
	if _, err := run("mkfs.vfat", "-F", "32", "-s", "1", "-n", "EFI", "-i", strings.ReplaceAll(d.ESPUUID, "-", ""),
		"--offset", fmt.Sprint(p.Start/512), "-h", fmt.Sprint(p.Start/512), d.Path, fmt.Sprint(p.Size/1024)); err != nil {
		return err
	}
	files := map[string]string{} // ESP path -> host file
	text := func(espPath, content string) error {
		host := filepath.Join(work, "esp-"+strings.ReplaceAll(strings.Trim(espPath, "/"), "/", "_"))
		files[espPath] = host
		return writeFile(host, []byte(content), 0o644)
	}
	if t.sdboot {
		for i, src := range []*string{&bf.kernel, &bf.initrd} {
			if *src == "" {
				*src = filepath.Join(work, fmt.Sprintf("dummy-%d", i))
				what := []string{"kernel", "initrd"}[i]
				if err := writeFile(*src, []byte("faithful: dummy "+what+", not bootable\n"), 0o644); err != nil {
					return err
				}
			}
		}
		ksum, err := sha1File(bf.kernel)
		if err != nil {
			return err
		}
		isum, err := sha1File(bf.initrd)
		if err != nil {
			return err
		}
		dir := "/" + d.EntryToken + "/" + bf.version
		d.KernelVersion = bf.version
		d.Kernel, d.Initrd = dir+"/linux-"+ksum, dir+"/initrd-"+isum
		d.Entry = "/loader/entries/" + d.EntryToken + "-" + bf.version + "-1.conf"
		files[d.Kernel], files[d.Initrd] = bf.kernel, bf.initrd
		rel := osRelease(o.Stage)
		entry := bootEntry(entryTitle(rel, bf.version), rel["ID"], "1@"+bf.version,
			entryOptions(d.Cmdline, d.UUID, "@/.snapshots/1/snapshot"), d.Kernel, d.Initrd)
		for path, content := range map[string]string{
			"/loader/loader.conf":  LoaderConf,
			"/loader/entries.srel": "type1\n",
			d.Entry:                entry,
		} {
			if err := text(path, content); err != nil {
				return err
			}
		}
	} else if err := text("/config.txt", rpiConfig); err != nil {
		return err
	}
	dirs := map[string]bool{}
	for path := range files {
		for dir := filepath.Dir(path); dir != "/"; dir = filepath.Dir(dir) {
			dirs[dir] = true
		}
	}
	var mkdirs []string
	for dir := range dirs {
		mkdirs = append(mkdirs, "::"+dir)
	}
	sort.Strings(mkdirs) // parents first
	if len(mkdirs) > 0 {
		if _, err := mtools("mmd", append([]string{"-i", img}, mkdirs...)...); err != nil {
			return err
		}
	}
	for path, host := range files {
		if _, err := mtools("mcopy", "-i", img, host, "::"+path); err != nil {
			return err
		}
	}
	// The stage's /boot/efi content belongs on the ESP.
	ents, _ := os.ReadDir(filepath.Join(o.Stage, "boot/efi"))
	if len(ents) > 0 {
		args := []string{"-s", "-n", "-i", img}
		for _, e := range ents {
			args = append(args, filepath.Join(o.Stage, "boot/efi", e.Name()))
		}
		if _, err := mtools("mcopy", append(args, "::/")...); err != nil {
			return err
		}
	}
	return nil
}
