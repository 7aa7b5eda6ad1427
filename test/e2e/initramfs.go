package e2e

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// InitrdModules are what a tier A VM needs: virtio disks and NIC, btrfs for
// the root, vfat/isofs for seeds (our sources read them without mounting,
// but a user's script may mount them), fw_cfg, and the nls tables vfat needs
// on Debian kernels (nls_ascii), and virtio_rng: qemu's default TCG CPU has
// no RDRAND, and without an entropy source the kernel's CRNG stays unseeded
// for minutes, so getrandom(2) blocks (Go's crypto/rand, the DHCP client's
// transaction id). busybox insmod does not follow softdeps, so btrfs's
// crypto softdeps are listed before it.
var InitrdModules = []string{
	"virtio_pci", "virtio_blk", "virtio_net", "virtio_rng",
	"crc32c_generic", "blake2b_generic", "xxhash_generic", "btrfs",
	"nls_cp437", "nls_iso8859-1", "nls_ascii", "nls_utf8", "vfat", "isofs",
	"qemu_fw_cfg",
}

// initScript is the initramfs' /init: load the modules in order, then hand
// over to `provision init`, which mounts, provisions and switches root. It
// keeps the kernel's arguments for the real init.
const initScript = `#!/bin/sh
export PATH=/bin
while read -r m; do
	insmod "/lib/modules/$m" || echo "init: insmod $m failed"
done < /lib/modules/load-order
exec /bin/provision init "$@"
`

// busyboxApplets are linked into the initramfs' /bin (the /init script and
// an emergency shell use them).
var busyboxApplets = []string{"sh", "mount", "umount", "insmod", "cat", "ls", "echo", "mkdir", "sleep", "poweroff", "reboot", "dmesg", "grep"}

// BuildInitramfs writes an uncompressed newc initramfs holding busybox, the
// binary as /bin/provision and the kernel modules, to out.
func BuildInitramfs(out string, k *Kernel, busybox, binary string, modules []string) error {
	return BuildInitramfsWith(out, k, busybox, binary, modules, nil)
}

// BuildInitramfsWith is BuildInitramfs with extra entries merged over the
// tree (a test's own /init, tools, a seed).
func BuildInitramfsWith(out string, k *Kernel, busybox, binary string, modules []string, extra Tree) error {
	ms, err := LoadModules(k)
	if err != nil {
		return err
	}
	files, err := ms.Resolve(modules)
	if err != nil {
		return err
	}
	t := Tree{}
	bb, err := os.ReadFile(busybox)
	if err != nil {
		return err
	}
	t["bin/busybox"] = TreeEntry{Mode: 0o755, Data: bb}
	for _, a := range busyboxApplets {
		t["bin/"+a] = TreeEntry{Link: "busybox"}
	}
	prov, err := os.ReadFile(binary)
	if err != nil {
		return err
	}
	t["bin/provision"] = TreeEntry{Mode: 0o755, Data: prov}
	t["init"] = TreeEntry{Mode: 0o755, Data: []byte(initScript)}
	var order []string
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(k.ModDir(), f))
		if err != nil {
			return err
		}
		base := filepath.Base(f)
		t["lib/modules/"+base] = TreeEntry{Mode: 0o644, Data: data}
		order = append(order, base)
	}
	t["lib/modules/load-order"] = TreeEntry{Mode: 0o644, Data: []byte(strings.Join(order, "\n") + "\n")}
	for _, d := range []string{"proc", "sys", "dev", "run", "sysroot", "tmp", "etc", "root"} {
		t[d] = TreeEntry{Mode: os.ModeDir | 0o755}
	}
	// Tools that resolve names (Go's os/user, DHCP clients) look here.
	t["etc/passwd"] = TreeEntry{Mode: 0o644, Data: []byte("root:x:0:0:root:/root:/bin/sh\n")}
	t["etc/group"] = TreeEntry{Mode: 0o644, Data: []byte("root:x:0:\n")}
	for p, e := range extra {
		t[p] = e
	}

	f, err := os.Create(out)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	c := NewCPIO(w)
	t.WriteCPIO(c)
	// The kernel opens /dev/console for init's stdio before devtmpfs is
	// mounted: without this node init has no stdin/stdout/stderr.
	c.CharDev("dev/console", 0o600, 5, 1)
	err = c.Close()
	if ferr := w.Flush(); err == nil {
		err = ferr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing initramfs %s: %w", out, err)
	}
	return nil
}
