package faithful

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// snapperConfig is /etc/snapper/configs/root as the image build leaves it
// (microos-reality.md §2.2): snapper's documented defaults with the
// MicroOS edits, QGROUP set only where quotas are on.
func snapperConfig(quotas bool) string {
	qgroup := ""
	if quotas {
		qgroup = "1/0"
	}
	keys := [][2]string{
		{"SUBVOLUME", "/"},
		{"FSTYPE", "btrfs"},
		{"QGROUP", qgroup},
		{"SPACE_LIMIT", "0.5"},
		{"FREE_LIMIT", "0.2"},
		{"ALLOW_USERS", ""},
		{"ALLOW_GROUPS", ""},
		{"SYNC_ACL", "no"},
		{"BACKGROUND_COMPARISON", "yes"},
		{"NUMBER_CLEANUP", "yes"},
		{"NUMBER_MIN_AGE", "3600"},
		{"NUMBER_LIMIT", "2-10"},
		{"NUMBER_LIMIT_IMPORTANT", "4-10"},
		{"TIMELINE_CREATE", "no"},
		{"TIMELINE_CLEANUP", "yes"},
		{"TIMELINE_MIN_AGE", "3600"},
		{"TIMELINE_LIMIT_HOURLY", "10"},
		{"TIMELINE_LIMIT_DAILY", "10"},
		{"TIMELINE_LIMIT_WEEKLY", "0"},
		{"TIMELINE_LIMIT_MONTHLY", "10"},
		{"TIMELINE_LIMIT_YEARLY", "10"},
		{"EMPTY_PRE_POST_CLEANUP", "yes"},
		{"EMPTY_PRE_POST_MIN_AGE", "3600"},
	}
	var b strings.Builder
	b.WriteString("# snapper config of the root filesystem (faithful test root)\n")
	for _, kv := range keys {
		fmt.Fprintf(&b, "%s=%q\n", kv[0], kv[1])
	}
	return b.String()
}

// infoXML is snapshot 1's info.xml (microos-reality.md §2.3).
func infoXML(date time.Time) string {
	return "<?xml version=\"1.0\"?>\n<snapshot>\n  <type>single</type>\n  <num>1</num>\n" +
		"  <date>" + date.UTC().Format("2006-01-02 15:04:05") + "</date>\n" +
		"  <description>first root filesystem</description>\n</snapshot>\n"
}

// grubenvBlock is an empty GRUB environment block: exactly 1024 bytes.
func grubenvBlock() []byte {
	const head = "# GRUB Environment Block\n"
	return []byte(head + strings.Repeat("#", 1024-len(head)))
}

// grubCfgPlaceholder stands in for grub2-mkconfig's output inside the
// snapshot; nothing here boots through it.
const grubCfgPlaceholder = "# faithful test root: placeholder for grub2-mkconfig output.\n" +
	"# Kernel and initrd are booted by the test harness with the default subvolume as root.\n"

// setKeys rewrites KEY=... lines of a shell-style config file (creating
// it with mode when missing, keeping its mode otherwise) and appends the
// keys it lacks. Values are written double-quoted.
func setKeys(path string, mode os.FileMode, kv ...[2]string) error {
	return setLines(path, mode, "%s=%q", kv)
}

// setKeysBare is setKeys with unquoted values (/etc/selinux/config).
func setKeysBare(path string, kv ...[2]string) error {
	return setLines(path, 0o644, "%s=%s", kv)
}

func setLines(path string, mode os.FileMode, format string, kv [][2]string) error {
	old, err := os.ReadFile(path)
	switch {
	case err == nil:
		if st, serr := os.Stat(path); serr == nil {
			mode = st.Mode().Perm()
		}
	case !os.IsNotExist(err):
		return err
	}
	var lines []string
	if len(old) > 0 {
		lines = strings.Split(strings.TrimSuffix(string(old), "\n"), "\n")
	}
	for _, p := range kv {
		line := fmt.Sprintf(format, p[0], p[1])
		done := false
		for i, l := range lines {
			if strings.HasPrefix(strings.TrimSpace(l), p[0]+"=") {
				lines[i], done = line, true
			}
		}
		if !done {
			lines = append(lines, line)
		}
	}
	return writeFile(path, []byte(strings.Join(lines, "\n")+"\n"), mode)
}

// writeFile writes data with exactly mode (no umask), creating parents.
func writeFile(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(path, data, mode); err != nil {
		return err
	}
	return os.Chmod(path, mode)
}

// osRelease reads os-release of the tree at root (/etc first, then
// /usr/lib), resolving symlinks inside root.
func osRelease(root string) map[string]string {
	m := map[string]string{}
	for _, p := range []string{"etc/os-release", "usr/lib/os-release"} {
		b, err := os.ReadFile(inRoot(root, p))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
			if !ok || strings.HasPrefix(k, "#") {
				continue
			}
			m[k] = strings.Trim(v, `"'`)
		}
		break
	}
	return m
}

// inRoot is p inside the tree at root with every symlink resolved as if
// root were "/"; a path that does not exist resolves as far as it does.
func inRoot(root, p string) string {
	cur := "/"
	rest := strings.Split(strings.Trim(p, "/"), "/")
	for hops := 0; len(rest) > 0 && hops < 40; {
		name := rest[0]
		rest = rest[1:]
		if name == "" || name == "." {
			continue
		}
		next := filepath.Join(cur, name)
		target, err := os.Readlink(filepath.Join(root, next))
		if err != nil {
			cur = next
			continue
		}
		hops++
		if !filepath.IsAbs(target) {
			target = filepath.Join(cur, target)
		}
		rest = append(strings.Split(strings.Trim(target, "/"), "/"), rest...)
		cur = "/"
	}
	return filepath.Join(root, cur)
}
