package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// VM is one boot of a tier A machine.
type VM struct {
	Arch   Arch
	Kernel string
	Initrd string
	Root   *RootDisk
	// RootArg is the root= value; LABEL=root when empty.
	RootArg string
	// Disks are extra writable virtio disks, in order after the root
	// (vdb...).
	Disks []string
	// Seeds are attached as extra read-only virtio disks, in order after
	// the root and Disks.
	Seeds []string
	// Cmdline words are appended to the kernel command line.
	Cmdline []string
	// FwCfg maps fw_cfg names (opt/...) to host files.
	FwCfg map[string]string
	// Net, when set, is a -netdev value; a virtio NIC is attached to it.
	Net string
	// SMBIOS are -smbios values (type=1,manufacturer=...).
	SMBIOS []string
	// Timeout bounds the boot: a missing root or a halted guest never exits.
	Timeout time.Duration
}

// BootResult is what a boot left on the console.
type BootResult struct {
	Console  string
	TimedOut bool
	Elapsed  time.Duration
}

// Args is the qemu command line of the boot.
func (vm *VM) Args() []string {
	root := vm.RootArg
	if root == "" {
		root = "LABEL=" + RootLabel
	}
	// panic=-1 with -no-reboot turns a kernel panic (init died) into a
	// prompt qemu exit instead of a hang until the timeout.
	cmdline := append([]string{"console=" + vm.Arch.Console, "root=" + root, "rootfstype=btrfs", "rw", "panic=-1", "loglevel=5"}, vm.Cmdline...)
	args := append([]string{}, vm.Arch.MachineArgs...)
	args = append(args,
		"-nodefaults", "-no-reboot", "-display", "none", "-monitor", "none", "-serial", "stdio",
		"-kernel", vm.Kernel, "-initrd", vm.Initrd, "-append", strings.Join(cmdline, " "),
		"-drive", "file="+vm.Root.Path+",if=virtio,format=raw",
		// An entropy source, as cloud VMs have (see InitrdModules).
		"-device", "virtio-rng-pci",
	)
	for _, d := range vm.Disks {
		args = append(args, "-drive", "file="+d+",if=virtio,format=raw")
	}
	for _, s := range vm.Seeds {
		args = append(args, "-drive", "file="+s+",if=virtio,format=raw,readonly=on")
	}
	for name, file := range vm.FwCfg {
		args = append(args, "-fw_cfg", "name="+name+",file="+file)
	}
	for _, s := range vm.SMBIOS {
		args = append(args, "-smbios", s)
	}
	if vm.Net != "" {
		args = append(args, "-netdev", vm.Net+",id=n0", "-device", "virtio-net-pci,netdev=n0")
	}
	return args
}

// Boot runs qemu until the guest powers off or the timeout passes. The
// console is copied to log as it arrives. A timeout is not an error: the
// caller judges by the disk (qemu exits 0 even after a guest panic).
func (vm *VM) Boot(ctx context.Context, log io.Writer) (*BootResult, error) {
	timeout := vm.Timeout
	if timeout == 0 {
		timeout = 90 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, vm.Arch.QEMU, vm.Args()...)
	var buf bytes.Buffer
	w := &lockedWriter{w: io.MultiWriter(&buf, log)}
	cmd.Stdout, cmd.Stderr = w, w
	fmt.Fprintf(log, "+ %s %s\n", vm.Arch.QEMU, strings.Join(vm.Args(), " "))
	start := time.Now()
	err := cmd.Run()
	res := &BootResult{Elapsed: time.Since(start)}
	w.mu.Lock()
	res.Console = buf.String()
	w.mu.Unlock()
	if ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		res.TimedOut = true
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("%s: %w", vm.Arch.QEMU, err)
	}
	return res, nil
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
