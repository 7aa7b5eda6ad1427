package config

// Growpart is cloud-init's growpart: the partitions holding Devices (mount
// points in the target or device paths) are grown to the end of free space
// on their disk. It changes the partition table, outside the snapshot, so
// it happens only after the commit.
type Growpart struct {
	Origin Origin
	// Mode is "auto", "growpart" (both: provision's own growing) or "off".
	Mode    string
	Devices []string
	// IgnoreGrowrootDisabled grows even when the target has
	// /etc/growroot-disabled.
	IgnoreGrowrootDisabled bool
}

// ResizeRootfs is cloud-init's resize_rootfs: after growpart, the target's
// root filesystem is grown to fill its device(s).
type ResizeRootfs struct {
	Origin Origin
	// Mode is "true", "false" or "noblock" (cloud-init's background
	// resize; provision's is online and quick, so it waits for it).
	Mode string
}

// Enabled reports whether the filesystem is to be resized.
func (r *ResizeRootfs) Enabled() bool { return r != nil && r.Mode != "false" }

// PowerState is cloud-init's power_state: the machine is powered off,
// rebooted or halted once the booted system has finished starting, on the
// boot the configuration was applied in, when Condition holds.
type PowerState struct {
	Origin Origin
	Mode   string // "poweroff", "reboot" or "halt"
	// DelayMinutes is the delay in minutes; 0 is cloud-init's "now".
	DelayMinutes int
	Message      string
	// Timeout is how long cloud-init waits for itself to end, in seconds;
	// kept for the plan (nothing of provision runs in the booted system).
	Timeout float64
	// Condition: nil Argv and empty Shell with Always true is "true";
	// Never is "false" (nothing happens); Shell runs with /bin/sh -c;
	// Argv runs as given.
	Condition PowerCondition
}

// PowerCondition is power_state.condition: a literal or a command whose
// exit status 0 means "go ahead".
type PowerCondition struct {
	Never bool
	Shell string
	Argv  []string
}
