package bootentry

import (
	"fmt"
	"strings"
)

// LoaderConf is systemd-boot's loader/loader.conf: "key value" lines such as
// "default", "timeout", "editor". Every line, comment and unknown key is
// kept; unchanged lines are written back byte for byte.
type LoaderConf struct {
	lines []line
}

// ParseLoaderConf parses loader.conf. name is used in errors.
func ParseLoaderConf(name string, data []byte) (*LoaderConf, error) {
	lines, err := parseLines(name, data)
	if err != nil {
		return nil, err
	}
	return &LoaderConf{lines: lines}, nil
}

// Bytes renders the file.
func (c *LoaderConf) Bytes() []byte { return writeLines(c.lines) }

// Fields lists the key/value lines in order.
func (c *LoaderConf) Fields() []Field { return fields(c.lines) }

// Default is the "default" entry pattern ("" when unset); with several
// lines, the last one, which is what systemd-boot uses.
func (c *LoaderConf) Default() string {
	v, _ := get(c.lines, "default")
	return v
}

// Timeout is the "timeout" value ("" when unset).
func (c *LoaderConf) Timeout() string {
	v, _ := get(c.lines, "timeout")
	return v
}

// SetDefault makes id the default: the first "default" line is rewritten
// ("default <id>"), further ones dropped, or the line is appended.
func (c *LoaderConf) SetDefault(id string) error {
	if id == "" || strings.ContainsAny(id, " \t") {
		return fmt.Errorf("default entry %q: empty or contains blanks", id)
	}
	lines, err := set(c.lines, "default", id, spaceFormat)
	if err != nil {
		return err
	}
	c.lines = lines
	return nil
}

// RemoveDefault drops every "default" line.
func (c *LoaderConf) RemoveDefault() { c.lines = remove(c.lines, "default") }

// grubenvSize is the size of a GRUB environment block file.
const grubenvSize = 1024

const grubenvHeader = "# GRUB Environment Block\n"

// grubenvGet returns the value of key in a GRUB environment block.
func grubenvGet(data []byte, key string) string {
	v := ""
	for _, ln := range strings.Split(string(data), "\n") {
		if ln == "" || ln[0] == '#' {
			continue
		}
		if val, ok := strings.CutPrefix(ln, key+"="); ok {
			v = val
		}
	}
	return v
}

// grubenvSet returns the block with key set to value (value "" removes it):
// header, the other assignments in their order, then key=value, padded with
// '#' to 1024 bytes, the way sdbootutil rewrites grubenv.
func grubenvSet(name string, data []byte, key, value string) ([]byte, error) {
	if strings.ContainsAny(key+value, "\n\x00") || key == "" || strings.Contains(key, "=") {
		return nil, fmt.Errorf("%s: cannot store %s=%q", name, key, value)
	}
	var b strings.Builder
	b.WriteString(grubenvHeader)
	for _, ln := range strings.Split(string(data), "\n") {
		if ln == "" || ln[0] == '#' || strings.HasPrefix(ln, key+"=") {
			continue
		}
		b.WriteString(ln)
		b.WriteByte('\n')
	}
	if value != "" {
		b.WriteString(key + "=" + value + "\n")
	}
	if b.Len() > grubenvSize {
		return nil, fmt.Errorf("%s: environment block would exceed %d bytes", name, grubenvSize)
	}
	b.WriteString(strings.Repeat("#", grubenvSize-b.Len()))
	return []byte(b.String()), nil
}
