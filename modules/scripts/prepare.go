package scripts

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/provision-dev/provision/modules/scripts/process"
	"github.com/provision-dev/provision/provision/config"
)

// RunPrepare is Combustion's prepare stage: in the initrd, before the network
// is brought up and without a chroot, the script runs once as
// `./script --prepare` with cwd = workdir, a copy of the config directory
// that RunPrepare writes (script.Files and the script). Output lines go to out
// prefixed "[combustion --prepare] ". A non-zero exit is an error naming the
// script's origin and the status.
func RunPrepare(ctx context.Context, script config.Script, workdir string, out io.Writer) error {
	what := "combustion script --prepare"
	files, err := combustionFiles(script)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(workdir, 0o700); err != nil {
		return fmt.Errorf("%s: %s: %w", script.Origin, what, err)
	}
	if err := writeHostFiles(workdir, files); err != nil {
		return fmt.Errorf("%s: %s: %w", script.Origin, what, err)
	}
	argv := combustionArgv(script.Body, "--prepare")
	prog := filepath.Join(workdir, "script")
	if argv[0] == "/bin/sh" {
		prog = "/bin/sh"
	}
	pathEnv := os.Getenv("PATH")
	if pathEnv == "" {
		pathEnv = DefaultPath
	}
	pw := NewPrefixWriter(out, "[combustion --prepare] ")
	defer pw.Flush()
	code, err := process.Run(ctx, process.Spec{
		Path:   prog,
		Argv:   argv,
		Dir:    workdir,
		Env:    []string{"PATH=" + pathEnv, "LANG=C", "PROVISION=1"},
		Output: pw,
	})
	if err != nil {
		return fmt.Errorf("%s: %s: %w", script.Origin, what, err)
	}
	if code != 0 {
		return &ExitError{Origin: script.Origin, What: what, Code: code}
	}
	return nil
}

// DefaultPath is the PATH programs get when none is inherited.
const DefaultPath = "/usr/sbin:/usr/bin:/sbin:/bin"

// writeHostFiles writes files below dir through an os.Root, so no name can
// leave dir even via a symlink already there.
func writeHostFiles(dir string, files map[string][]byte) error {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer r.Close()
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if d := filepath.Dir(n); d != "." {
			if err := r.MkdirAll(d, 0o700); err != nil {
				return err
			}
		}
		if err := r.WriteFile(n, files[n], 0o755); err != nil {
			return err
		}
		// WriteFile keeps the mode of an existing file; make sure the
		// script is executable.
		if err := r.Chmod(n, 0o755); err != nil {
			return err
		}
	}
	return nil
}
