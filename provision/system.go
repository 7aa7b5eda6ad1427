package provision

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/provision-dev/provision/sources"
	"github.com/provision-dev/provision/sources/dir"
)

// DefaultReportPath is where the boot job leaves its report (SPEC §2).
const DefaultReportPath = "/run/provision/report.json"

// SystemConfig is what the command line says; SystemOptions turns it into
// engine Options wired to the real sources, transaction and chroot.
type SystemConfig struct {
	Root       string
	SourceSpec []string
	DryRun     bool
	Strict     bool
	Force      bool
	Console    io.Writer
	ProcPrefix string // "" on a real system; tests point it at a fake tree
}

// SystemOptions resolves --source specs and wires the real backends.
func SystemOptions(ctx context.Context, sc SystemConfig) (Options, error) {
	opts := Options{
		Root:    sc.Root,
		DryRun:  sc.DryRun,
		Strict:  sc.Strict,
		Force:   sc.Force,
		Console: sc.Console,
		Cmdline: readCmdline(sc.ProcPrefix),
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

// SourceFromSpec resolves one --source argument.
func SourceFromSpec(spec string) (sources.Source, error) {
	st, err := os.Stat(spec)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", spec, err)
	}
	abs := dir.Abs(spec)
	if st.IsDir() {
		return dir.New(abs), nil
	}
	return dir.NewFile(abs), nil
}

func readCmdline(prefix string) []string {
	b, err := os.ReadFile(filepath.Join(prefix, "/proc/cmdline"))
	if err != nil {
		return nil
	}
	return strings.Fields(string(b))
}

// WriteReport writes the run's report to path and into the target.
func WriteReport(res *Result, path, root string) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// PrintStatus prints the last run's report.
func PrintStatus(ctx context.Context, w io.Writer, path string, asJSON, wait bool, timeout time.Duration) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 1, err
	}
	if asJSON {
		w.Write(b)
		return 0, nil
	}
	var res Result
	if err := json.Unmarshal(b, &res); err != nil {
		return 1, fmt.Errorf("%s: %w", path, err)
	}
	fmt.Fprintf(w, "status: %s\n", res.Status)
	return 0, nil
}

// Init is `provision init`, the PID-1 helper of a minimal initramfs.
func Init(ctx context.Context, console io.Writer) error {
	return fmt.Errorf("not wired yet")
}
