package config

// Mounts is cloud-init's mounts (cc_mounts): the fstab entries, already
// completed from mount_default_fields, with short device names expanded
// and the entries a later null mount point removed taken out.
type Mounts struct {
	Origin  Origin
	Entries []MountEntry
}

// MountEntry is one fstab line to add. Spec and File are unescaped (the
// writer escapes blanks and backslashes); the other fields are written as
// they are.
type MountEntry struct {
	Origin  Origin
	Spec    string
	File    string
	VfsType string
	Options string
	Freq    string
	Passno  string
}

// Swap is cloud-init's swap: a swap file of Size bytes (or the size
// cloud-init's suggested_swapsize gives when Auto, at most MaxSize when
// set) at Filename, and its fstab line.
type Swap struct {
	Origin   Origin
	Filename string
	Size     int64
	Auto     bool
	MaxSize  int64
}
