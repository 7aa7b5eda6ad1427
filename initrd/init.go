package initrd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/provision-dev/provision/provision/snapshot/btrfs"

	"golang.org/x/sys/unix"
)

// Sysroot is where the real root is mounted before the switch, as in dracut.
const Sysroot = "/sysroot"

// Options is what the CLI hands to Main.
type Options struct {
	// Provision runs the first-boot job against the root mounted read-write
	// at sysroot. An error means the run failed (and was rolled back); what
	// happens next is provision.on_failure's decision. Nil skips provisioning.
	Provision func(ctx context.Context, sysroot string) error
	// Console receives our messages; /dev/console (or stderr) when nil.
	Console io.Writer
	// InitArgs are passed to the real init. When nil, the words after "init"
	// in os.Args are used: the initramfs' /init runs `provision init "$@"`
	// with the arguments the kernel gave it.
	InitArgs []string
	// Env is the real init's environment; os.Environ() when nil (the kernel
	// puts unknown key=value parameters there).
	Env []string
}

// Main is `provision init`. On success it does not return: the process
// becomes the real init. It returns an error only when it cannot run at all
// (not PID 1); every failure after that follows provision.on_failure.
func Main(ctx context.Context, opts Options) error {
	if os.Getpid() != 1 {
		return errors.New("provision init must run as PID 1 of an initramfs (use `provision run` on a booted system)")
	}
	start := time.Now()
	if err := mountAPI(); err != nil {
		// Without /proc and /dev nothing else works; say so where we can.
		fmt.Fprintf(os.Stderr, "provision init: %v\n", err)
	}
	m := &machine{out: opts.Console, start: start}
	if m.out == nil {
		m.out = openConsole()
	}
	args := opts.InitArgs
	if args == nil {
		args = initArgsFromOS(os.Args)
	}
	env := opts.Env
	if env == nil {
		env = os.Environ()
	}
	m.run(ctx, opts.Provision, args, env)
	return nil // unreachable in practice: run execs, reboots or halts
}

// initArgsFromOS returns the words after the "init" subcommand.
func initArgsFromOS(argv []string) []string {
	for i, a := range argv[1:] {
		if a == "init" {
			rest := argv[i+2:]
			if len(rest) > 0 && rest[0] == "--" {
				rest = rest[1:]
			}
			return rest
		}
	}
	return nil
}

type machine struct {
	out   io.Writer
	start time.Time
}

func (m *machine) logf(format string, a ...any) {
	fmt.Fprintf(m.out, "provision init: "+format+"\n", a...)
}

func (m *machine) run(ctx context.Context, provision func(context.Context, string) error, args, env []string) {
	raw, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		m.fail(OnFailureEmergency, fmt.Errorf("reading /proc/cmdline: %w", err), false)
		return
	}
	c, perr := ParseCmdline(string(raw))
	if perr != nil {
		// A bad provision.* parameter must not keep a machine from booting
		// its root; report it and go on with the defaults.
		m.logf("warning: %v", perr)
	}
	if c.Root.Kind == RootNone {
		m.fail(c.OnFailure, errors.New("no usable root= on the kernel command line"), false)
		return
	}
	r := &Resolver{SysBlock: "/sys/class/block", Dev: "/dev"}
	found, err := r.Wait(ctx, c.Root, c.RootTimeout)
	if err != nil {
		m.fail(c.OnFailure, err, false)
		return
	}
	fstype := c.RootFSType
	if fstype == "" {
		fstype = found.Superblock.Type
	}
	if err := os.MkdirAll(Sysroot, 0o755); err != nil {
		m.fail(c.OnFailure, err, false)
		return
	}
	// Provisioning writes, so the root is mounted read-write first whatever
	// ro/rw says; the final mode is set when it is mounted for init.
	if err := mountRoot(found.Path, fstype, 0, c.RootFlags); err != nil {
		m.fail(c.OnFailure, fmt.Errorf("mounting root %s (%s) on %s: %w", found.Path, c.Root, Sysroot, err), false)
		return
	}
	m.logf("root %s (%s, %s) mounted on %s", c.Root, found.Path, orUnknown(fstype), Sysroot)

	// The default before the run: only a default the run made may move a
	// boot whose rootflags pin a subvolume (finalRoot).
	defaultBefore, _ := btrfs.Default(Sysroot)
	if provision != nil {
		if err := provision(ctx, Sysroot); err != nil {
			m.fail(c.OnFailure, err, true)
		}
	}
	if err := m.finalRoot(c, found.Path, fstype, defaultBefore); err != nil {
		m.fail(OnFailureEmergency, err, false)
		return
	}
	if err := moveAPI(Sysroot); err != nil {
		m.fail(OnFailureEmergency, err, false)
		return
	}
	m.logf("switching root to %s, exec %s (%s after start)", Sysroot, c.Init, time.Since(m.start).Round(time.Millisecond))
	err = SwitchRoot(Sysroot, c.Init, args, env)
	// Only reached when the switch failed; the API mounts may already be
	// gone from under us, so there is nothing left to continue into.
	m.fail(OnFailureEmergency, err, false)
}

func orUnknown(s string) string {
	if s == "" {
		return "type unknown"
	}
	return s
}

// finalRoot mounts what init must see: on btrfs the (possibly new) default
// subvolume, unless rootflags pin one; everywhere the ro/rw the cmdline asks.
func (m *machine) finalRoot(c *Cmdline, dev, fstype string, defaultBefore uint64) error {
	var flags uintptr
	if c.ReadOnly {
		flags = unix.MS_RDONLY
	}
	data := c.RootFlags
	if fstype == "btrfs" && c.PinsSubvolume() {
		// A boot-loader entry pinned the old snapshot; if the run made a
		// new default, this boot continues into it (the next one boots
		// its own entry, which the run added). A snapshot picked in the
		// boot menu with no run committing stays what boots.
		def, derr := btrfs.Default(Sysroot)
		cur, cerr := btrfs.SubvolID(Sysroot)
		if derr == nil && cerr == nil && def != cur && def != defaultBefore && def != btrfs.TopLevelID {
			data = WithSubvolID(c.RootFlags, def)
			m.logf("rootflags pin subvolume %d; continuing into the new default %d", cur, def)
		}
	}
	if fstype == "btrfs" && (!c.PinsSubvolume() || data != c.RootFlags) {
		if err := unix.Unmount(Sysroot, 0); err != nil {
			// Something the run mounted below it is still busy: detach, the
			// new mount does not need the old one gone.
			if err := unix.Unmount(Sysroot, unix.MNT_DETACH); err != nil {
				return fmt.Errorf("unmounting %s: %w", Sysroot, err)
			}
		}
		if err := mountRoot(dev, fstype, flags, data); err != nil {
			return fmt.Errorf("mounting the default subvolume of %s on %s: %w", dev, Sysroot, err)
		}
		return nil
	}
	if c.ReadOnly {
		if err := unix.Mount("", Sysroot, "", unix.MS_REMOUNT|unix.MS_RDONLY, c.RootFlags); err != nil {
			return fmt.Errorf("remounting %s read-only: %w", Sysroot, err)
		}
	}
	return nil
}

// mountRoot mounts dev on Sysroot. Without a type it tries every block
// filesystem the kernel knows, as the kernel's own root mount does.
func mountRoot(dev, fstype string, flags uintptr, data string) error {
	if fstype != "" {
		return unix.Mount(dev, Sysroot, fstype, flags, data)
	}
	types, err := kernelFilesystems()
	if err != nil {
		return err
	}
	var errs []error
	for _, t := range types {
		err := unix.Mount(dev, Sysroot, t, flags, data)
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", t, err))
	}
	return fmt.Errorf("no filesystem type recognised it: %w", errors.Join(errs...))
}

func kernelFilesystems() ([]string, error) {
	f, err := os.Open("/proc/filesystems")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var types []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := s.Text()
		if strings.HasPrefix(line, "nodev") {
			continue
		}
		if t := strings.TrimSpace(line); t != "" {
			types = append(types, t)
		}
	}
	return types, s.Err()
}

// apiMounts are the kernel filesystems every init expects, in mount order.
var apiMounts = []struct {
	dir, fstype string
	flags       uintptr
	data        string
}{
	{"/proc", "proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
	{"/sys", "sysfs", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
	{"/dev", "devtmpfs", unix.MS_NOSUID, "mode=0755"},
	{"/run", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=0755"},
}

// mountAPI mounts /proc, /sys, /dev and /run unless the initramfs' /init
// already did.
func mountAPI() error {
	var errs []error
	for _, a := range apiMounts {
		if err := os.MkdirAll(a.dir, 0o755); err != nil {
			errs = append(errs, err)
			continue
		}
		if isMountPoint(a.dir) {
			continue
		}
		if err := unix.Mount(a.fstype, a.dir, a.fstype, a.flags, a.data); err != nil {
			errs = append(errs, fmt.Errorf("mount %s on %s: %w", a.fstype, a.dir, err))
		}
	}
	return errors.Join(errs...)
}

// isMountPoint compares the device of dir with its parent's.
func isMountPoint(dir string) bool {
	var st, parent unix.Stat_t
	if unix.Stat(dir, &st) != nil || unix.Stat(dir+"/..", &parent) != nil {
		return false
	}
	return st.Dev != parent.Dev
}

// moveAPI moves the API mounts into the new root so init finds them (systemd
// and busybox init both cope with them being there already).
func moveAPI(root string) error {
	for _, a := range apiMounts {
		if !isMountPoint(a.dir) {
			continue
		}
		target := root + a.dir
		if err := os.MkdirAll(target, 0o755); err == nil {
			if err := unix.Mount(a.dir, target, "", unix.MS_MOVE, ""); err == nil {
				continue
			}
		}
		// A read-only root without the directory: init mounts its own, the
		// initramfs' copy just goes away.
		if err := unix.Unmount(a.dir, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("moving %s into %s: %w", a.dir, root, err)
		}
	}
	return nil
}

// openConsole returns /dev/console, and makes it stdin/stdout/stderr when the
// kernel could not give us one (an initramfs without /dev/console).
func openConsole() io.Writer {
	f, err := os.OpenFile("/dev/console", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return os.Stderr
	}
	var st unix.Stat_t
	if unix.Fstat(1, &st) != nil {
		for fd := 0; fd <= 2; fd++ {
			_ = unix.Dup2(int(f.Fd()), fd)
		}
	}
	return f
}

// fail reports err and does what the policy says. It returns only when the
// boot should go on into the root (continue, or after an emergency shell);
// otherwise it reboots or halts.
func (m *machine) fail(policy FailurePolicy, err error, rootMounted bool) {
	fmt.Fprintf(m.out, "\n*** provision: FAILED: %v\n", err)
	if policy == OnFailureContinue && rootMounted {
		fmt.Fprintf(m.out, "*** provision.on_failure=continue: booting the unchanged root; the next boot retries.\n\n")
		return
	}
	if policy == OnFailureReboot {
		fmt.Fprintf(m.out, "*** provision.on_failure=reboot: rebooting.\n\n")
		unix.Sync()
		_ = unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART)
		haltForever()
	}
	fmt.Fprintf(m.out, "*** The boot is stopped (provision.on_failure=%s).\n", policy)
	if _, err := os.Stat("/bin/sh"); err == nil {
		fmt.Fprintf(m.out, "*** Emergency shell: exit it to %s.\n\n", map[bool]string{true: "boot the unchanged root", false: "reboot"}[rootMounted])
		sh := exec.Command("/bin/sh")
		sh.Stdin, sh.Stdout, sh.Stderr = os.Stdin, os.Stdout, os.Stderr
		_ = sh.Run()
		if rootMounted {
			return
		}
		unix.Sync()
		_ = unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART)
		haltForever()
	}
	fmt.Fprintf(m.out, "*** No /bin/sh in this initramfs: halting.\n\n")
	unix.Sync()
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_HALT)
	haltForever()
}

// haltForever keeps PID 1 alive: its exit would panic the kernel.
func haltForever() {
	for {
		time.Sleep(time.Hour)
	}
}
