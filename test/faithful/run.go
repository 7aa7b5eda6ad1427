package faithful

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// run runs a tool and returns its combined output; the error names the
// command line and carries the output.
func run(name string, args ...string) (string, error) {
	return runEnv(nil, name, args...)
}

// runEnv is run with extra environment variables.
func runEnv(env []string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out.String())
	}
	return out.String(), nil
}

// mtoolsEnv stops mtools from refusing images whose geometry it dislikes.
var mtoolsEnv = []string{"MTOOLS_SKIP_CHECK=1"}

// mtools runs one of the mtools commands.
func mtools(name string, args ...string) (string, error) {
	return runEnv(mtoolsEnv, name, args...)
}

// runStdin is run with input on stdin.
func runStdin(input, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(input)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s <<EOF\n%sEOF\n: %w\n%s", name, strings.Join(args, " "), input, err, out.String())
	}
	return out.String(), nil
}

// removeTemp removes a scratch directory unless something is still
// mounted below it (RemoveAll would then delete the mounted filesystem's
// files).
func removeTemp(dir string) error {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 1 && (f[1] == dir || strings.HasPrefix(f[1], dir+"/")) {
			return fmt.Errorf("faithful: %s is still mounted; left %s in place", f[1], dir)
		}
	}
	return os.RemoveAll(dir)
}
