package config

// Merge adds lower into c. c has the higher precedence: its scalar settings
// win, lists are concatenated (c's items first). Conflicting users or paths
// are not resolved here: Validate reports them with both origins.
func (c *Config) Merge(lower *Config) {
	if lower == nil {
		return
	}
	setIfEmpty(&c.InstanceID, lower.InstanceID)
	c.Groups = append(c.Groups, lower.Groups...)
	c.Users = append(c.Users, lower.Users...)
	c.Passwords = append(c.Passwords, lower.Passwords...)
	c.SSHKeys = append(c.SSHKeys, lower.SSHKeys...)
	if c.SSHPwauth == nil {
		c.SSHPwauth = lower.SSHPwauth
	}
	if c.SSHHostKeys == nil {
		c.SSHHostKeys = lower.SSHHostKeys
	}
	c.Files = append(c.Files, lower.Files...)
	c.Directories = append(c.Directories, lower.Directories...)
	c.Links = append(c.Links, lower.Links...)

	if c.CACerts == nil {
		c.CACerts = lower.CACerts
	}
	if c.NTP == nil {
		c.NTP = lower.NTP
	}
	if c.Mounts == nil {
		c.Mounts = lower.Mounts
	}
	if c.Swap == nil {
		c.Swap = lower.Swap
	}
	if c.RandomSeed == nil {
		c.RandomSeed = lower.RandomSeed
	}
	setIfEmpty(&c.FinalMessage, lower.FinalMessage)
	if c.Growpart == nil {
		c.Growpart = lower.Growpart
	}
	if c.ResizeRootfs == nil {
		c.ResizeRootfs = lower.ResizeRootfs
	}
	if c.PowerState == nil {
		c.PowerState = lower.PowerState
	}
	s, l := &c.System, &lower.System
	setIfEmpty(&s.Hostname, l.Hostname)
	setIfEmpty(&s.FQDN, l.FQDN)
	if s.PreserveHostname == nil {
		s.PreserveHostname = l.PreserveHostname
	}
	if s.PreferFQDN == nil {
		s.PreferFQDN = l.PreferFQDN
	}
	if s.CreateHostnameFile == nil {
		s.CreateHostnameFile = l.CreateHostnameFile
	}
	setIfEmpty(&s.ManageEtcHosts, l.ManageEtcHosts)
	setIfEmpty(&s.Timezone, l.Timezone)
	setIfEmpty(&s.Locale, l.Locale)
	if !s.Keyboard.IsSet() {
		s.Keyboard = l.Keyboard
	}

	c.Network = append(c.Network, lower.Network...)
	c.Repositories = append(c.Repositories, lower.Repositories...)
	c.Packages = append(c.Packages, lower.Packages...)
	if c.PackageUpdate == nil {
		c.PackageUpdate = lower.PackageUpdate
	}
	if c.PackageUpgrade == nil {
		c.PackageUpgrade = lower.PackageUpgrade
	}
	c.Units = append(c.Units, lower.Units...)
	c.Scripts = append(c.Scripts, lower.Scripts...)
	c.Unapplied = append(c.Unapplied, lower.Unapplied...)
	c.Warnings = append(c.Warnings, lower.Warnings...)
}

func setIfEmpty(dst *Setting, src Setting) {
	if !dst.IsSet() {
		*dst = src
	}
}
