package main

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

// The plan's header names each source, its documents and the instance-id
// with where it came from, for every kind of seed.
func TestDryRunHeader(t *testing.T) {
	nocloud := t.TempDir()
	writeFile(t, nocloud, "meta-data", "instance-id: iid-nocloud-7\n")
	writeFile(t, nocloud, "user-data", "#cloud-config\nhostname: n1\n")

	configdrive := t.TempDir()
	writeFile(t, configdrive, "openstack/latest/meta_data.json", `{"uuid": "5d2f3a1c-0000-4000-8000-000000000001", "hostname": "cd1"}`)
	writeFile(t, configdrive, "openstack/latest/user_data", "#cloud-config\ntimezone: UTC\n")

	combustion := t.TempDir()
	writeFile(t, combustion, "combustion/script", "#!/bin/sh\n# combustion: none\necho hi\n")

	ign := writeFile(t, t.TempDir(), "config.ign", `{"ignition":{"version":"3.4.0"}}`)

	for _, c := range []struct {
		name, source string
		want         []*regexp.Regexp
	}{
		{"nocloud", nocloud, []*regexp.Regexp{
			regexp.MustCompile(`(?m)^# source dir:` + regexp.QuoteMeta(nocloud) + `: 2 document\(s\)$`),
			regexp.MustCompile(`(?m)^#   user-data: user-data, 27 bytes$`),
			regexp.MustCompile(`(?m)^# instance-id: iid-nocloud-7 \(from dir:` + regexp.QuoteMeta(nocloud) + `:meta-data:1:14\)$`),
		}},
		{"configdrive", configdrive, []*regexp.Regexp{
			regexp.MustCompile(`(?m)^# instance-id: 5d2f3a1c-0000-4000-8000-000000000001 \(from \S+meta_data\.json:\d+:\d+\)$`),
		}},
		{"combustion", combustion, []*regexp.Regexp{
			regexp.MustCompile(`(?m)^#   combustion/script: `),
			regexp.MustCompile(`(?m)^# instance-id: sha256:[0-9a-f]{32} \(from a digest of the documents`),
		}},
		{"ignition", ign, []*regexp.Regexp{
			regexp.MustCompile(`(?m)^# instance-id: sha256:[0-9a-f]{32} \(from a digest of the documents`),
		}},
	} {
		code, out, errs := runArgs("--dry-run", "--source", c.source)
		if code != exitOK {
			t.Errorf("%s: exit %d\n%s%s", c.name, code, out, errs)
			continue
		}
		for _, re := range c.want {
			if !re.MatchString(out) {
				t.Errorf("%s: header lacks %s:\n%s", c.name, re, out)
			}
		}
	}
}

// --diff shows every file change as a unified diff and every script whole,
// with the configuration's secrets masked, in text and in JSON.
func TestDryRunDiff(t *testing.T) {
	seed := t.TempDir()
	writeFile(t, seed, "meta-data", "instance-id: iid-diff\n")
	writeFile(t, seed, "user-data", `#cloud-config
hostname: diffhost
chpasswd:
  expire: false
  users:
    - {name: root, password: Sup3rSecret, type: text}
write_files:
  - path: /etc/motd
    content: "line one\nline two\n"
runcmd:
  - echo Sup3rSecret | tee /root/pw
`)
	code, out, errs := runArgs("--diff", "--source", seed)
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{
		"# diff:\n",
		"--- /dev/null\n+++ /etc/hostname\n@@ -0,0 +1 @@\n+diffhost\n",
		"+line one\n+line two\n",
		"--- /etc/shadow\n+++ /etc/shadow\n",
		"# script runcmd[0] (runcmd) [dir:" + seed + ":user-data:11:5]:\n| echo [REDACTED] | tee /root/pw\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("diff lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Sup3rSecret") || strings.Contains(errs, "Sup3rSecret") {
		t.Errorf("the password shows:\n%s%s", out, errs)
	}

	code, out, _ = runArgs("--dry-run", "--diff", "--json", "--source", seed)
	var doc struct {
		Kind, Diff string
	}
	if code != exitOK || json.Unmarshal([]byte(out), &doc) != nil || doc.Kind != "plan" || !strings.Contains(doc.Diff, "+diffhost") || strings.Contains(out, "Sup3rSecret") {
		t.Errorf("--json --diff: exit %d, kind %q, diff %q", code, doc.Kind, doc.Diff)
	}
}

// Against --root the plan is applied to an overlay: the diff shows the
// tree's own content, and the tree is left as it was.
func TestDryRunDiffRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("--diff against --root mounts an overlay: needs root")
	}
	root := t.TempDir()
	writeFile(t, root, "etc/hostname", "oldname\n")
	writeFile(t, root, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\n")
	writeFile(t, root, "etc/group", "root:x:0:\n")
	seed := t.TempDir()
	writeFile(t, seed, "meta-data", "instance-id: iid-root\n")
	writeFile(t, seed, "user-data", "#cloud-config\nhostname: newname\n")
	code, out, errs := runArgs("--diff", "--root", root, "--source", seed)
	if code != exitOK || !strings.Contains(out, "--- /etc/hostname\n+++ /etc/hostname\n@@ -1 +1 @@\n-oldname\n+newname\n") {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	if !strings.Contains(out, "# first boot: a boot would provision (machine-id missing") {
		t.Errorf("no first-boot verdict for --root:\n%s", out)
	}
	if b, _ := os.ReadFile(root + "/etc/hostname"); string(b) != "oldname\n" {
		t.Errorf("the tree changed: %q", b)
	}
	if m, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(m), "provision-diff-") {
		t.Errorf("the overlay is still mounted")
	}
}
