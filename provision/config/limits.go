package config

import (
	"errors"
	"fmt"
)

// Limits on how many of each thing one configuration may ask for. A real
// config never comes near them (a fleet's largest cloud-config has a few
// hundred users); they exist so a hostile or broken one is refused at
// once, naming the limit, instead of running for minutes or exhausting
// memory. The README's "Limits" section lists them with the limits of the
// formats and sources; change both together.
const (
	MaxUsers        = 10000
	MaxGroups       = 10000
	MaxPasswords    = 10000 // chpasswd entries
	MaxSSHKeys      = 10000 // authorized keys, all users together
	MaxFiles        = 10000 // write_files / storage.files entries
	MaxDirectories  = 10000
	MaxLinks        = 10000
	MaxUnits        = 10000 // systemd units, drop-ins counted with their unit
	MaxScripts      = 10000 // bootcmd, runcmd, scripts, Combustion
	MaxPackages     = 10000
	MaxRepositories = 1000
	// MaxInterfaces is per network document: ethernets, bonds, bridges,
	// vlans, wifis, tunnels (v2), config entries (v1), links (OpenStack).
	MaxInterfaces = 1024
)

// LimitError is a count over its limit: what, how many, the limit, and the
// first item past it (its origin names the source, file and line).
type LimitError struct {
	Origin Origin
	What   string
	Count  int
	Limit  int
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%s: %d %s, more than the limit of %d (see Limits in the README)", e.Origin, e.Count, e.What, e.Limit)
}

// CheckLimits refuses a configuration that asks for more of anything than
// the limits allow. It looks only at counts, so it runs before validation
// and planning, whose work grows with them.
func (c *Config) CheckLimits() error {
	checks := []struct {
		what  string
		limit int
		n     int
		at    func(i int) Origin
	}{
		{"users", MaxUsers, len(c.Users), func(i int) Origin { return c.Users[i].Origin }},
		{"groups", MaxGroups, len(c.Groups), func(i int) Origin { return c.Groups[i].Origin }},
		{"password changes (chpasswd)", MaxPasswords, len(c.Passwords), func(i int) Origin { return c.Passwords[i].Origin }},
		{"SSH authorized keys", MaxSSHKeys, len(c.SSHKeys), func(i int) Origin { return c.SSHKeys[i].Origin }},
		{"files (write_files, storage.files)", MaxFiles, len(c.Files), func(i int) Origin { return c.Files[i].Origin }},
		{"directories", MaxDirectories, len(c.Directories), func(i int) Origin { return c.Directories[i].Origin }},
		{"links", MaxLinks, len(c.Links), func(i int) Origin { return c.Links[i].Origin }},
		{"systemd units", MaxUnits, len(c.Units), func(i int) Origin { return c.Units[i].Origin }},
		{"scripts and commands (bootcmd, runcmd, scripts)", MaxScripts, len(c.Scripts), func(i int) Origin { return c.Scripts[i].Origin }},
		{"packages", MaxPackages, len(c.Packages), func(i int) Origin { return c.Packages[i].Origin }},
		{"repositories", MaxRepositories, len(c.Repositories), func(i int) Origin { return c.Repositories[i].Origin }},
	}
	var errs []error
	for _, ch := range checks {
		if ch.n > ch.limit {
			errs = append(errs, &LimitError{Origin: ch.at(ch.limit), What: ch.what, Count: ch.n, Limit: ch.limit})
		}
	}
	for _, d := range c.Network {
		if n := countInterfaces(d.Data); n > MaxInterfaces {
			errs = append(errs, &LimitError{Origin: d.Origin, What: "network interfaces in one network config", Count: n, Limit: MaxInterfaces})
		}
	}
	return errors.Join(errs...)
}

// countInterfaces counts the interface entries of a decoded network
// document in any of the formats read (looking through an outer
// "network:" key, as the formats allow).
func countInterfaces(data any) int {
	top, ok := data.(map[string]any)
	if !ok {
		return 0
	}
	if inner, ok := top["network"].(map[string]any); ok && top["version"] == nil {
		top = inner
	}
	n := 0
	for k, v := range top {
		switch k {
		case "ethernets", "bonds", "bridges", "vlans", "wifis", "tunnels", "vrfs", "modems":
			if m, ok := v.(map[string]any); ok {
				n += len(m)
			}
		case "config", "links":
			if l, ok := v.([]any); ok {
				n += len(l)
			}
		}
	}
	return n
}
