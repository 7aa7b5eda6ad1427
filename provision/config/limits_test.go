package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestCheckLimits: a count past its limit is refused naming the limit and
// where the first item past it is; at the limit, nothing is said.
func TestCheckLimits(t *testing.T) {
	at := func(line int) Origin { return Origin{Source: "dir:/seed", File: "user-data", Line: line} }
	var c Config
	for i := range MaxUsers {
		c.Users = append(c.Users, User{Origin: at(i + 1), Name: "u"})
	}
	if err := c.CheckLimits(); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
	c.Users = append(c.Users, User{Origin: at(MaxUsers + 1)})
	for range MaxFiles + 5 {
		c.Files = append(c.Files, File{Origin: at(7)})
	}
	err := c.CheckLimits()
	var le *LimitError
	if !errors.As(err, &le) {
		t.Fatalf("got %v", err)
	}
	for _, want := range []string{"dir:/seed:user-data:10001: 10001 users, more than the limit of 10000", "10005 files (write_files, storage.files), more than the limit of 10000"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
}

func TestCheckLimitsInterfaces(t *testing.T) {
	eth := map[string]any{}
	for i := range MaxInterfaces + 1 {
		eth[fmt.Sprintf("eth%d", i)] = map[string]any{}
	}
	list := make([]any, MaxInterfaces+1)
	for name, data := range map[string]any{
		"v2":        map[string]any{"network": map[string]any{"version": 2, "ethernets": eth}},
		"v1":        map[string]any{"version": 1, "config": list},
		"openstack": map[string]any{"links": list},
	} {
		if len(eth) <= MaxInterfaces && name == "v2" {
			t.Fatalf("test data: only %d ethernets", len(eth))
		}
		c := Config{Network: []NetworkDoc{{Origin: Origin{Source: "nocloud", File: "network-config"}, Data: data}}}
		if err := c.CheckLimits(); err == nil || !strings.Contains(err.Error(), "network interfaces in one network config") {
			t.Errorf("%s: got %v", name, err)
		}
	}
	ok := Config{Network: []NetworkDoc{{Data: map[string]any{"version": 2, "ethernets": map[string]any{"eth0": nil}}}}}
	if err := ok.CheckLimits(); err != nil {
		t.Error(err)
	}
}
