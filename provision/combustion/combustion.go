// Package combustion turns a Combustion config directory (a `script` plus any
// sibling files) into a script step of the model, reading the magic comments
// exactly as Combustion does.
package combustion

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"sync"

	"github.com/provision-dev/provision/provision/config"
)

// File is one file of the config directory, by path relative to it.
type File struct {
	Origin config.Origin
	Path   string
	Data   []byte
}

// Combustion greps the script for `^# combustion:` lines: the marker must
// start at column 0 with exactly one space after '#', and the flags are
// matched as whole words anywhere after the colon.
var (
	magicLine   = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^# combustion:(.*)$`) })
	wordPrepare = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`\bprepare\b`) })
	wordNetwork = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`\bnetwork\b`) })
)

// Flags are the magic-comment requests of a script.
type Flags struct {
	Network bool // bring the initrd network up before the script runs
	Prepare bool // also run once with --prepare in the initrd
}

// ParseFlags reads the magic comments of a script.
func ParseFlags(script []byte) Flags {
	var f Flags
	sc := bufio.NewScanner(bytes.NewReader(script))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		m := magicLine().FindSubmatch(sc.Bytes())
		if m == nil {
			continue
		}
		if wordPrepare().Match(m[1]) {
			f.Prepare = true
		}
		if wordNetwork().Match(m[1]) {
			f.Network = true
		}
	}
	return f
}

// MaxFiles is the most files one config directory may hold, the script
// included: as many as a medium's walk reads (a real one has a handful).
const MaxFiles = 4096

// ErrNoScript means the directory has no `script`.
var ErrNoScript = errors.New("combustion config has no script")

// Parse builds the model from the files of one config directory. The script
// is "script"; every other file travels with it and is the script's cwd.
func Parse(files []File) (*config.Config, error) {
	if len(files) > MaxFiles {
		return nil, fmt.Errorf("%s: combustion config has %d files, more than the limit of %d", files[0].Origin.Source, len(files), MaxFiles)
	}
	var script *File
	siblings := map[string][]byte{}
	for i := range files {
		f := &files[i]
		if f.Path == "script" {
			script = f
			continue
		}
		siblings[f.Path] = f.Data
	}
	if script == nil {
		src := ""
		if len(files) > 0 {
			src = files[0].Origin.Source + ": "
		}
		return nil, fmt.Errorf("%s%w", src, ErrNoScript)
	}
	if len(bytes.TrimSpace(script.Data)) == 0 {
		return nil, fmt.Errorf("%s: combustion script is empty", script.Origin)
	}
	if bytes.IndexByte(script.Data, 0) >= 0 && !bytes.HasPrefix(script.Data, []byte("\x7fELF")) {
		return nil, fmt.Errorf("%s: combustion script contains NUL bytes and is not an ELF program", script.Origin)
	}
	flags := ParseFlags(script.Data)
	names := make([]string, 0, len(siblings))
	for n := range siblings {
		names = append(names, n)
	}
	sort.Strings(names)
	c := &config.Config{}
	c.Scripts = append(c.Scripts, config.Script{
		Origin:       script.Origin,
		Kind:         config.ScriptCombustion,
		Name:         "script",
		Body:         script.Data,
		NeedsNetwork: flags.Network,
		Prepare:      flags.Prepare,
		Files:        siblings,
	})
	return c, nil
}
