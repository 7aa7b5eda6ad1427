// Package config is the one model every input format translates into: users,
// groups, files, SSH keys, network, packages, units, system settings and
// scripts, each remembering where it came from. It is pure data plus
// validation and merging; it imports nothing else of this project.
package config

import (
	"fmt"
	"io/fs"
	"strings"
)

// Origin says where an item was defined. Errors and plan lines print it so a
// user can find the line that caused them.
type Origin struct {
	Source string // e.g. "nocloud:/dev/vdb", "dir:/seed", "fwcfg"
	File   string // document name within the source, e.g. "user-data"
	Line   int    // 1-based; 0 when unknown
	Column int    // 1-based; 0 when unknown
}

func (o Origin) String() string {
	s := o.Source
	if o.File != "" {
		if s != "" {
			s += ":"
		}
		s += o.File
	}
	if o.Line > 0 {
		s += fmt.Sprintf(":%d", o.Line)
		if o.Column > 0 {
			s += fmt.Sprintf(":%d", o.Column)
		}
	}
	if s == "" {
		return "<unknown>"
	}
	return s
}

// Document identifies the document part of an origin, so two items from the
// same document can be told apart from items of two different documents.
func (o Origin) Document() string { return o.Source + "\x00" + o.File }

// Config is the whole desired state of the target, merged from every document.
type Config struct {
	InstanceID Setting // from meta-data; decides "new instance"

	Groups    []Group
	Users     []User
	Passwords []PasswordChange // chpasswd: may name users not defined here (root)
	SSHKeys   []AuthorizedKey
	SSHPwauth *BoolSetting
	// SSHHostKeys is cloud-init's host key handling; nil when no document
	// says anything about host keys (Ignition, Combustion).
	SSHHostKeys *SSHHostKeys

	Files       []File
	Directories []Directory
	Links       []Link

	System System

	// CACerts is cloud-init's ca_certs; nil when not given.
	CACerts *CACerts

	// NTP is cloud-init's ntp; nil when not given or enabled: false.
	NTP *NTP
	// Mounts and Swap are cloud-init's mounts and swap (mounts.go); nil
	// when not given, and Swap also when its size is 0.
	Mounts *Mounts
	Swap   *Swap
	// RandomSeed is cloud-init's random_seed; nil when not given.
	RandomSeed *RandomSeed
	// FinalMessage is cloud-init's final_message: printed to the console
	// at the end of a successful run ($UPTIME, $TIMESTAMP, $DATASOURCE and
	// $VERSION substituted then). Zero when not given.
	FinalMessage Setting
	// Growpart, ResizeRootfs and PowerState act after the commit (see
	// power.go); nil when not given.
	Growpart     *Growpart
	ResizeRootfs *ResizeRootfs
	PowerState   *PowerState

	Network        []NetworkDoc
	Repositories   []Repository
	Packages       []Package
	PackageUpdate  *BoolSetting
	PackageUpgrade *BoolSetting

	Units   []Unit
	Scripts []Script

	// Accepted but not applied by this release (no key at present): kept
	// so the plan can say they were seen.
	Unapplied []Unapplied

	Warnings []Warning
}

// Setting is a single string value with its origin. Zero value = not set.
type Setting struct {
	Value  string
	Origin Origin
}

// IsSet reports whether some document set this value.
func (s Setting) IsSet() bool { return s.Value != "" }

// BoolSetting is a boolean with its origin.
type BoolSetting struct {
	Value  bool
	Origin Origin
}

// Warning is a non-fatal finding (unknown key, weak RSA key). --strict turns
// warnings into errors.
type Warning struct {
	Origin  Origin
	Message string
}

func (w Warning) String() string { return w.Origin.String() + ": " + w.Message }

// Group is a group to create (cloud-init groups:, Ignition passwd.groups).
type Group struct {
	Origin  Origin
	Name    string
	GID     *int
	System  bool
	Members []string
	// PasswordHash for gshadow; empty means "!" (locked), like groupadd.
	PasswordHash string
}

// PasswordKind tells how a Password value is to be stored.
type PasswordKind int

const (
	PasswordNone   PasswordKind = iota // leave as is / "!" for new users
	PasswordHash                       // pre-hashed crypt string, stored as given
	PasswordPlain                      // plain text, hashed with $6$ on apply
	PasswordRandom                     // chpasswd RANDOM: generate one
)

// Password is a secret; String never prints the value.
type Password struct {
	Kind  PasswordKind
	Value string
}

func (p Password) String() string {
	switch p.Kind {
	case PasswordHash:
		return "hashed password"
	case PasswordPlain:
		return "plain-text password"
	case PasswordRandom:
		return "random password"
	}
	return "no password"
}

// User is an account to create or update.
type User struct {
	Origin       Origin
	Name         string
	Gecos        string
	Groups       []string // supplementary groups
	PrimaryGroup string
	Sudo         []string // sudoers rules, one per line
	Shell        string
	HomeDir      string
	NoCreateHome bool
	System       bool
	UID          *int
	NoUserGroup  bool
	Password     Password
	// InitialPassword is the shadow password field a user this config
	// creates starts with; "" is useradd's "!". Ignition creates its users
	// with "*" when the config gives no passwordHash.
	InitialPassword string
	LockPassword    bool
	ExpireDate      string // YYYY-MM-DD
	Inactive        *int   // days
	// Keys of this user also appear in Config.SSHKeys; kept here for plans.
}

// PasswordChange is chpasswd's view: set a password for an existing user.
type PasswordChange struct {
	Origin   Origin
	User     string
	Password Password
	Expire   bool // force a change at next login
}

// AuthorizedKey is one authorized_keys line for a user.
type AuthorizedKey struct {
	Origin Origin
	User   string
	Key    string // the line, verbatim (options and comment kept)
	// Prefix is prepended to the line (cloud-init's disable_root refusal).
	Prefix string
}

// SSHHostKeys is cloud-init's cc_ssh host key part: the image's keys are
// deleted (ssh_deletekeys, default true) so a cloned image never shares
// them, then either the supplied keys are written (ssh_keys) or a fresh
// pair of each of GenTypes is made (ssh_genkeytypes).
type SSHHostKeys struct {
	Origin   Origin // the ssh_deletekeys key, or the document for the default
	Delete   bool
	GenTypes []string // "rsa", "ecdsa", "ed25519", ...
	// GenOrigin is where GenTypes were given (the document for the default).
	GenOrigin Origin
	// Supplied are ssh_keys' entries; when any is given (even none that
	// is recognised), nothing is generated, as in cloud-init.
	Supplied    []HostKeyFile
	HasSupplied bool
}

// HostKeyFile is one ssh_keys entry: the private key, public key or
// certificate of one key type.
type HostKeyFile struct {
	Origin Origin
	Type   string // "rsa", "ecdsa", "ed25519", "dsa"
	Part   string // "private", "public" or "certificate"
	Data   string
}

// File is a regular file to write in the target. Modes in the model are Unix
// permission bits (0o7777 at most: 0o4000 setuid, 0o2000 setgid, 0o1000
// sticky), as every config format writes them, not Go's fs.Mode* flags.
type File struct {
	Origin   Origin
	Path     string
	Contents []byte
	// Source is a remote location (https:, http:, data:) fetched at apply time
	// when Contents is nil.
	Source string
	Hash   string // "sha256-<hex>" or "sha512-<hex>" for Source
	// Headers are sent with the request for an http(s) Source (Ignition's
	// httpHeaders), not with a redirect; values may be credentials.
	Headers []HTTPHeader
	Mode    *fs.FileMode
	Owner   string // name or numeric string; resolved in the target
	Group   string
	Append  bool
	// Overwrite false refuses to replace an existing file (Ignition); nil = replace.
	Overwrite *bool
	Defer     bool
}

// HTTPHeader is one header of a request.
type HTTPHeader struct{ Name, Value string }

// Directory is a directory to create.
type Directory struct {
	Origin Origin
	Path   string
	Mode   *fs.FileMode
	Owner  string
	Group  string
	// Overwrite true removes whatever else is at Path first (Ignition);
	// otherwise a non-directory there is an error.
	Overwrite *bool
}

// Link is a symbolic or hard link to create.
type Link struct {
	Origin    Origin
	Path      string
	Target    string
	Hard      bool
	Owner     string
	Group     string
	Overwrite *bool
}

// System holds host-wide settings.
type System struct {
	Hostname         Setting
	FQDN             Setting
	PreserveHostname *BoolSetting
	// PreferFQDN is cloud-init's prefer_fqdn_over_hostname: write the FQDN,
	// not the short name, to /etc/hostname. nil = the distro default (false).
	PreferFQDN *BoolSetting
	// CreateHostnameFile is cloud-init's create_hostname_file (23.4):
	// false writes /etc/hostname only if the target already has one.
	// nil = true.
	CreateHostnameFile *BoolSetting
	// ManageEtcHosts is cloud-init's manage_etc_hosts: "true", "localhost",
	// "template" or "" (off).
	ManageEtcHosts Setting
	Timezone       Setting
	Locale         Setting
	Keyboard       Keyboard
}

// CACerts is cloud-init's ca_certs: trusted CA certificates added to the
// target's trust store, optionally after removing the distribution's.
type CACerts struct {
	Origin         Origin
	RemoveDefaults bool
	Trusted        []CACert
}

// NTP is cloud-init's ntp: the client's configuration written as the
// target keeps it and its service enabled.
type NTP struct {
	Origin Origin
	// Client is auto (the first the target has of chrony,
	// systemd-timesyncd, ntp, ntpdate), or one of them.
	Client  string
	Servers []string
	Pools   []string
	// Peers and Allow are chrony's peer and allow lines (ntpd takes
	// peers only; systemd-timesyncd neither).
	Peers []string
	Allow []string
	// ConfPath, ServiceName, CheckExe and Packages are ntp.config's
	// overrides of the client's defaults; empty (nil) keeps them.
	ConfPath    string
	ServiceName string
	CheckExe    string
	Packages    []string
}

// RandomSeed is cloud-init's random_seed: Data (already decoded from its
// encoding) appended to File, then Command run in the target with
// RANDOM_SEED_FILE=File.
type RandomSeed struct {
	Origin Origin
	// File defaults to /dev/urandom (the kernel's device, left alone).
	File    string
	Data    []byte
	Command []string
	// CommandRequired makes a missing command (or none given) an error.
	CommandRequired bool
}

// CACert is one trusted certificate as given (PEM text, not checked: the
// target's update tool reads it as cloud-init leaves it).
type CACert struct {
	Origin Origin
	PEM    string
}

// Keyboard is the console keymap and X11 layout.
type Keyboard struct {
	Origin  Origin
	Layout  string
	Model   string
	Variant string
	Options string
}

// IsSet reports whether a keyboard layout was requested.
func (k Keyboard) IsSet() bool { return k.Layout != "" }

// NetworkDoc is a network configuration as parsed data; rendering happens in
// the network module.
type NetworkDoc struct {
	Origin Origin
	// Format: "cloud-init-v1", "cloud-init-v2", "openstack-network-data",
	// "ec2-metadata".
	Format   string
	Disabled bool // cloud-init "config: disabled"
	Data     any  // decoded YAML/JSON tree
	// Positions is where each key and list item of Data is, by the path
	// the network module's errors name ("ethernets.eth0.dhcp4",
	// "config[0].subnets[1]"), so an error points at its own line.
	Positions map[string]Origin `json:"-"`
}

// At returns the position of path in the document: the path itself, or
// the nearest enclosing key or item that has one, or the document.
func (d NetworkDoc) At(path string) Origin {
	for path != "" {
		if o, ok := d.Positions[path]; ok {
			return o
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return d.Origin
}

// Repository is a package repository to add.
type Repository struct {
	Origin   Origin
	Manager  string // "zypper", "yum", "apt"
	Name     string
	BaseURL  string
	Enabled  *bool
	GPGCheck *bool
	GPGKey   string
	// Options holds every key as given, for renderers that know more.
	Options map[string]string
}

// Package is a package to install.
type Package struct {
	Origin  Origin
	Name    string
	Version string
}

// Unit is a systemd unit to write, enable or mask.
type Unit struct {
	Origin  Origin
	Name    string
	Enabled *bool
	Mask    bool
	// Unmask removes a /dev/null mask if there is one (Ignition's mask: false).
	Unmask   bool
	Contents *string
	Dropins  []Dropin
}

// Dropin is a unit drop-in file.
type Dropin struct {
	Name     string
	Contents string
}

// ScriptKind says what a script is and hence when it runs.
type ScriptKind string

const (
	ScriptCombustion ScriptKind = "combustion" // Combustion's script
	ScriptBootcmd    ScriptKind = "bootcmd"    // cloud-init bootcmd
	ScriptBoothook   ScriptKind = "boothook"   // #cloud-boothook
	ScriptRuncmd     ScriptKind = "runcmd"     // cloud-init runcmd
	ScriptUser       ScriptKind = "user"       // #! user-data script
)

// Script is a program to run inside the snapshot.
type Script struct {
	Origin Origin
	Kind   ScriptKind
	Name   string
	// Body is the program text. For runcmd entries given as a list, Argv is
	// set instead and Body is empty.
	Body []byte
	Argv []string
	// Frequency for MIME shellscripts: "instance" (default), "boot", "once".
	Frequency string
	// Combustion magic comments.
	NeedsNetwork bool
	Prepare      bool
	// Files are the sibling files of a Combustion config directory, by
	// relative path; the script runs with a copy of them as its cwd.
	Files map[string][]byte
}

// Unapplied records a key that was accepted but has no module yet.
type Unapplied struct {
	Origin Origin
	Key    string
}
