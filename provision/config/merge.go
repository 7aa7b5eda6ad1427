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
	setIfNil(&c.SSHPwauth, lower.SSHPwauth)
	setIfNil(&c.SSHHostKeys, lower.SSHHostKeys)
	c.Files = append(c.Files, lower.Files...)
	c.Directories = append(c.Directories, lower.Directories...)
	c.Links = append(c.Links, lower.Links...)

	setIfNil(&c.CACerts, lower.CACerts)
	setIfNil(&c.NTP, lower.NTP)
	setIfNil(&c.Mounts, lower.Mounts)
	setIfNil(&c.Swap, lower.Swap)
	setIfNil(&c.RandomSeed, lower.RandomSeed)
	setIfEmpty(&c.FinalMessage, lower.FinalMessage)
	setIfNil(&c.Growpart, lower.Growpart)
	setIfNil(&c.ResizeRootfs, lower.ResizeRootfs)
	setIfNil(&c.PowerState, lower.PowerState)
	s, l := &c.System, &lower.System
	setIfEmpty(&s.Hostname, l.Hostname)
	setIfEmpty(&s.FQDN, l.FQDN)
	setIfNil(&s.PreserveHostname, l.PreserveHostname)
	setIfNil(&s.PreferFQDN, l.PreferFQDN)
	setIfNil(&s.CreateHostnameFile, l.CreateHostnameFile)
	setIfEmpty(&s.ManageEtcHosts, l.ManageEtcHosts)
	setIfEmpty(&s.Timezone, l.Timezone)
	setIfEmpty(&s.Locale, l.Locale)
	if !s.Keyboard.IsSet() {
		s.Keyboard = l.Keyboard
	}

	c.Network = append(c.Network, lower.Network...)
	c.Repositories = append(c.Repositories, lower.Repositories...)
	c.Packages = append(c.Packages, lower.Packages...)
	setIfNil(&c.PackageUpdate, lower.PackageUpdate)
	setIfNil(&c.PackageUpgrade, lower.PackageUpgrade)
	c.Units = append(c.Units, lower.Units...)
	c.Scripts = append(c.Scripts, lower.Scripts...)
	c.Unapplied = append(c.Unapplied, lower.Unapplied...)
	c.Warnings = append(c.Warnings, lower.Warnings...)
}

// setIfNil gives *dst the lower document's value when this one has none.
func setIfNil[T any](dst **T, src *T) {
	if *dst == nil {
		*dst = src
	}
}

func setIfEmpty(dst *Setting, src Setting) {
	if !dst.IsSet() {
		*dst = src
	}
}
