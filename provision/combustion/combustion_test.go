package combustion

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/provision-dev/provision/provision/config"
)

func TestParseFlags(t *testing.T) {
	cases := []struct {
		name   string
		script string
		want   Flags
	}{
		{"none", "#!/bin/sh\necho hi\n", Flags{}},
		{"network", "#!/bin/bash\n# combustion: network\n", Flags{Network: true}},
		{"both", "#!/bin/bash\n# combustion: prepare network\n", Flags{Network: true, Prepare: true}},
		{"comma separated", "# combustion: network,prepare\n", Flags{Network: true, Prepare: true}},
		{"no space after hash", "#combustion: network\n", Flags{}},
		{"indented", "  # combustion: network\n", Flags{}},
		{"not a whole word", "# combustion: networking\n", Flags{}},
		{"two spaces", "#  combustion: network\n", Flags{}},
		{"word later on line", "# combustion: please set up the network now\n", Flags{Network: true}},
		{"prepare only", "# combustion: prepare\n", Flags{Prepare: true}},
		{"after code", "echo x\n# combustion: network\n", Flags{Network: true}},
		{"CRLF", "# combustion: network\r\n", Flags{Network: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := ParseFlags([]byte(tc.script)); got != tc.want {
				t.Errorf("ParseFlags(%q) = %+v, want %+v", tc.script, got, tc.want)
			}
		})
	}
}

func TestParse(t *testing.T) {
	o := config.Origin{Source: "drive:/dev/sdb", File: "combustion/script"}
	c, err := Parse([]File{
		{Origin: o, Path: "script", Data: []byte("#!/bin/sh\n# combustion: network\ncp ssh.pub /root/\n")},
		{Origin: config.Origin{Source: "drive:/dev/sdb", File: "combustion/ssh.pub"}, Path: "ssh.pub", Data: []byte("ssh-ed25519 AAAA x\n")},
		{Path: "sub/dir/f", Data: []byte("f")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Scripts) != 1 {
		t.Fatalf("got %d scripts", len(c.Scripts))
	}
	s := c.Scripts[0]
	if s.Kind != config.ScriptCombustion || !s.NeedsNetwork || s.Prepare {
		t.Errorf("script = %+v", s)
	}
	if string(s.Files["ssh.pub"]) != "ssh-ed25519 AAAA x\n" || string(s.Files["sub/dir/f"]) != "f" {
		t.Errorf("siblings = %v", s.Files)
	}
	if s.Origin != o {
		t.Errorf("origin %v", s.Origin)
	}
}

func TestParseErrors(t *testing.T) {
	if _, err := Parse([]File{{Path: "other", Data: []byte("x")}}); !errors.Is(err, ErrNoScript) {
		t.Errorf("missing script: %v", err)
	}
	if _, err := Parse([]File{{Path: "script", Data: []byte("  \n")}}); err == nil {
		t.Error("empty script accepted")
	}
}

func FuzzParseFlags(f *testing.F) {
	f.Add([]byte("# combustion: network prepare\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ParseFlags(b)
		_, _ = Parse([]File{{Path: "script", Data: b}})
	})
}

// TestParseFilesLimit: a config directory with more files than MaxFiles is
// refused naming the limit and the source.
func TestParseFilesLimit(t *testing.T) {
	files := []File{{Origin: config.Origin{Source: "drive:/dev/sdb", File: "combustion/script"}, Path: "script", Data: []byte("#!/bin/sh\ntrue\n")}}
	for i := range MaxFiles {
		files = append(files, File{Origin: config.Origin{Source: "drive:/dev/sdb"}, Path: fmt.Sprintf("f%d", i)})
	}
	_, err := Parse(files)
	if err == nil || !strings.Contains(err.Error(), "drive:/dev/sdb: combustion config has 4097 files, more than the limit of 4096") {
		t.Fatalf("got %v", err)
	}
	if _, err := Parse(files[:MaxFiles]); err != nil {
		t.Fatal(err)
	}
}
