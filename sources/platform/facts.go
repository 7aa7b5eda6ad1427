// Package platform reads the local facts sources are chosen by (kernel
// command line, DMI, hypervisor, fw_cfg) and decides, without any network
// traffic and without waiting, which network sources are worth trying. It
// also parses the provision.* kernel command-line options.
package platform

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/provision-dev/provision/sources"
)

// DMIKeys are the /sys/class/dmi/id files Read collects.
var DMIKeys = []string{
	"sys_vendor", "product_name", "product_uuid", "product_serial", "product_version",
	"chassis_asset_tag", "chassis_vendor", "chassis_serial", "chassis_version",
	"board_vendor", "board_name", "board_serial", "board_version", "board_asset_tag",
	"bios_vendor", "bios_version", "bios_date",
}

const (
	maxCmdline = 64 << 10 // far above any kernel's COMMAND_LINE_SIZE
	maxDMI     = 4 << 10
)

// Read collects the facts under prefix ("" on a real system). Missing files
// are normal (no DMI on most ARM boards, no /sys/hypervisor outside Xen);
// unreadable ones (product_uuid is root-only) are skipped the same way. Only
// an unreadable /proc/cmdline that exists is an error.
func Read(prefix string) (*sources.Facts, error) {
	f := &sources.Facts{Prefix: prefix, DMI: map[string]string{}}
	p := func(s string) string { return filepath.Join(prefix, s) }
	cmd, err := readSmall(p("/proc/cmdline"), maxCmdline)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	f.Cmdline = SplitCmdline(cmd)
	for _, k := range DMIKeys {
		if v, err := readSmall(p("/sys/class/dmi/id/"+k), maxDMI); err == nil {
			if v = strings.TrimSpace(v); v != "" {
				f.DMI[k] = v
			}
		}
	}
	f.HypervisorType, _ = readSmall(p("/sys/hypervisor/type"), maxDMI)
	f.HypervisorType = strings.TrimSpace(f.HypervisorType)
	f.HypervisorUUID, _ = readSmall(p("/sys/hypervisor/uuid"), maxDMI)
	f.HypervisorUUID = strings.TrimSpace(f.HypervisorUUID)
	if _, err := os.Stat(p("/sys/firmware/qemu_fw_cfg")); err == nil {
		f.FwCfg = true
	}
	return f, nil
}

// readSmall reads at most limit bytes: sysfs and procfs files are small, and
// a fake tree must not make us read a huge file.
func readSmall(path string, limit int64) (string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, limit))
	return string(b), err
}

// SplitCmdline splits a kernel command line into words the way the kernel's
// next_arg() does: whitespace outside double quotes separates words; a
// leading quote of the word and a quote opening the value (after the first
// '=') are removed together with the word's closing quote. Quotes elsewhere
// stay. Empty words are dropped.
func SplitCmdline(s string) []string {
	var words []string
	for {
		s = strings.TrimLeft(s, " \t\n\v\f\r")
		if s == "" {
			return words
		}
		quoted := false
		if s[0] == '"' {
			s, quoted = s[1:], true
		}
		inQuote := quoted
		i := 0
		for ; i < len(s); i++ {
			c := s[i]
			if !inQuote && isSpace(c) {
				break
			}
			if c == '"' {
				inQuote = !inQuote
			}
		}
		word := s[:i]
		s = s[i:]
		stripEnd := quoted
		if eq := strings.IndexByte(word, '='); eq > 0 && eq+1 < len(word) && word[eq+1] == '"' {
			word = word[:eq+1] + word[eq+2:]
			stripEnd = true
		}
		if stripEnd && strings.HasSuffix(word, `"`) {
			word = word[:len(word)-1]
		}
		if word != "" {
			words = append(words, word)
		}
	}
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}
