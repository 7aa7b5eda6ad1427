// Package provision is the engine: it decides whether this boot must be
// provisioned, collects documents from the sources, turns them into one
// validated model, plans the steps and applies them inside a transaction that
// is committed atomically or thrown away.
package provision

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/modules/accounts"
	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/modules/scripts"
	"github.com/provision-dev/provision/modules/units"
	"github.com/provision-dev/provision/provision/bootentry"
	"github.com/provision-dev/provision/provision/cloudinit"
	"github.com/provision-dev/provision/provision/config"
	"github.com/provision-dev/provision/provision/report"
	"github.com/provision-dev/provision/sources"
	"golang.org/x/sys/unix"
)

// Outcome of a run.
const (
	StatusDone    = "done"
	StatusNothing = "nothing to do"
	StatusFailed  = "failed"
	// StatusTolerated is a step that failed where the configuration marked
	// it non-fatal: the run went on and committed.
	StatusTolerated = "failed, non-fatal"
	StatusInvalid   = "invalid"
	StatusPlanned   = "planned" // dry run
	StatusSkipped   = "skipped" // a step this release does not execute
	StatusOK        = "ok"
	StatusUnchanged = "unchanged"
)

// ErrInvalid marks errors in the input (exit code 2), as opposed to failures
// while applying (exit code 1).
var ErrInvalid = errors.New("invalid configuration")

// Options control one run.
type Options struct {
	Root    string           // the target root ("/sysroot" in the initrd)
	Sources []sources.Source // explicit sources; nil means detect
	// Detect finds the sources of this machine when Sources is nil.
	Detect  func(ctx context.Context) ([]sources.Source, error)
	Cmdline []string // kernel command line words
	DryRun  bool
	// Diff, with DryRun, adds to the result a unified diff of every file
	// the plan changes and the text of every script it would run.
	Diff    bool
	Strict  bool
	Force   bool // ignore the first-boot predicate
	Console io.Writer
	// Begin starts the transaction on Root; nil means writing directly.
	Begin func(ctx context.Context, root string) (Txn, error)
	// Recover finishes or undoes what a crashed run left on Root. It runs
	// first, before the first-boot predicate: a crash past the commit point
	// boots a provisioned root that has nothing to do, and its /var, /home
	// swap and bookkeeping must still be finished. nil skips it.
	Recover func(ctx context.Context, root string) error
	// RecordedInstance reads the recorded instance-id where the root alone
	// does not show it: the target's own /var subvolume, not mounted on
	// the root yet (the initrd, --root). nil: the root's file only. "" and
	// no error: none recorded; an error: the record could not be read, and
	// the run must not guess (a provisioned machine would be provisioned
	// again).
	RecordedInstance func(ctx context.Context, root string) (string, error)
	// Chroot prepares Root as the booted system mounts it (the target's
	// own filesystems) and, when exec is true, for running programs (the
	// API filesystems); nil means none are run.
	Chroot func(ctx context.Context, root string, exec bool) (Chroot, error)
	// Network brings the network up for scripts that ask for it
	// (`# combustion: network`); nil means they get what is there.
	Network func(ctx context.Context) error
	// Prepare runs a Combustion script's `--prepare` stage (magic comment
	// `prepare`) before the network and the snapshot; nil skips it.
	Prepare func(ctx context.Context, script config.Script) error
	// Now is the clock (for the report); nil means time.Now.
	Now func() time.Time
	// RunDir is the running system's /run when the run is the boot's own
	// (the initrd): power_state leaves its unit there. "" elsewhere.
	RunDir string
	// PrivateMounts, when set, is asked to have a run that will mount
	// (programs run in the target: /proc, /sys, /dev) done in a mount
	// namespace of its own, before anything is changed. ok means another
	// process did the whole run (the command's copy of itself, see
	// cmd/provision) and code is its exit status: Run returns a Result
	// with Delegated set. A run that mounts nothing never asks.
	PrivateMounts func() (code int, ok bool)
}

// Txn is the transaction the modules apply into (SPEC §6). Commit flushes
// the filesystem holding Root before its commit point; the filesystems
// the run wrote beside it are the engine's to flush (syncWritten).
type Txn interface {
	Root() string
	Journal() rootfs.Journal
	Commit(ctx context.Context) error
	Abort(ctx context.Context) error
}

// Chroot is a prepared tree where programs can run.
type Chroot interface {
	modules.Executor
	Close() error
}

// Result is what a run did; the report is made from it.
type Result struct {
	// planErr is what planning found wrong, kept apart so it can be
	// reported with the parse and validation errors of the same run.
	planErr error
	// Delegated is set when Options.PrivateMounts had another process do
	// the run; DelegatedExit is its exit status. Nothing else is set.
	Delegated     bool `json:"-"`
	DelegatedExit int  `json:"-"`

	Status string `json:"status"`
	// InstanceIDFrom says where InstanceID came from: a meta-data key's
	// origin, or a digest of the documents.
	InstanceIDFrom string `json:"instance_id_from,omitempty"`
	// Boot is a dry run's verdict of the first-boot rules on --root.
	Boot string `json:"boot,omitempty"`
	// Diff is a dry run's --diff: file changes and script texts.
	Diff       string         `json:"diff,omitempty"`
	Reason     string         `json:"reason,omitempty"`
	InstanceID string         `json:"instance_id,omitempty"`
	Sources    []SourceResult `json:"sources"`
	Documents  []DocumentInfo `json:"documents"`
	Warnings   []string       `json:"warnings,omitempty"`
	// Target says how the target keeps /etc, boots its snapshots and which
	// of its own hooks run (dry run with --root).
	Target   []string      `json:"target,omitempty"`
	Steps    []StepResult  `json:"steps"`
	Error    string        `json:"error,omitempty"`
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration_ns"`
	// Phases are the run's stretches in order, as far as it got: recover,
	// detect, read, parse; then for a run that applies begin, mounts,
	// plan, preserve, steps, labels, report, unmount, sync, commit.
	Phases   []Phase `json:"-"`
	phaseEnd time.Time
	clock    func() time.Time // Run's Options.Now
	Config   *config.Config   `json:"-"`
	Err      error            `json:"-"`
	Plan     []modules.Step   `json:"-"`
	FailedAt string           `json:"-"`
	// Report is the report being built (sources, documents, steps).
	Report *report.Report `json:"-"`
}

// SourceResult says what one source yielded.
type SourceResult struct {
	Name      string `json:"name"`
	Presence  string `json:"presence"`
	Documents int    `json:"documents"`
	Error     string `json:"error,omitempty"`
	Reason    string `json:"reason,omitempty"` // why nothing was found
}

// DocumentInfo describes a document without its content (it may hold secrets).
type DocumentInfo struct {
	Origin string `json:"origin"`
	Kind   string `json:"kind"`
	Size   int    `json:"size"`
}

// StepResult is one applied (or planned) step.
type StepResult struct {
	Module   string        `json:"module"`
	Action   string        `json:"action"`
	Target   string        `json:"target"`
	Detail   string        `json:"detail,omitempty"`
	Origin   string        `json:"origin"`
	Status   string        `json:"status"`
	Error    string        `json:"error,omitempty"`
	Duration time.Duration `json:"duration_ns"`
}

func stepResult(s modules.Step, status string) StepResult {
	return StepResult{Module: s.Module, Action: s.Action, Target: s.Target, Detail: s.Detail, Origin: s.Origin.String(), Status: status}
}

// Collect fetches documents from every source. A source that is absent or
// finds nothing is recorded, not an error; any other failure is.
func Collect(ctx context.Context, srcs []sources.Source) ([]sources.Document, []SourceResult, error) {
	var docs []sources.Document
	var results []SourceResult
	for _, s := range srcs {
		r := SourceResult{Name: s.Name(), Presence: "present"}
		d, err := s.Fetch(ctx)
		switch {
		case errors.Is(err, sources.ErrNotFound):
			// Keep why: "no cidata label among: combustion, EFI" tells a
			// user more than "nothing found".
			r.Presence = "absent"
			r.Reason = err.Error()
		case err != nil:
			r.Error = err.Error()
			results = append(results, r)
			return nil, results, fmt.Errorf("source %s: %w", s.Name(), err)
		}
		r.Documents = len(d)
		docs = append(docs, d...)
		results = append(results, r)
	}
	return docs, results, nil
}

// Run performs a whole provisioning run. The returned error is also in
// Result.Err; errors.Is(err, ErrInvalid) tells bad input from a failed apply.
func Run(ctx context.Context, opts Options) (out *Result) {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	console := opts.Console
	if console == nil {
		console = io.Discard
	}
	res := &Result{Started: now(), Steps: []StepResult{}, Sources: []SourceResult{}, Documents: []DocumentInfo{}, clock: now}
	res.Report = report.New(now)
	fail := func(status string, err error) *Result {
		res.Status, res.Err, res.Error = status, err, err.Error()
		return res
	}
	defer func() {
		// apply recovers its own panics (it has a transaction to roll
		// back); one before it (a parser) fails the run all the same.
		if v := recover(); v != nil {
			out = fail(StatusFailed, recovered(v))
		}
		res.Duration = now().Sub(res.Started)
		finishReport(res)
	}()

	if opts.Recover != nil && !opts.DryRun {
		if err := opts.Recover(ctx, opts.Root); err != nil {
			return fail(StatusFailed, fmt.Errorf("recovering an earlier run: %w", err))
		}
	}
	res.phase("recover")
	boot := ReadBoot(opts.Root, opts.Cmdline)
	if boot.Recorded == "" && opts.RecordedInstance != nil && !opts.DryRun {
		rec, err := opts.RecordedInstance(ctx, opts.Root)
		if err != nil {
			return fail(StatusFailed, fmt.Errorf("reading the recorded instance-id: %w", err))
		}
		boot.Recorded = rec
	}
	if boot.DisabledBy != "" && !opts.DryRun && !opts.Force {
		res.Status, res.Reason = StatusNothing, "disabled by "+boot.DisabledBy
		return res
	}
	// Detection runs on every boot, not only the first: a cloud source
	// with an instance-id we have not recorded is a new instance (SPEC §2),
	// and detection is local and takes well under a millisecond.
	explicit := opts.Sources != nil

	srcs := opts.Sources
	if !explicit && opts.Detect != nil {
		var err error
		srcs, err = opts.Detect(ctx)
		if err != nil {
			return fail(StatusFailed, fmt.Errorf("detecting sources: %w", err))
		}
	}
	res.phase("detect")
	docs, sres, err := Collect(ctx, srcs)
	res.phase("read")
	res.Sources = append(res.Sources, sres...)
	for _, s := range sres {
		res.Report.AddSource(report.Source{Name: s.Name, Presence: s.Presence, Documents: s.Documents, Error: s.Error})
	}
	for _, d := range docs {
		kind := string(kindOf(d))
		res.Documents = append(res.Documents, DocumentInfo{Origin: d.Origin.String(), Kind: kind, Size: len(d.Data)})
		res.Report.AddDocument(d.Origin.String(), kind, d.Data)
	}
	if err != nil {
		return fail(StatusFailed, err)
	}
	if len(docs) == 0 {
		res.Status, res.Reason = StatusNothing, "no configuration source found"
		for _, s := range res.Sources {
			if s.Reason != "" {
				res.Reason += "; " + s.Reason
			}
		}
		return res
	}

	// Parsing, validation and planning each find their own errors; all of
	// them are reported together, so one run shows everything to fix.
	cfg, parseErr := ParseDocuments(ctx, docs, ParseOptions{Strict: opts.Strict, DefaultUser: defaultUser(opts.Root), FetchInclude: includeFetcher(opts.DryRun), FetchConfig: configFetcher(opts.DryRun)})
	res.Config = cfg
	for _, w := range cfg.Warnings {
		res.Warnings = append(res.Warnings, w.String())
		res.Report.AddWarning(w.String())
	}
	res.Report.AddSecret(secrets(cfg)...)
	var problems []error
	if parseErr != nil {
		problems = append(problems, parseErr)
	}
	if err := cfg.CheckLimits(); err != nil {
		// Before validation and planning, whose work grows with the
		// counts a hostile config inflates.
		res.Plan, res.Steps, res.Target = nil, nil, nil
		return fail(StatusInvalid, invalidConfig(append(problems, err), nil))
	}
	if err := cfg.Validate(); err != nil {
		problems = append(problems, err)
	}
	if opts.Strict && len(cfg.Warnings) > 0 {
		problems = append(problems, fmt.Errorf("--strict: %d warning(s), first: %s", len(cfg.Warnings), cfg.Warnings[0]))
	}
	if len(problems) > 0 {
		res.Plan, res.Steps, res.Target = nil, nil, nil
		return fail(StatusInvalid, invalidConfig(problems, planProblems(res, cfg, opts.Root)))
	}

	res.phase("parse")
	res.InstanceID = InstanceID(cfg.InstanceID.Value, docs)
	res.InstanceIDFrom = "a digest of the documents, as no source gives an instance-id"
	if cfg.InstanceID.Value != "" {
		res.InstanceIDFrom = cfg.InstanceID.Origin.String()
	}
	res.Report.InstanceID = res.InstanceID
	if opts.DryRun && opts.Root != "" {
		res.Boot = describeBoot(boot, cfg.InstanceID.Value, res.InstanceID)
	}
	if !opts.Force && !opts.DryRun {
		if reason, run := shouldRun(boot, explicit, cfg.InstanceID.Value, res.InstanceID); !run {
			res.Status, res.Reason = StatusNothing, reason
			return res
		}
	}

	if opts.DryRun {
		res = dryRun(res, cfg, opts.Root, opts.Diff)
		return res
	}
	if opts.PrivateMounts != nil && needsChroot(cfg) {
		if code, ok := opts.PrivateMounts(); ok {
			res.Delegated, res.DelegatedExit = true, code
			return res
		}
	}
	beginPasswordHashes(cfg, opts.Root)
	return apply(ctx, res, cfg, opts, console)
}

// describeBoot says what the boot job would decide on this target for
// this instance, for a dry run's header.
func describeBoot(b Boot, metaID, instanceID string) string {
	recorded := "none recorded"
	if b.Recorded != "" {
		recorded = "recorded " + b.Recorded
	}
	if reason, run := shouldRun(b, false, metaID, instanceID); !run {
		return "a boot would do nothing: " + reason
	}
	return fmt.Sprintf("a boot would provision (machine-id %s, instance-id %s)", b.MachineIDState, recorded)
}

// shouldRun is the first-boot predicate of SPEC §2 once the documents are
// known. An explicit --source is a request to provision the tree, so only a
// recorded identical instance stops it; the boot job also needs a first boot
// or a new cloud instance-id.
func shouldRun(b Boot, explicit bool, metaID, instanceID string) (string, bool) {
	if b.Recorded != "" && b.Recorded == instanceID {
		return "instance " + instanceID + " already provisioned", false
	}
	if explicit || b.FirstBoot() {
		return "", true
	}
	if metaID != "" && metaID != b.Recorded {
		return "", true
	}
	return "not a first boot (machine-id " + b.MachineIDState + ") and no new instance-id", false
}

// planProblems plans a configuration that already failed to parse or
// validate, for the errors planning adds. It is best effort: modules are
// written for valid input, so a panic here only means no plan errors.
func planProblems(res *Result, cfg *config.Config, root string) (planErr error) {
	defer func() {
		if recover() != nil {
			planErr = nil
		}
	}()
	scratch := *res
	scratch.Warnings = nil
	dryRun(&scratch, cfg, root, false)
	res.Warnings = append(res.Warnings, scratch.Warnings...)
	return scratch.planErr
}

func dryRun(res *Result, cfg *config.Config, root string, diff bool) *Result {
	planRoot := root
	if planRoot == "" {
		// Without --root, plan against a minimal base system: every step shows.
		tmp, err := os.MkdirTemp("", "provision-plan-")
		if err != nil {
			res.Status, res.Err, res.Error = StatusFailed, err, err.Error()
			return res
		}
		defer os.RemoveAll(tmp)
		if err := writeBaseTree(tmp, cfg.System.Timezone.Value); err != nil {
			res.Status, res.Err, res.Error = StatusFailed, err, err.Error()
			return res
		}
		assumed, err := assumeImageUsers(tmp, cfg)
		if err != nil {
			res.Status, res.Err, res.Error = StatusFailed, err, err.Error()
			return res
		}
		res.Warnings = append(res.Warnings, assumed...)
		assumed, err = assumeImageUnits(tmp, cfg)
		if err != nil {
			res.Status, res.Err, res.Error = StatusFailed, err, err.Error()
			return res
		}
		res.Warnings = append(res.Warnings, assumed...)
		if w := assumeZone(tmp, cfg); w != "" {
			res.Warnings = append(res.Warnings, w)
		}
		w, err := assumeNTPClient(tmp, cfg)
		if err != nil {
			res.Status, res.Err, res.Error = StatusFailed, err, err.Error()
			return res
		}
		if w != "" {
			res.Warnings = append(res.Warnings, w)
		}
		planRoot = tmp
	}
	r, err := rootfs.New(planRoot)
	if err != nil {
		res.Status, res.Err, res.Error = StatusFailed, err, err.Error()
		return res
	}
	if root != "" {
		res.Target = describeTarget(root)
	}
	steps, err := Plan(cfg, r)
	if err != nil {
		res.planErr = err
		err = invalidConfig(nil, err)
		res.Status, res.Err, res.Error = StatusInvalid, err, err.Error()
		return res
	}
	res.Plan = steps
	for _, s := range steps {
		res.Steps = append(res.Steps, stepResult(s, StatusPlanned))
	}
	if diff {
		// Without --root the base tree is ours to change; a real tree is
		// changed only through an overlay.
		text, err := planDiff(context.Background(), steps, cfg, planRoot, root == "", res.Report.Mask)
		if err != nil {
			res.Status, res.Err, res.Error = StatusFailed, err, err.Error()
			return res
		}
		res.Diff = text
	}
	// What acts after the commit is planned, not simulated: the disk is
	// the machine's, decided at boot.
	after, err := PlanAfterCommit(cfg, "", "")
	if err != nil {
		res.planErr = err
		err = invalidConfig(nil, err)
		res.Status, res.Err, res.Error = StatusInvalid, err, err.Error()
		return res
	}
	for _, s := range after {
		res.Plan = append(res.Plan, s)
		res.Steps = append(res.Steps, stepResult(s, StatusPlanned))
	}
	if root != "" {
		res.Target = append(res.Target, describeLabels(root, cfg, steps))
	}
	res.Status = StatusPlanned
	return res
}

func apply(ctx context.Context, res *Result, cfg *config.Config, opts Options, console io.Writer) (out *Result) {
	rep := res.Report
	fail := func(err error) *Result {
		res.Status, res.Err, res.Error = StatusFailed, err, err.Error()
		fmt.Fprintf(console, "[FAILED] %s\n", modules.PrintableLines(err.Error()))
		return res
	}
	// Combustion's prepare stage comes first: in the initrd, before the
	// network is up and before anything is written.
	if opts.Prepare != nil {
		for _, sc := range cfg.Scripts {
			if sc.Kind == config.ScriptCombustion && sc.Prepare {
				if err := opts.Prepare(ctx, sc); err != nil {
					res.FailedAt = sc.Origin.String()
					fail(err)
					if errors.Is(err, ErrInvalid) {
						res.Status = StatusInvalid // refused, not attempted
					}
					return res
				}
				fmt.Fprintf(console, "[ OK ] scripts: %s --prepare [%s]\n", modules.Printable(sc.Name), modules.Printable(sc.Origin.String()))
			}
		}
	}
	begin := opts.Begin
	if begin == nil {
		begin = directTxn
	}
	txn, err := begin(ctx, opts.Root)
	if err != nil {
		return fail(fmt.Errorf("beginning transaction: %w", err))
	}
	res.phase("begin")
	fmt.Fprintf(console, "[ OK ] transaction: applying into %s\n", modules.Printable(txn.Root()))
	var chroot Chroot
	closeChroot := func() error {
		if chroot == nil {
			return nil
		}
		c := chroot
		chroot = nil
		return c.Close()
	}
	abort := func(cause error) *Result {
		// Writes outside the snapshot (a /var of its own filesystem) are
		// undone while it is still mounted where they were recorded, and
		// what the chroot made there (a new overlay layer) goes too.
		if u, ok := txn.(interface{ UndoOutside() error }); ok {
			if uerr := u.UndoOutside(); uerr != nil {
				cause = fmt.Errorf("%w (and undoing the writes outside the snapshot failed: %v)", cause, uerr)
			}
		}
		if d, ok := chroot.(interface{ Discard() error }); ok {
			if derr := d.Discard(); derr != nil {
				cause = fmt.Errorf("%w (and removing what it made outside the snapshot failed: %v)", cause, derr)
			}
		}
		if cerr := closeChroot(); cerr != nil {
			cause = fmt.Errorf("%w (and cleaning up the chroot failed: %v)", cause, cerr)
		}
		if aerr := txn.Abort(context.WithoutCancel(ctx)); aerr != nil {
			cause = fmt.Errorf("%w (and rolling back failed: %v)", cause, aerr)
		} else {
			fmt.Fprintf(console, "[ OK ] rolled back: the old root is untouched\n")
		}
		return fail(cause)
	}
	// From here on a panic (a bug in a module, a parser, the transaction)
	// is a failed run like any other: rolled back, unmounted, reported.
	// In `provision init` it would otherwise be PID 1's death, a kernel
	// panic.
	var env *modules.Env
	committed := false
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		perr := recovered(v)
		if origin := endRunningSteps(rep, perr); origin != "" {
			res.FailedAt = origin
		}
		if committed {
			// Past the commit point the new root is the system: what
			// is left (the boot entries) fails as it would by error.
			warn(res, console, fmt.Sprintf("after the commit: %v", perr))
			res.Status = StatusDone
			out = res
			return
		}
		if env != nil {
			env.ReleaseBatches()
		}
		defer func() {
			if v := recover(); v != nil {
				out = fail(fmt.Errorf("%w (and rolling back panicked too: %w)", perr, recovered(v)))
			}
		}()
		out = abort(perr)
	}()
	root, err := rootfs.New(txn.Root())
	if err != nil {
		return abort(err)
	}
	// Every path the modules change passes the recorder, for labelling.
	rec := newPathRecorder(txn.Journal())
	root.Journal = rec
	// Durability comes from the commit, which flushes every filesystem
	// the run wrote (syncWritten) before its commit point.
	root.NoSync = true
	applyStart := time.Now()
	env = &modules.Env{Root: root, Console: console, Secret: func(v string) { rep.AddSecret(v) }}
	// The target's /var, /home... are mounted before planning (SPEC §2.5),
	// so modules see and write them where the booted system will, not
	// into the empty mount points of the root snapshot.
	if needsChroot(cfg) && opts.Chroot == nil {
		return abort(errors.New("the configuration runs programs in the target (scripts, packages, the trust store's update tool, a random_seed command), but no chroot is available to run them (run as root)"))
	}
	if needsNetwork(cfg) && opts.Network != nil {
		// Combustion brings the initrd network up before the script runs
		// when it says `# combustion: network`; so do we.
		if err := opts.Network(ctx); err != nil {
			return abort(fmt.Errorf("bringing up the network for the scripts: %w", err))
		}
	}
	if opts.Chroot != nil {
		// /proc, /sys and /dev only when a program will run: most first
		// boots write files only.
		chroot, err = opts.Chroot(ctx, txn.Root(), needsChroot(cfg))
		if err != nil {
			// A failed preparation undid its own mounts; what came back
			// with the error may be a typed nil (*chroot.Env in the
			// interface), which abort must not Close.
			chroot = nil
			return abort(fmt.Errorf("preparing the chroot: %w", err))
		}
		if needsChroot(cfg) {
			env.Exec = forgetting{Executor: chroot, root: root}
		}
		if b, ok := chroot.(interface{ BeforeChange(string) error }); ok {
			root.BeforeChange = b.BeforeChange
		}
		if u, ok := chroot.(interface{ Unmounted() []rootfs.Unmounted }); ok {
			root.Unmounted = u.Unmounted()
			for _, m := range root.Unmounted {
				w := fmt.Sprintf("%s is not mounted (%s): nothing in the configuration writes there, so the run goes on without it", m.Dir, m.Why)
				res.Warnings = append(res.Warnings, w)
				rep.AddWarning(w)
			}
		}
	}
	res.phase("mounts")
	steps, err := Plan(cfg, root)
	if err != nil {
		return abort(fmt.Errorf("%w: %w", ErrInvalid, err))
	}
	steps = panicPoint(steps)
	res.Plan = steps
	// Work the steps can begin now, on the other cores, overlapping the
	// flush below and the steps before theirs.
	for _, s := range steps {
		if s.Prefetch != nil {
			s.Prefetch()
		}
	}
	// What the steps and the run itself will write, kept by the journal
	// with one flush before the first change rather than one each.
	res.phase("plan")
	if err := root.PreserveAll(plannedWrites(steps)...); err != nil {
		return abort(err)
	}
	res.phase("preserve")
	for _, s := range steps {
		if ctx.Err() != nil {
			return abort(interrupted(ctx, ctx.Err()))
		}
		if s.Apply == nil {
			res.Steps = append(res.Steps, stepResult(s, StatusSkipped))
			rs := rep.BeginStep(s.Module, s.Action, s.Target, s.Detail+" (not executed by this release)", s.Origin.String())
			rep.EndStep(rs, nil, true)
			fmt.Fprintf(console, "[SKIP] %s (not executed by this release)\n", s)
			continue
		}
		// A step of another batch (or none) may read what the open batch
		// holds in memory (the account databases): write it out first.
		if err := env.EndBatches(s.Batch); err != nil {
			env.ReleaseBatches()
			return abort(fmt.Errorf("writing %w", err))
		}
		sr, err := applyStep(ctx, env, rep, console, s)
		if nf, ok := err.(*modules.NonFatalError); ok {
			sr.Status, sr.Error = StatusTolerated, nf.Error()
			res.Steps = append(res.Steps, sr)
			warn(res, console, fmt.Sprintf("%s: %s (marked non-fatal: the run goes on)", s, nf))
			continue
		}
		if err != nil {
			err = interrupted(ctx, err)
			sr.Status, sr.Error = StatusFailed, err.Error()
			res.Steps = append(res.Steps, sr)
			fmt.Fprintf(console, "[FAILED] %s: %s\n", s, modules.PrintableLines(err.Error()))
			res.FailedAt = s.Origin.String()
			if !strings.Contains(err.Error(), s.Origin.String()) {
				err = fmt.Errorf("%s: %w", s.Origin, err)
			}
			env.ReleaseBatches()
			return abort(fmt.Errorf("%s %s: %w", s.Module, s.Target, err))
		}
		res.Steps = append(res.Steps, sr)
		fmt.Fprintf(console, "[ OK ] %s\n", s)
	}
	if err := env.EndBatches(""); err != nil {
		env.ReleaseBatches()
		return abort(fmt.Errorf("writing %w", err))
	}
	if err := firstBootChores(root, rep, console); err != nil {
		return abort(err)
	}
	if res.InstanceID != "" {
		if err := root.WriteFile(instanceIDPath, []byte(res.InstanceID+"\n"), 0o644, rootfs.RootOwner); err != nil {
			return abort(fmt.Errorf("recording the instance-id: %w", err))
		}
	}
	res.phase("steps")
	// Labels last, with everything mounted as the booted system sees it.
	labels, err := labelRun(root, rec, needsChroot(cfg), applyStart, rep, console)
	if err != nil {
		return abort(err)
	}
	if err := labelSnapperFiles(labels, txn); err != nil {
		return abort(err)
	}
	// The target's copy of the report is written inside the transaction, so
	// it exists exactly when the provisioned root does.
	res.phase("labels")
	rep.Finish(report.ResultDone, nil, "")
	if err := rep.WriteTarget(root); err != nil {
		return abort(fmt.Errorf("writing the report into the target: %w", err))
	}
	// The report's copy, written after the labels, gets its own.
	if err := labelMore(labels, root, rec); err != nil {
		return abort(err)
	}
	res.phase("report")
	// Unmount only now: the instance-id and the report belong in the
	// target's own /var, which the chroot has mounted; the commit then
	// syncs and switches a tree no longer in use.
	if err := closeChroot(); err != nil {
		return abort(fmt.Errorf("cleaning up the chroot: %w", err))
	}
	res.phase("unmount")
	boot, err := prepareBootEntries(txn)
	if err != nil {
		return abort(fmt.Errorf("reading the target's boot loader setup: %w", err))
	}
	// Make what was applied beside the root durable before the commit;
	// the commit flushes the root's own filesystem before its switch.
	if err := syncWritten(txn.Root(), rec.Paths()); err != nil {
		return abort(fmt.Errorf("syncing the applied changes: %w", err))
	}
	res.phase("sync")
	if err := txn.Commit(ctx); err != nil {
		return abort(fmt.Errorf("commit: %w", err))
	}
	committed = true
	res.phase("commit")
	fmt.Fprintf(console, "[ OK ] transaction: committed\n")
	if boot != nil {
		// After the commit point, as sdbootutil acts on
		// set-default-snapshot-post: the new root is the system now; an
		// ESP that cannot be updated leaves the next boot on the old
		// entry, which the report says.
		rs := rep.BeginStep("boot", "add entries", boot.loader.ESPMount, bootentry.Describe(boot.loader), "target boot loader")
		_, berr := boot.apply(console)
		rep.EndStep(rs, berr, false)
		if berr != nil {
			warn(res, console, fmt.Sprintf("boot entries: %v: the next boot starts the old snapshot's entry (the btrfs default is the new one)", berr))
		}
	}
	// growpart, resize_rootfs, power_state: outside the transaction.
	applyAfterCommit(ctx, res, cfg, opts, console)
	res.Status = StatusDone
	return res
}

// interrupted adds to err, when the run's context is done, why it is:
// "terminated signal received" says more than the "context canceled" a
// program's runner returns.
func interrupted(ctx context.Context, err error) error {
	cause := context.Cause(ctx)
	if cause == nil || cause == ctx.Err() || strings.Contains(err.Error(), cause.Error()) {
		return err
	}
	return fmt.Errorf("%w (%v)", err, cause)
}

// reconfigSystemFlag makes openSUSE's jeos-firstboot take the console for
// its wizard on the next boot (ConditionPathExists=, OnFailure=poweroff);
// Combustion and Ignition remove it once a configuration was applied.
const reconfigSystemFlag = "/var/lib/YaST2/reconfig_system"

// firstBootChores does what openSUSE's first-boot tools do after a
// successful run, inside the transaction: the flag lives in the real /var,
// which the chroot has mounted (a snapshot of it, or journaled), so it is
// gone exactly when the run commits.
func firstBootChores(root *rootfs.Root, rep *report.Report, console io.Writer) error {
	if !root.Exists(reconfigSystemFlag) {
		return nil
	}
	rs := rep.BeginStep("system", "remove", reconfigSystemFlag, "the configuration replaces jeos-firstboot's wizard", "openSUSE first boot")
	err := root.Remove(reconfigSystemFlag)
	rep.EndStep(rs, err, false)
	if err != nil {
		return fmt.Errorf("removing %s: %w", reconfigSystemFlag, err)
	}
	fmt.Fprintf(console, "[ OK ] system: removed %s (jeos-firstboot's wizard is not needed)\n", reconfigSystemFlag)
	return nil
}

// needsChroot reports whether cfg runs programs in the target.
// needsChroot reports whether the run executes programs in the target:
// scripts, package managers, the trust store's update tool (ca_certs) and
// random_seed's command. Only then does the chroot get /proc, /sys, /dev.
func needsChroot(cfg *config.Config) bool {
	return len(cfg.Scripts) > 0 || installsPackages(cfg) ||
		cfg.CACerts != nil ||
		(cfg.RandomSeed != nil && len(cfg.RandomSeed.Command) > 0)
}

func installsPackages(cfg *config.Config) bool {
	return len(cfg.Packages) > 0 ||
		(cfg.PackageUpdate != nil && cfg.PackageUpdate.Value) ||
		(cfg.PackageUpgrade != nil && cfg.PackageUpgrade.Value)
}

// needsNetwork reports whether cfg needs the network: a script asking for
// it (`# combustion: network`) or packages to fetch.
func needsNetwork(cfg *config.Config) bool {
	if installsPackages(cfg) {
		return true
	}
	for _, sc := range cfg.Scripts {
		if sc.NeedsNetwork {
			return true
		}
	}
	return false
}

// defaultUser reads system_info.default_user from the target's
// /etc/cloud/cloud.cfg and cloud.cfg.d/*.cfg (read confined to the root: an
// image's symlink must not pull in the workstation's files).
func defaultUser(root string) *config.User {
	if root == "" {
		return nil
	}
	r, err := rootfs.New(root)
	if err != nil {
		return nil
	}
	files := map[string][]byte{}
	if b, err := r.ReadFile("/etc/cloud/cloud.cfg"); err == nil {
		files["/etc/cloud/cloud.cfg"] = b
	}
	if d, err := r.ResolveFollow("/etc/cloud/cloud.cfg.d"); err == nil {
		extra, _ := filepath.Glob(filepath.Join(d, "*.cfg"))
		for _, p := range extra {
			name := "/etc/cloud/cloud.cfg.d/" + filepath.Base(p)
			if b, err := r.ReadFile(name); err == nil {
				files[name] = b
			}
		}
	}
	if len(files) == 0 {
		return nil
	}
	u, err := cloudinit.DefaultUserFromCloudCfg(files)
	if err != nil {
		return nil
	}
	return u
}

// directTxn writes straight into the root: the journal-less transaction used
// when no backend is configured (unit tests).
func directTxn(_ context.Context, root string) (Txn, error) { return direct(root), nil }

type direct string

func (d direct) Root() string                 { return string(d) }
func (d direct) Journal() rootfs.Journal      { return nil }
func (d direct) Commit(context.Context) error { return rootfs.SyncFS(string(d)) }
func (d direct) Abort(context.Context) error  { return nil }

// baseTree is the smallest system a plan without --root is made against: the
// accounts every distribution has, so chpasswd for root and `users` work.
var baseTree = map[string]string{
	"etc/passwd":  "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
	"etc/group":   "root:x:0:\nshadow:x:42:\nwheel:x:10:\nusers:x:100:\nnogroup:x:65534:\n",
	"etc/shadow":  "root:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n",
	"etc/gshadow": "root:*::\nshadow:*::\nwheel:*::\nusers:*::\nnogroup:*::\n",
	// A MicroOS-like system: NetworkManager and zypper, so network and
	// package steps plan as they would on the default target.
	"usr/lib/systemd/system/NetworkManager.service": "[Unit]\nDescription=Network Manager\n",
	"usr/bin/zypper": "",
	"etc/login.defs": "UID_MIN 1000\nUID_MAX 60000\nSYS_UID_MIN 100\nSYS_UID_MAX 999\n" +
		"GID_MIN 1000\nGID_MAX 60000\nSYS_GID_MIN 100\nSYS_GID_MAX 999\n" +
		"USERGROUPS_ENAB yes\nUMASK 022\nENCRYPT_METHOD SHA512\n",
}

// A timezone the workstation knows gets a stand-in zone file in the base
// tree, so the plan checks the name against the host's zone database.
func writeBaseTree(dir, timezone string) error {
	files := maps.Clone(baseTree)
	if timezone != "" && config.CheckTimezoneName(timezone) == nil {
		if _, err := time.LoadLocation(timezone); err == nil {
			files["usr/share/zoneinfo/"+timezone] = "TZif2"
		}
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		switch {
		case strings.HasPrefix(name, "usr/bin/"):
			mode = 0o755
		case name == "etc/shadow" || name == "etc/gshadow":
			mode = 0o640
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			return err
		}
	}
	return os.MkdirAll(filepath.Join(dir, "root"), 0o700)
}

// finishReport closes the report by the run's outcome, unless apply already
// did (a successful run finishes it before the commit).
func finishReport(res *Result) {
	rep := res.Report
	if !rep.Running() {
		if res.Err != nil {
			rep.Finish(report.ResultRolledBack, res.Err, res.FailedAt)
		}
		return
	}
	switch {
	case res.Err != nil && len(res.Steps) > 0:
		rep.Finish(report.ResultRolledBack, res.Err, res.FailedAt)
	case res.Err != nil:
		rep.Finish(report.ResultFailed, res.Err, res.FailedAt)
	case res.Status == StatusNothing && strings.HasPrefix(res.Reason, "disabled"):
		rep.Disabled(res.Reason)
	case res.Status == StatusNothing:
		rep.Reason = res.Reason
		rep.Finish(report.ResultNothing, nil, "")
	default:
		rep.Finish(report.ResultDone, nil, "")
	}
}

// plainPasswords are the configuration's plain-text passwords: of users,
// and of chpasswd's list.
func plainPasswords(cfg *config.Config) []string {
	var out []string
	for _, u := range cfg.Users {
		if u.Password.Kind == config.PasswordPlain {
			out = append(out, u.Password.Value)
		}
	}
	for _, p := range cfg.Passwords {
		if p.Password.Kind == config.PasswordPlain {
			out = append(out, p.Password.Value)
		}
	}
	return out
}

// beginPasswordHashes starts hashing the plain-text passwords now, on
// other cores, with the method the target's login.defs and PAM name: the
// transaction's start, the plan and the steps before the password's then
// overlap the milliseconds each hash takes. The step takes the hash when
// the method it reads from the transaction's root is the same
// (accounts.HashPassword); otherwise it hashes again.
func beginPasswordHashes(cfg *config.Config, dir string) {
	pws := plainPasswords(cfg)
	if len(pws) == 0 || dir == "" {
		return
	}
	method := sync.OnceValues(func() (accounts.HashMethod, error) {
		root, err := rootfs.New(dir)
		if err != nil {
			return accounts.HashMethod{}, err
		}
		defs, err := accounts.ReadLoginDefs(root)
		if err != nil {
			return accounts.HashMethod{}, err
		}
		return accounts.ReadHashMethod(root, defs)
	})
	for _, pw := range pws {
		accounts.BeginHash(pw, method)
	}
}

// secrets lists the plain-text passwords and HTTP header values of the
// config, so the report can mask them wherever they might surface.
func secrets(cfg *config.Config) []string {
	out := plainPasswords(cfg)
	// Ignition's httpHeaders carry tokens for the URLs they go to.
	for _, f := range cfg.Files {
		for _, h := range f.Headers {
			out = append(out, h.Value)
		}
	}
	return out
}

// syncWritten flushes every filesystem the run wrote besides the one
// holding root, which the transaction's Commit flushes (Txn): a /var of
// its own, the snapshots of /var and /home mounted below root; one syncfs
// each.
func syncWritten(root string, paths []string) error {
	seen := map[uint64]bool{}
	var st unix.Stat_t
	if unix.Stat(root, &st) == nil {
		seen[st.Dev] = true
	}
	for _, p := range paths {
		var st unix.Stat_t
		// Most paths lie on a filesystem already flushed: one stat.
		if unix.Stat(p, &st) == nil && seen[st.Dev] {
			continue
		}
		dir := nearestDir(p)
		if unix.Stat(dir, &st) != nil || seen[st.Dev] {
			continue
		}
		seen[st.Dev] = true
		if err := rootfs.SyncFS(dir); err != nil {
			return err
		}
	}
	return nil
}

// nearestDir is p when it is a directory, else its closest existing
// ancestor directory (a removed file's parent).
func nearestDir(p string) string {
	for {
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			return p
		}
		parent := filepath.Dir(p)
		if parent == p {
			return p
		}
		p = parent
	}
}

// onlyWithRoot ends every warning about what a plan without --root had to
// assume about the image.
const onlyWithRoot = "checked only with --root"

// assumeImageUnits adds to a base tree a stand-in for every unit the config
// enables but does not define (sshd.service, podman.socket...): the image
// has them, the base tree cannot. Each gets a warning saying so.
func assumeImageUnits(dir string, cfg *config.Config) ([]string, error) {
	defined := map[string]bool{}
	for _, u := range cfg.Units {
		if u.Contents != nil {
			defined[u.Name] = true
		}
	}
	for _, f := range cfg.Files {
		defined[path.Base(f.Path)] = true // a unit written by storage.files or write_files
	}
	var warnings []string
	for _, u := range cfg.Units {
		if u.Enabled == nil || !*u.Enabled || u.Mask || defined[u.Name] {
			continue
		}
		file, ok := units.FileName(u.Name)
		if !ok {
			continue // the units module reports it
		}
		p := filepath.Join(dir, "usr/lib/systemd/system", file)
		if _, err := os.Stat(p); err == nil {
			continue
		}
		defined[u.Name] = true
		target := "multi-user.target"
		switch path.Ext(file) {
		case ".socket":
			target = "sockets.target"
		case ".timer":
			target = "timers.target"
		case ".path":
			target = "paths.target"
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		stub := "[Unit]\nDescription=stand-in for the image's " + file + "\n[Install]\nWantedBy=" + target + "\n"
		if err := os.WriteFile(p, []byte(stub), 0o644); err != nil {
			return nil, err
		}
		warnings = append(warnings, fmt.Sprintf("%s: unit %s is not defined by this config; assumed to exist in the image (%s)", u.Origin, u.Name, onlyWithRoot))
	}
	return warnings, nil
}

// assumeZone: a workstation without a zone database cannot tell a real
// zone from a typo; the base tree then gets a stand-in and a warning. A
// workstation with one checks the name against it (zone names are the
// same everywhere, a name it lacks is a typo).
func assumeZone(dir string, cfg *config.Config) string {
	tz := cfg.System.Timezone
	if tz.Value == "" || config.CheckTimezoneName(tz.Value) != nil {
		return ""
	}
	if _, err := os.Stat("/usr/share/zoneinfo/UTC"); err == nil {
		return ""
	}
	p := filepath.Join(dir, "usr/share/zoneinfo", tz.Value)
	if os.MkdirAll(filepath.Dir(p), 0o755) != nil || os.WriteFile(p, []byte("TZif2"), 0o644) != nil {
		return ""
	}
	return fmt.Sprintf("%s: timezone %s: this machine has no zone database to check it against (%s)", tz.Origin, tz.Value, onlyWithRoot)
}

// assumeImageUsers adds to a base tree the accounts a config only refers to
// (chpasswd for `debian`, keys for `opensuse`): they belong to the image the
// config is meant for, which a plan without --root does not have. Each gets
// a warning saying so; with --root the real tree decides.
func assumeImageUsers(dir string, cfg *config.Config) ([]string, error) {
	defined := map[string]bool{"root": true, "nobody": true}
	for _, u := range cfg.Users {
		defined[u.Name] = true
	}
	var warnings, lines []string
	uid := 1900
	refer := func(name string, o config.Origin) {
		if defined[name] || !config.ValidName(name) {
			return
		}
		defined[name] = true
		warnings = append(warnings, fmt.Sprintf("%s: user %q is not created by this config; assumed to exist in the image (%s)", o, name, onlyWithRoot))
		lines = append(lines, fmt.Sprintf("%s:x:%d:%d::/home/%s:/bin/sh", name, uid, uid, name))
		uid++
	}
	for _, p := range cfg.Passwords {
		refer(p.User, p.Origin)
	}
	for _, k := range cfg.SSHKeys {
		refer(k.User, k.Origin)
	}
	if len(lines) == 0 {
		return nil, nil
	}
	for _, f := range []struct{ name, line string }{
		{"etc/passwd", "%[1]s"},
		{"etc/shadow", "%[2]s:!:19000:0:99999:7:::"},
		{"etc/group", "%[2]s:x:%[3]d:"},
		{"etc/gshadow", "%[2]s:!::"},
	} {
		fh, err := os.OpenFile(filepath.Join(dir, f.name), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			return nil, err
		}
		for i, l := range lines {
			name := l[:strings.IndexByte(l, ':')]
			fmt.Fprintf(fh, f.line+"\n", l, name, 1900+i)
		}
		if err := fh.Close(); err != nil {
			return nil, err
		}
	}
	return warnings, nil
}

// forgetting runs programs in the target and then drops what the Root
// memoized of its files (the account databases): a program may have
// changed any of them behind it.
type forgetting struct {
	modules.Executor
	root *rootfs.Root
}

func (f forgetting) Run(ctx context.Context, cmd modules.Command) (int, error) {
	defer f.root.Forget()
	return f.Executor.Run(ctx, cmd)
}

// SnapshotPath passes the chroot's through (scripts.SnapshotPather).
func (f forgetting) SnapshotPath() string {
	if sp, ok := f.Executor.(scripts.SnapshotPather); ok {
		return sp.SnapshotPath()
	}
	return ""
}

// plannedWrites are the paths a run writes that its plan names: each
// step's target when it is a path and what else it says it writes, the
// recorded instance-id and the report's directory in the target.
func plannedWrites(steps []modules.Step) []string {
	paths := []string{instanceIDPath, report.TargetDir}
	seen := map[string]bool{instanceIDPath: true, report.TargetDir: true}
	add := func(p string) {
		// Each users step names the same account databases.
		if !seen[p] {
			seen[p] = true
			paths = append(paths, p)
		}
	}
	for _, s := range steps {
		if s.Apply == nil {
			continue
		}
		if strings.HasPrefix(s.Target, "/") {
			add(s.Target)
		}
		for _, w := range s.Writes {
			add(w)
		}
	}
	return paths
}

// applyStep applies s with env: what its programs print goes to the
// console as it comes and its tail into the report, whose entry for the
// step it opens and closes. The result is the step's, timed, marked done;
// the caller judges the error.
func applyStep(ctx context.Context, env *modules.Env, rep *report.Report, console io.Writer, s modules.Step) (StepResult, error) {
	rs := rep.BeginStep(s.Module, s.Action, s.Target, s.Detail, s.Origin.String())
	start := time.Now()
	var tail report.Tail
	env.Console = io.MultiWriter(console, &tail)
	err := s.Apply(ctx, env)
	env.Console = console
	rep.SetOutput(rs, tail.Lines())
	rep.EndStep(rs, err, false)
	sr := stepResult(s, StatusOK)
	sr.Duration = time.Since(start)
	return sr, err
}

// warn records a warning of the run: in the result, the report and on
// the console.
func warn(res *Result, console io.Writer, w string) {
	res.Warnings = append(res.Warnings, w)
	res.Report.AddWarning(w)
	fmt.Fprintf(console, "[WARN] %s\n", modules.PrintableLines(w))
}
