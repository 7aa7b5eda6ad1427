package config

import (
	"io/fs"
	"strings"
	"testing"
)

func o(file string, line int) Origin {
	return Origin{Source: "dir:/seed", File: file, Line: line, Column: 3}
}

func mode(m fs.FileMode) *fs.FileMode { return &m }

func TestValidateConflictsNameBothOrigins(t *testing.T) {
	c := &Config{
		Files: []File{
			{Origin: o("user-data", 4), Path: "/etc/motd", Contents: []byte("a")},
			{Origin: o("vendor-data", 9), Path: "/etc/motd", Contents: []byte("b")},
		},
		Users: []User{
			{Origin: o("user-data", 2), Name: "alice", Shell: "/bin/bash"},
			{Origin: o("vendor-data", 3), Name: "alice", Shell: "/bin/zsh"},
		},
	}
	err := c.Validate()
	if err == nil {
		t.Fatal("conflicts accepted")
	}
	msg := err.Error()
	for _, want := range []string{"dir:/seed:vendor-data:9:3", "dir:/seed:user-data:4:3", "dir:/seed:vendor-data:3:3", "dir:/seed:user-data:2:3"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not name %s:\n%s", want, msg)
		}
	}
}

func TestValidateSameDefinitionTwiceIsFine(t *testing.T) {
	c := &Config{Files: []File{
		{Origin: o("user-data", 4), Path: "/etc/motd", Contents: []byte("a")},
		{Origin: o("vendor-data", 9), Path: "/etc/motd", Contents: []byte("a")},
		{Origin: o("vendor-data", 12), Path: "/etc/motd", Contents: []byte("more"), Append: true},
	}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestValidateRejects(t *testing.T) {
	cases := map[string]Config{
		"dotdot path":       {Files: []File{{Path: "/etc/../../x"}}},
		"relative path":     {Files: []File{{Path: "etc/x"}}},
		"mode out of range": {Files: []File{{Path: "/x", Mode: mode(0o17777)}}},
		"bad user":          {Users: []User{{Name: "Alice Smith"}}},
		"bad hostname":      {System: System{Hostname: Setting{Value: "bad_host!"}}},
		"timezone escape":   {System: System{Timezone: Setting{Value: "../../etc/passwd"}}},
		"unit name":         {Units: []Unit{{Name: "foo"}}},
		"package option":    {Packages: []Package{{Name: "--force"}}},
		"gecos colon":       {Users: []User{{Name: "bob", Gecos: "a:b"}}},
		"file vs dir":       {Files: []File{{Path: "/srv/x"}}, Directories: []Directory{{Path: "/srv/x"}}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if err := c.Validate(); err == nil {
				t.Error("accepted")
			}
		})
	}
}

func TestMergePrecedence(t *testing.T) {
	high := &Config{System: System{Hostname: Setting{Value: "high"}}}
	low := &Config{System: System{Hostname: Setting{Value: "low"}, Timezone: Setting{Value: "UTC"}}, Users: []User{{Name: "x"}}}
	high.Merge(low)
	if high.System.Hostname.Value != "high" || high.System.Timezone.Value != "UTC" || len(high.Users) != 1 {
		t.Errorf("merge: %+v", high.System)
	}
}
