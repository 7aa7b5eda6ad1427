package chroot

import "github.com/provision-dev/provision/modules/fstab"

// FstabEntry is one line of the target's fstab.
type FstabEntry = fstab.Entry

// ParseFstab parses fstab(5) text; name is used in error messages.
func ParseFstab(name string, data []byte) ([]FstabEntry, error) { return fstab.Parse(name, data) }
