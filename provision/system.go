package provision

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/provision-dev/provision/initrd"
	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/modules/scripts"
	"github.com/provision-dev/provision/provision/chroot"
	"github.com/provision-dev/provision/provision/config"
	"github.com/provision-dev/provision/provision/report"
	"github.com/provision-dev/provision/provision/snapshot"

	"github.com/provision-dev/provision/sources"
	"github.com/provision-dev/provision/sources/dir"
	"github.com/provision-dev/provision/sources/platform"
)

// DefaultReportPath is where the boot job leaves its report (SPEC §2).
const DefaultReportPath = "/run/provision/report.json"

// SystemConfig is what the command line says; SystemOptions turns it into
// engine Options wired to the real sources, transaction and chroot.
type SystemConfig struct {
	Root       string
	SourceSpec []string
	DryRun     bool
	Diff       bool // with DryRun: diff every file, show every script
	Strict     bool
	Force      bool
	Console    io.Writer
	ProcPrefix string // "" on a real system; tests point it at a fake tree
	// InInitrd allows bringing NICs up with DHCP. Outside the initrd the
	// machine's network is its own business: a `provision run --root` on a
	// workstation must never touch the host's links.
	InInitrd bool
}

// InInitrd reports whether this process runs in an initramfs: systemd's and
// dracut's convention is /etc/initrd-release.
func InInitrd() bool {
	_, err := os.Stat("/etc/initrd-release")
	return err == nil
}

// SystemOptions resolves --source specs and wires the real backends.
func SystemOptions(ctx context.Context, sc SystemConfig) (Options, error) {
	opts := Options{
		Root:    sc.Root,
		DryRun:  sc.DryRun,
		Diff:    sc.Diff,
		Strict:  sc.Strict,
		Force:   sc.Force,
		Console: sc.Console,
		Cmdline: readCmdline(sc.ProcPrefix),
	}
	if len(sc.SourceSpec) == 0 {
		console := sc.Console
		if console == nil {
			console = io.Discard
		}
		opts.Detect = func(ctx context.Context) ([]sources.Source, error) {
			var bringUp func(context.Context) error
			if !sc.DryRun && sc.InInitrd && os.Geteuid() == 0 {
				bringUp = initrdNetwork(console)
			}
			det, err := DetectSources(ctx, sc.ProcPrefix, sc.Root, bringUp)
			if det != nil {
				for _, r := range det.Reasons {
					fmt.Fprintf(console, "[ OK ] detect: %s\n", r)
				}
				return det.Sources, err
			}
			return nil, err
		}
	}
	if !sc.DryRun {
		// The chroot hands the target's /var, /home... subvolumes to the
		// run's transaction, so it needs to know it.
		cur := new(currentTxn)
		opts.Recover = func(ctx context.Context, root string) error {
			if err := recoverRoot(ctx, root, sc.Console); err != nil {
				return err
			}
			cur.recovered = root
			return nil
		}
		if os.Geteuid() == 0 {
			opts.RecordedInstance = recordedInstance
		}
		opts.Begin = beginSnapshot(sc.Console, cur)
		if os.Geteuid() == 0 {
			opts.Chroot = setupChroot(scriptTimeout(opts.Cmdline), sc.Console, cur)
			// `# combustion: network` scripts and packages: DHCP on the
			// NICs nothing configured yet, in the initrd only.
			if sc.InInitrd {
				opts.Network = initrdNetwork(orDiscard(sc.Console))
				opts.Prepare = prepareCombustion(orDiscard(sc.Console))
				// /run survives switch_root: power_state's unit runs
				// in the system this boot starts, and on no other.
				opts.RunDir = "/run"
			}
		}
		if !sc.InInitrd {
			// The prepare stage runs before the snapshot exists, so
			// nothing confines it: on a workstation it would run as
			// root on the host itself.
			opts.Prepare = refusePrepare
		}
	}
	for _, spec := range sc.SourceSpec {
		s, err := SourceFromSpec(spec)
		if err != nil {
			return opts, err
		}
		opts.Sources = append(opts.Sources, s)
	}
	return opts, nil
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// SourceFromSpec resolves one --source argument: a URL form
// (ec2[:URL], openstack[:URL], nocloud:URL, http(s)://...) or a local path.
func SourceFromSpec(spec string) (sources.Source, error) {
	if s, ok, err := platform.Parse(spec); ok || err != nil {
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", spec, err)
		}
		return s, nil
	}
	return localSource(dir.Abs(spec))
}

func dirSource(path string) sources.Source  { return dir.New(path) }
func fileSource(path string) sources.Source { return dir.NewFile(path) }

func readCmdline(prefix string) []string {
	b, err := os.ReadFile(filepath.Join(prefix, "/proc/cmdline"))
	if err != nil {
		return nil
	}
	return strings.Fields(string(b))
}

// WriteReport writes the run's report to path (the target's copy was
// written inside the transaction).
func WriteReport(res *Result, path, root string) error {
	if res.Report == nil {
		return nil
	}
	err := res.Report.Write(path)
	if res.Err != nil && root != "" {
		err = errors.Join(err, writeFailedReport(res.Report, root))
	}
	return err
}

// writeFailedReport leaves a failed run's report in the old root (SPEC §2
// step 8): the transaction that would have carried it was thrown away, and
// /run does not survive the boot. The target's /var may be a subvolume of
// its own (MicroOS), so as root its fstab is mounted first: a report written
// under the empty mount point would be hidden from the booted system. A
// running system (root /) has its /var mounted already.
func writeFailedReport(rep *report.Report, root string) error {
	target := root
	if os.Geteuid() == 0 && filepath.Clean(root) != "/" {
		env, err := chroot.Setup(context.Background(), root, chroot.Options{})
		if err != nil {
			return fmt.Errorf("mounting the target's /var for the report: %w", err)
		}
		defer env.Close()
		target = env.Root()
	}
	r, err := rootfs.New(target)
	if err != nil {
		return err
	}
	return rep.WriteTarget(r)
}

// recordedInstance reads the instance-id from the target's /var as the
// booted system sees it (its fstab /var subvolume mounted, read only use),
// where apply records it. A running system (root /) has /var mounted.
// Only a missing file is "none recorded": a /var that cannot be mounted or
// read is an error, not a reason to provision again.
func recordedInstance(ctx context.Context, root string) (string, error) {
	if root == "" || filepath.Clean(root) == "/" {
		return "", nil
	}
	// The target's own mounts only, and only those the record lies on
	// (its /var): nothing runs here, and nothing else is read.
	env, err := chroot.Setup(ctx, root, chroot.Options{NoAPI: true, Optional: notVar, Only: []string{instanceIDPath}})
	if err != nil {
		return "", err
	}
	defer env.Close()
	r, err := rootfs.New(env.Root())
	if err != nil {
		return "", err
	}
	b, err := r.ReadFile(instanceIDPath)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// StatusOptions says which report `provision status` reads and how it
// prints it.
type StatusOptions struct {
	// Path is the report to read. When it does not exist, Fallback is read
	// instead: the target's own copy (report.TargetJSON), which outlives
	// the boot that wrote Path. With no Fallback (--report FILE given), a
	// missing Path is an error; with neither file, provision has not run.
	Path, Fallback string
	JSON, Long     bool
	// Wait polls Path until the run has finished, for at most Timeout.
	Wait    bool
	Timeout time.Duration
}

// PrintStatus prints the last run's report like `cloud-init status` and
// returns the exit status: 0 done, disabled, running or not run; 1 failed;
// 2 done with a failed step marked non-fatal.
func PrintStatus(ctx context.Context, w io.Writer, opts StatusOptions) (int, error) {
	rep, err := readStatus(ctx, opts)
	if err != nil {
		return 1, err
	}
	if opts.JSON {
		b, err := rep.JSON()
		if err != nil {
			return 1, err
		}
		w.Write(b)
		return report.ExitCode(rep), nil
	}
	report.FormatStatus(w, rep, opts.Long)
	if opts.Long && rep.Status != report.StatusNotRun {
		fmt.Fprintln(w)
		report.FormatBlame(w, rep)
	}
	return report.ExitCode(rep), nil
}

// readStatus finds the report status prints, as a status document naming
// the file it came from; report.NotRun when there is none.
func readStatus(ctx context.Context, opts StatusOptions) (*report.Report, error) {
	path := opts.Path
	_, err := os.Stat(path)
	switch {
	case err == nil:
	case !errors.Is(err, os.ErrNotExist):
		return nil, err
	case opts.Fallback == "" && !opts.Wait:
		return nil, fmt.Errorf("no report at %s: %w", path, err)
	case opts.Fallback != "" && reportExists(opts.Fallback):
		// A booted system: this boot's run left nothing in /run (or no
		// run happened this boot), the first boot's report is in /var/log.
		path = opts.Fallback
	case opts.Fallback != "" && !InInitrd():
		// The boot job runs in the initrd, before this system started:
		// waiting for it here would only wait for the timeout.
		return report.NotRun(fmt.Sprintf("no report in %s or %s", opts.Path, opts.Fallback)), nil
	}
	rep, err := readReport(ctx, path, opts.Wait && path == opts.Path, opts.Timeout)
	if err != nil {
		return nil, err
	}
	return rep.AsKind(report.KindStatus, path), nil
}

// readReport reads path, or with wait polls it until its run has finished.
func readReport(ctx context.Context, path string, wait bool, timeout time.Duration) (*report.Report, error) {
	if !wait {
		return report.Read(path)
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return report.Wait(wctx, path, 250*time.Millisecond)
}

func reportExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// Init is `provision init`, the PID-1 helper of a minimal initramfs: it
// mounts the root, runs the boot job on it and switch_roots into the real
// init with args. It returns only when it cannot act as PID 1.
func Init(ctx context.Context, console io.Writer, args []string) error {
	return initrd.Main(ctx, initrd.Options{
		InitArgs: args,
		Provision: func(ctx context.Context, sysroot string) error {
			opts, err := SystemOptions(ctx, SystemConfig{Root: sysroot, Console: console, InInitrd: true})
			if err != nil {
				return err
			}
			res := Run(ctx, opts)
			if err := WriteReport(res, DefaultReportPath, sysroot); err != nil {
				fmt.Fprintf(console, "[WARN] writing the report: %v\n", err)
			}
			// Where the boot's time went, for whoever finds it slow.
			fmt.Fprintf(console, "provision: took %v: %s\n", res.Duration.Round(time.Millisecond), FormatPhases(res.Phases))
			switch {
			case res.Err != nil:
				return res.Err
			case res.Status == StatusNothing:
				fmt.Fprintf(console, "[ OK ] provision: nothing to do: %s\n", res.Reason)
			default:
				fmt.Fprintf(console, "[ OK ] provision: %s\n", res.Status)
			}
			return nil
		},
	})
}

// currentTxn is the run's transaction as the chroot needs to know it.
type currentTxn struct {
	txn snapshot.Txn
	etc carriedEtc
	// recovered is the root Options.Recover already recovered in this
	// run: begin need not look again (each look mounts the btrfs top
	// level, tens of milliseconds in a VM's initrd).
	recovered string
}

// recoverRoot finishes or undoes what a crashed run left on a root.
var recoverRoot = snapshot.RecoverLogged

// beginSnapshot recovers what a crashed run left and starts the transaction:
// a btrfs snapshot when the root is a btrfs subvolume, else a journal.
func beginSnapshot(console io.Writer, cur *currentTxn) func(ctx context.Context, root string) (Txn, error) {
	return func(ctx context.Context, root string) (Txn, error) {
		if cur.recovered != root {
			if err := recoverRoot(ctx, root, console); err != nil {
				return nil, fmt.Errorf("recovering an earlier run: %w", err)
			}
		}
		t, err := snapshot.Begin(ctx, root, snapshot.Options{Log: console, Plugins: runSnapperPlugins(root, orDiscard(console))})
		if err != nil {
			return nil, err
		}
		etc, err := carryEtc(t, orDiscard(console))
		if err != nil {
			if aerr := t.Abort(context.WithoutCancel(ctx)); aerr != nil {
				err = fmt.Errorf("%w (and rolling back failed: %v)", err, aerr)
			}
			return nil, fmt.Errorf("carrying /etc into the new snapshot: %w", err)
		}
		*cur = currentTxn{txn: t, etc: etc, recovered: cur.recovered}
		return t, nil
	}
}

// setupChroot prepares the snapshot for programs (scripts) with the target's
// own /var, /home... mounted, as a transactional-update shell would.
// The target's /var, /home... subvolumes of the root's btrfs are snapshotted
// into the transaction (cur) and those snapshots mounted, so even what
// scripts write there directly is committed or undone with the root.
func setupChroot(timeout time.Duration, console io.Writer, cur *currentTxn) func(ctx context.Context, root string, exec bool) (Chroot, error) {
	return func(ctx context.Context, root string, exec bool) (Chroot, error) {
		o := chroot.Options{Timeout: timeout, Log: console, EtcOverlay: true, NoAPI: !exec}
		if !exec {
			// No program runs: a mount point whose device is missing
			// can be left out, and a module write below it is refused
			// (rootfs.Root.Unmounted). /var holds the run's record.
			o.Optional = notVar
			// And every write passes rootfs, so /home, /root... are
			// snapshotted on their first write only.
			o.LazySubvolumes = true
		}
		if sv, ok := cur.txn.(snapshot.SubvolumeSnapshotter); ok {
			o.Subvolumes = sv
		}
		env, err := chroot.Setup(ctx, root, o)
		if err != nil {
			return nil, err
		}
		if err := copyFstabToUpper(root, cur.etc); err != nil {
			env.Discard()
			env.Close()
			return nil, err
		}
		return env, nil
	}
}

// notVar: every fstab mount point but /var.
func notVar(target string) bool { return target != "/var" }

// scriptTimeout reads provision.script_timeout= (seconds or a Go duration);
// default 30 minutes (SPEC §5).
func scriptTimeout(cmdline []string) time.Duration {
	for _, w := range cmdline {
		v, ok := strings.CutPrefix(w, "provision.script_timeout=")
		if !ok {
			continue
		}
		if d, err := time.ParseDuration(v); err == nil && d > 0 {
			return d
		}
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			return time.Duration(n) * time.Second
		}
	}
	return 30 * time.Minute
}

// refusePrepare turns down a Combustion script's --prepare stage outside
// the initrd. Combustion runs that stage in the initrd before the root is
// writable, with the initrd's own /etc and network as its world (its
// README's example writes a NetworkManager profile into the initrd's /etc);
// confining it to the target would give it a different world than the one
// it was written for, and running it as it is would change the host. Only
// the boot can run it, so a run elsewhere refuses the config, before
// anything is written.
func refusePrepare(_ context.Context, script config.Script) error {
	return fmt.Errorf("%w: %s: the Combustion script asks for the prepare stage (`# combustion: prepare`), "+
		"which runs only in the initrd, before the root is mounted: refusing to run it on this host; "+
		"apply this configuration on the machine's first boot, or drop `prepare` from the script's magic comment",
		ErrInvalid, script.Origin)
}

// prepareCombustion runs a script's --prepare stage in a private copy of its
// config directory, as Combustion does in the initrd.
func prepareCombustion(console io.Writer) func(ctx context.Context, script config.Script) error {
	return func(ctx context.Context, script config.Script) error {
		dir, err := os.MkdirTemp("", "provision-prepare-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		return scripts.RunPrepare(ctx, script, filepath.Join(dir, "config"), console)
	}
}
