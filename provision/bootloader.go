package provision

// describeBootLoader says how the next boot will find the new snapshot.
func describeBootLoader(root string) string {
	return "boot: the btrfs default subvolume decides (GRUB with SUSE's btrfs snapshot booting, or a plain root= without rootflags)"
}
