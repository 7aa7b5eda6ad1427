package cloudinit

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/provision-dev/provision/provision/config"
)

// This file is the one table of the top-level cloud-config keys provision
// knows, and the JSON Schema made from it. The parser's unknown-key warning
// consults the same table (cloudConfig in keys.go), and a test compares the
// keys the parser reads with the table, so `provision schema` cannot drift
// from what is accepted.
//
// The schema describes what the parser accepts, not what cloud-init's
// documentation recommends: a document the schema rejects is one
// `provision validate` rejects too (a test probes every key with values of
// every JSON type and compares both answers). Forms that only draw a
// warning (644 as a decimal mode, an unrecognised ssh_pwauth) are valid.

// keyStatus says what provision does with a top-level key.
type keyStatus int

const (
	keyApplied   keyStatus = iota // read and applied
	keyUnapplied                  // type-checked, then reported as not applied by this release
	keyInternal                   // steers how documents combine; read before the keys are
	keyIgnored                    // a cloud-init key provision does not implement: a warning
)

// keySpec is one top-level key: its status, its type (a JSON Schema
// fragment) and a line for editors' hover text.
type keySpec struct {
	status keyStatus
	desc   string
	schema js
}

// js is a JSON Schema fragment.
type js = map[string]any

// ignoredKeys are cloud-config keys cloud-init knows that provision accepts
// but does not implement: a warning names them, --strict makes them errors.
const ignoredKeys = `ansible apk_repos apt_pipelining
	apt_reboot_if_required autoinstall byobu_by_default chef
	cloud_config_modules cloud_final_modules cloud_init_modules
	device_aliases disable_ec2_metadata disk_setup drivers fan fs_setup
	grub-dpkg grub_dpkg landscape locale_configfile lxd
	manage_resolv_conf mcollective migrate no_ssh_fingerprints
	output package_reboot_if_required phone_home puppet
	reporting resolv_conf rh_subscription rpi rsyslog salt_minion snap
	spacewalk ssh ssh_fp_console_blacklist ssh_import_id
	ssh_key_console_blacklist ssh_publish_hostkeys ssh_quiet_keygen
	system_info ubuntu_advantage ubuntu_pro updates version wireguard yum_repo_dir
	authkey_hash datasource datasource_list network seed_random write_metadata`

// cloudConfigKeys maps every known top-level key to its spec; built on first
// use, not at start-up (a few thousand allocations a dry run of Ignition or
// a "nothing to do" boot never needs).
var cloudConfigKeys = sync.OnceValue(buildKeyTable)

func buildKeyTable() map[string]keySpec {
	t := map[string]keySpec{}
	add := func(status keyStatus, desc string, schema js, names ...string) {
		for _, n := range names {
			t[n] = keySpec{status: status, desc: desc, schema: schema}
		}
	}
	a := keyApplied
	add(a, "Users to create: \"default\" (the image's default user), names, or mappings; a string is a comma-separated list of names.", usersSchema(), "users")
	add(a, "Legacy: renames or changes the default user; a mapping needs a name unless the image has a default user.", anyOf(null(), typ("string"), ref("user")), "user")
	add(a, "Groups to create: names, or mappings of a group to its members.", groupsSchema(), "groups")
	add(a, "Password logins in sshd: true, false or \"unchanged\"; other values draw a warning and leave sshd unchanged.",
		anyOf(ref("boolean"), js{"const": "unchanged"}, js{}), "ssh_pwauth")
	add(a, "SSH public keys for the default user (and root, behind disable_root's prefix).", ref("sshKeys"), "ssh_authorized_keys")
	add(a, "Keep root's keys behind a refusal prefix (default true).", ref("boolean"), "disable_root")
	add(a, "The prefix root's keys get when disable_root is true.", ref("string"), "disable_root_opts")
	add(a, "Delete the image's host keys, /etc/ssh/ssh_host_*key* (default true): a cloned image must not share them.", ref("boolean"), "ssh_deletekeys")
	add(a, "Host key types to generate when ssh_keys gives none (default rsa, ecdsa, ed25519); a type whose key exists is kept.", ref("stringOrList"), "ssh_genkeytypes")
	add(a, "Host keys to install instead of generating: <rsa|dsa|ecdsa|ed25519>_<private|public|certificate>.", hostKeysSchema(), "ssh_keys")
	add(a, "Give meta-data's public keys to the default user (default true).", ref("boolean"), "allow_public_ssh_keys")
	add(a, "Passwords: users (name, password, type hash|text|RANDOM), the legacy list of user:password lines, expire.", chpasswdSchema(), "chpasswd")
	add(a, "The default user's password (when chpasswd sets none).", nullable(ref("string")), "password")
	add(a, "Files to write.", nullable(arrayOf(writeFileSchema())), "write_files")
	add(a, "Commands run early in the boot, in the snapshot: a shell string or an argv list each.", ref("commands"), "bootcmd")
	add(a, "Commands run at the end of the run: a shell string or an argv list each.", ref("commands"), "runcmd")
	add(a, "Packages to install: a name, or [name, version]; mappings (apt:, snap:) draw a warning.", packagesSchema(), "packages")
	add(a, "Refresh the package metadata.", ref("boolean"), "package_update", "apt_update")
	add(a, "Upgrade the installed packages.", ref("boolean"), "package_upgrade", "apt_upgrade")
	add(a, "zypper repositories (repos: id, baseurl, ...).", zypperSchema(), "zypper")
	add(a, "yum/dnf repositories by id; one of baseurl, metalink or mirrorlist each.", yumReposSchema(), "yum_repos")
	add(a, "apt sources (sources: by name; source, key or keyid each); other apt keys draw a warning.", aptSchema(), "apt")
	add(a, "Trusted CA certificates (trusted) added to the target's trust store, after removing the distribution's with remove_defaults; the target's update-ca-certificates or update-ca-trust runs.", caCertsSchema(), "ca_certs", "ca-certs")
	add(a, "Seed data (data, decoded per encoding) appended to file (default /dev/urandom, which provision leaves to the kernel), then command run in the target with RANDOM_SEED_FILE; command_required makes a missing command an error.", randomSeedSchema(), "random_seed")
	add(a, "Grow the partitions of devices (mount points of the target or device paths; default [\"/\"]) to the end of the free space behind them, after the commit: mode auto or growpart (default) or off; the target's /etc/growroot-disabled stops it unless ignore_growroot_disabled.", growpartSchema(), "growpart")
	add(a, "Grow the root filesystem (btrfs, online) to the end of its partition after growpart: true (default), false or noblock.", resizeRootfsSchema(), "resize_rootfs")
	add(a, "Power off, reboot or halt (mode) once the booted system has started, on the first boot only: delay now or minutes, message, condition (true, false or a command); applied only when provisioning in the initrd.", powerStateSchema(), "power_state")
	add(a, "A message printed to the console at the end of a successful run ($UPTIME, $TIMESTAMP, $DATASOURCE, $VERSION substituted) and kept in the report.", nullable(ref("string")), "final_message")
	add(a, "NTP (enabled, default true; ntp_client auto|chrony|systemd-timesyncd|ntp|ntpdate; servers; pools; peers; allow; config: confpath, service_name, check_exe, packages): the client's configuration written as the target keeps it, its service enabled; a target without a client gets the distribution's client installed when packages are installed too, else a warning.", ntpSchema(), "ntp")
	add(a, "The host name; with a dot, the fqdn.", nullable(ref("string")), "hostname", "fqdn")
	add(a, "Write the fqdn to /etc/hostname.", nullable(ref("boolean")), "prefer_fqdn_over_hostname")
	add(a, "false: do not create /etc/hostname when the target has none (default true).", ref("boolean"), "create_hostname_file")
	add(a, "Leave the host name alone.", ref("boolean"), "preserve_hostname")
	add(a, "Write /etc/hosts: true, \"localhost\" or \"template\".", anyOf(null(), typ("boolean"), js{"enum": []any{"localhost", "template"}}), "manage_etc_hosts")
	add(a, "The time zone (checked against the target's zoneinfo with --root).", nullable(ref("string")), "timezone")
	add(a, "The locale; false leaves it alone.", anyOf(null(), js{"const": false}, ref("string")), "locale")
	add(a, "The console and X keyboard layout.", keyboardSchema(), "keyboard")
	add(a, "fstab entries [fs_spec, fs_file, fs_vfstype, fs_mntops, fs_freq, fs_passno], completed from mount_default_fields, appended to the target's /etc/fstab with comment=cloudconfig (a previous run's replaced); sda-style names get /dev/; ephemeralN and other names only a cloud's block-device-mapping resolves are skipped with a warning; an entry without fs_file removes the earlier ones of its device; mount points are created.", mountsSchema(), "mounts")
	add(a, "The fields a mounts entry lacks (6; null for none): default [null, null, auto, \"defaults,nofail\", \"0\", \"2\"].", mountDefaultsSchema(), "mount_default_fields")
	add(a, "A swap file (filename, default /swap.img; size: bytes, 1G-style or auto, cloud-init's suggestion from memory and free space; maxsize): NOCOW and fully allocated on btrfs, 0600, swap signature, and its fstab line; on a snapper root it goes to /var/lib/swap, off the snapshotted subvolume.", swapSchema(), "swap")
	i := keyInternal
	add(i, "How this part merges with the others: a string or a list of mergers.", ref("mergeHow"), "merge_how", "merge_type")
	add(i, "Whether vendor data is used (enabled) and which of its handlers are not.", vendorDataSchema(), "vendor_data", "vendor_data2")
	add(i, "This part is for the instance whose ami-launch-index (meta-data) is this number; parts for other instances are skipped (a value that is not an integer is ignored, as cloud-init ignores it).", js{}, "launch-index")
	for _, k := range strings.Fields(ignoredKeys) {
		t[k] = keySpec{status: keyIgnored, desc: "cloud-init's " + k + ": not supported by provision; ignored with a warning (an error with --strict)."}
	}
	return t
}

// ---- schema building blocks ----

func typ(t ...string) js {
	if len(t) == 1 {
		return js{"type": t[0]}
	}
	return js{"type": t}
}

func null() js           { return typ("null") }
func ref(name string) js { return js{"$ref": "#/definitions/" + name} }
func anyOf(s ...js) js   { return js{"anyOf": s} }
func nullable(s js) js   { return anyOf(null(), s) }
func arrayOf(items js) js {
	return js{"type": "array", "items": items}
}

// object is a mapping with known properties; unknown ones stay allowed,
// as the parser only warns about them.
func object(props map[string]js, required ...string) js {
	o := js{"type": "object", "properties": props, "additionalProperties": true}
	if len(required) > 0 {
		o["required"] = required
	}
	return o
}

func withDesc(s js, desc string) js {
	out := js{}
	for k, v := range s {
		out[k] = v
	}
	out["description"] = desc
	return out
}

// ignored marks a nested key the parser warns about and otherwise skips.
func ignored(what string) js {
	return js{"deprecated": true, "description": what + ": not supported by provision; ignored with a warning."}
}

// caseless is an ECMA-262 pattern matching one of words in any case, with
// surrounding blanks, as the parser lowercases and trims.
func caseless(words ...string) string {
	var alts []string
	for _, w := range words {
		var b strings.Builder
		for _, r := range w {
			lo, up := strings.ToLower(string(r)), strings.ToUpper(string(r))
			if lo == up {
				b.WriteString(regexpQuote(string(r)))
			} else {
				fmt.Fprintf(&b, "[%s%s]", lo, up)
			}
		}
		alts = append(alts, b.String())
	}
	return `^\s*(` + strings.Join(alts, "|") + `)\s*$`
}

func regexpQuote(s string) string {
	if strings.ContainsAny(s, `\.+*?()|[]{}^$/`) {
		return `\` + s
	}
	return s
}

// definitions are the types several keys share.
func definitions() map[string]js {
	return map[string]js{
		"string": withDesc(typ("string", "number"),
			"A string; a number is taken as its text."),
		"boolean": withDesc(anyOf(typ("boolean"), js{"enum": []any{0, 1}},
			js{"type": "string", "pattern": caseless("true", "yes", "on", "1", "false", "no", "off", "0")}),
			"A boolean, or true/yes/on/1, false/no/off/0 in any case."),
		"integer": withDesc(anyOf(js{"type": "integer", "minimum": -1 << 31, "maximum": 1<<32 - 1},
			js{"type": "string", "pattern": `^\s*[-+]?[0-9]+\s*$`}), "An integer, or a string holding one."),
		"stringOrList": withDesc(anyOf(null(), typ("string"), arrayOf(ref("string"))),
			"A list of strings, or one comma-separated string."),
		"stringList": arrayOf(typ("string", "number", "boolean")),
		"sshKeys": withDesc(anyOf(null(), typ("string"), arrayOf(ref("string")), js{"type": "object", "additionalProperties": ref("string")}),
			"SSH public keys: a list, one key, or a mapping whose values are keys."),
		"commands": nullable(arrayOf(anyOf(typ("string", "number"),
			js{"type": "array", "minItems": 1, "items": typ("string", "number", "boolean")}))),
		"user":        userSchema(),
		"repoOptions": js{"type": "object", "additionalProperties": anyOf(null(), typ("boolean"), arrayOf(ref("string")), ref("string"))},
		"mergeHow":    mergeHowSchema(),
	}
}

// mergeHowSchema is merge_how: "dict(opts)+list(opts)+str()" (any case),
// or a list of {name, settings} mappings or [name, setting...] lists.
func mergeHowSchema() js {
	names := []any{}
	for _, n := range []string{"dict", "list", "str"} {
		names = append(names, n, "m_"+n, "m-"+n)
	}
	part := `\s*(([Mm][_-])?` + strings.TrimSuffix(strings.TrimPrefix(caseless("dict", "list", "str"), `^\s*`), `\s*$`) + `\([^+]*\))?\s*`
	return nullable(anyOf(
		js{"type": "string", "pattern": "^" + part + `(\+` + part + ")*$"},
		arrayOf(anyOf(
			object(map[string]js{
				"name":     js{"type": "string", "pattern": `^\s*(([Mm][_-])?(dict|list|str))?\s*$`},
				"settings": ref("stringList"),
			}, "name"),
			js{"type": "array", "items": []js{{"enum": names}}, "additionalItems": typ("string", "number", "boolean")}))))
}

// userFields are a user mapping's keys; '-' in a key is read as '_', so
// each key with '_' has a '-' twin in the schema.
func userFields() map[string]js {
	b := ref("boolean")
	p := map[string]js{
		"name":                ref("string"),
		"default":             withDesc(js{}, "Ignored."),
		"gecos":               ref("string"),
		"groups":              withDesc(anyOf(ref("stringOrList"), typ("object")), "Supplementary groups: a list, a comma-separated string, or a mapping whose keys are the groups."),
		"primary_group":       ref("string"),
		"sudo":                withDesc(anyOf(null(), js{"const": false}, arrayOf(ref("string")), ref("string")), "sudo rules: a rule, a list of rules, or false/null for none."),
		"shell":               ref("string"),
		"homedir":             ref("string"),
		"no_create_home":      b,
		"system":              b,
		"no_user_group":       b,
		"lock_passwd":         withDesc(b, "Lock the password (default true)."),
		"create_groups":       b,
		"no_log_init":         b,
		"ssh_redirect_user":   b,
		"uid":                 ref("integer"),
		"passwd":              withDesc(nullable(ref("string")), "A password hash."),
		"hashed_passwd":       withDesc(nullable(ref("string")), "A password hash."),
		"plain_text_passwd":   withDesc(nullable(ref("string")), "A clear-text password, hashed by provision."),
		"ssh_authorized_keys": ref("sshKeys"),
		"expiredate":          withDesc(anyOf(null(), js{"type": "string", "pattern": `^\d{4}-\d{2}-\d{2}$`}), "YYYY-MM-DD."),
		"inactive":            withDesc(anyOf(null(), ref("integer")), "Days after the password expires until the account is disabled."),
	}
	for _, k := range []string{"ssh_import_id", "snapuser", "doas", "selinux_user", "sudo_user"} {
		p[k] = ignored("users." + k)
	}
	for k, v := range p {
		if strings.Contains(k, "_") {
			p[strings.ReplaceAll(k, "_", "-")] = withDesc(v, "Same as "+k+".")
		}
	}
	return p
}

func userSchema() js { return object(userFields()) }

func usersSchema() js {
	return anyOf(null(), typ("string"),
		js{"type": "object", "additionalProperties": anyOf(ref("user"), typ("string", "number", "boolean", "null"))},
		arrayOf(anyOf(typ("string"), arrayOf(ref("string")), ref("user"))))
}

func groupsSchema() js {
	members := anyOf(null(), typ("string"), arrayOf(ref("string")))
	byName := js{"type": "object", "additionalProperties": members}
	return anyOf(null(), typ("string"), byName, arrayOf(anyOf(typ("string"), byName)))
}

func chpasswdSchema() js {
	user := object(map[string]js{
		"name":     ref("string"),
		"type":     js{"enum": []any{"hash", "text", "RANDOM"}, "description": "hash (default), text or RANDOM."},
		"password": ref("string"),
	}, "name")
	// A password is needed unless the type is RANDOM.
	user["anyOf"] = []js{{"required": []string{"password"}}, {"required": []string{"type"}, "properties": js{"type": js{"const": "RANDOM"}}}}
	line := js{"type": "string", "pattern": ":"}
	// Every line that is not blank holds a ':'.
	lines := js{"type": "string", "pattern": `^([ \t\r\f\v]*(\n|$)|[^\n]*:[^\n]*(\n|$))*$`}
	return nullable(object(map[string]js{
		"users":  nullable(arrayOf(user)),
		"list":   withDesc(anyOf(null(), lines, arrayOf(line)), "Legacy: user:password lines; R or RANDOM for a random password."),
		"expire": withDesc(ref("boolean"), "Expire the passwords set (default true)."),
	}))
}

func writeFileSchema() js {
	encodings := []string{"text/plain", "gz", "gzip", "gz+base64", "gzip+base64", "gz+b64", "gzip+b64", "b64", "base64"}
	return object(map[string]js{
		"path":    withDesc(anyOf(js{"type": "string", "minLength": 1}, typ("number")), "Absolute path of the file in the target."),
		"content": typ("string", "number", "boolean", "null"),
		"encoding": withDesc(anyOf(null(), js{"type": "string", "pattern": caseless(append([]string{""}, encodings...)...)}),
			"How content is encoded: "+strings.Join(encodings, ", ")+" (any case)."),
		"source": nullable(object(map[string]js{
			"uri":     ref("string"),
			"headers": ignored("write_files.source.headers"),
		})),
		"owner": withDesc(nullable(ref("string")), "user or user:group (default root:root)."),
		"permissions": withDesc(anyOf(null(),
			js{"type": "number", "minimum": 0, "exclusiveMaximum": 0o10000},
			js{"type": "string", "pattern": `^\s*\+?(0[oO])?(?=[0-7_]*[0-7])[0_]*([0-7]_*){0,4}\s*$`}),
			"The mode: an octal string (\"0644\", \"0o644\") or a YAML octal integer (0644); 644 is decimal, and warned about."),
		"append": ref("boolean"),
		"defer":  withDesc(ref("boolean"), "Write after users and packages are in place."),
	}, "path")
}

func packagesSchema() js {
	pair := js{"type": "array", "minItems": 1, "maxItems": 2, "items": ref("string")}
	return nullable(arrayOf(anyOf(typ("string"), pair, typ("object"))))
}

func repoSchema(required ...string) js {
	r := object(map[string]js{"enabled": nullable(ref("boolean")), "gpgcheck": nullable(ref("boolean"))}, required...)
	r["allOf"] = []js{ref("repoOptions")}
	return r
}

func zypperSchema() js {
	repo := repoSchema("id", "baseurl")
	props := repo["properties"].(map[string]js)
	props["autorefresh"] = nullable(ref("boolean"))
	props["id"], props["baseurl"] = ref("string"), ref("string")
	return nullable(object(map[string]js{
		"repos":  nullable(arrayOf(repo)),
		"config": ignored("zypper.config"),
	}))
}

func yumReposSchema() js {
	repo := repoSchema()
	repo["anyOf"] = []js{{"required": []string{"baseurl"}}, {"required": []string{"metalink"}}, {"required": []string{"mirrorlist"}}}
	return nullable(js{"type": "object", "additionalProperties": repo})
}

func aptSchema() js {
	src := repoSchema()
	src["anyOf"] = []js{{"required": []string{"source"}}, {"required": []string{"key"}}, {"required": []string{"keyid"}}}
	return nullable(object(map[string]js{"sources": nullable(js{"type": "object", "additionalProperties": src})}))
}

func keyboardSchema() js {
	s := ref("string")
	layout := anyOf(js{"type": "string", "minLength": 1}, typ("number"))
	return nullable(object(map[string]js{"layout": layout, "model": s, "variant": s, "options": s}, "layout"))
}

func ntpSchema() js {
	return nullable(object(map[string]js{"enabled": ref("boolean"), "servers": ref("stringOrList"), "pools": ref("stringOrList"),
		"peers": ref("stringOrList"), "allow": ref("stringOrList"),
		"ntp_client": js{"enum": []any{"auto", "chrony", "systemd-timesyncd", "ntp", "ntpdate"}},
		"config": object(map[string]js{"confpath": ref("string"), "service_name": ref("string"), "check_exe": ref("string"),
			"packages": arrayOf(ref("string")), "template": js{"not": js{}, "description": "Jinja: not supported by provision (an error)."}}),
	}))
}

// mountsSchema: an entry that is not a list is ignored with a warning,
// as cloud-init does, so only lists are held to the fields.
func mountsSchema() js {
	field := anyOf(null(), typ("string"), typ("integer"), typ("number"))
	return nullable(arrayOf(js{"if": typ("array"), "then": js{"items": field, "minItems": 1, "maxItems": 6}}))
}

func mountDefaultsSchema() js {
	return nullable(js{"type": "array", "items": anyOf(null(), typ("string"), typ("integer")), "minItems": 6, "maxItems": 6})
}

func swapSchema() js {
	size := anyOf(null(), js{"const": "auto"}, js{"type": "integer", "minimum": 0}, js{"type": "string", "pattern": `^(([0-9]+)?\.?[0-9]+[BKMGT](i?B)?|[0-9]+)$`})
	// Not a mapping: ignored with a warning, as cloud-init does.
	return anyOf(js{"not": typ("object")}, object(map[string]js{"filename": ref("string"), "size": size, "maxsize": size}))
}

func vendorDataSchema() js {
	// Not a mapping: a warning, and vendor data is disabled; so no "type".
	return js{"properties": js{
		"enabled":           withDesc(js{}, "Any truthy value enables (default true)."),
		"disabled_handlers": ref("stringList"),
	}}
}

// SchemaDescription says how the schema relates to provision; it is the
// schema's own description.
const SchemaDescription = `The cloud-config keys provision reads, with the types its parser accepts: a document this schema rejects, provision rejects too. ` +
	`Keys cloud-init knows but provision ignores are listed with "deprecated": true and a description saying so; they draw a warning. ` +
	`Unknown keys are allowed (a warning; an error with provision validate --strict), as in cloud-init.`

// Schema returns the JSON Schema (draft-07, which every editor's YAML
// support reads) of the cloud-config keys in cloudConfigKeys.
func Schema() []byte {
	props := map[string]js{}
	for name, k := range cloudConfigKeys() {
		s := js{}
		if k.schema != nil {
			s = withDesc(k.schema, k.desc)
		} else {
			s["description"] = k.desc
		}
		if k.status == keyIgnored {
			s["deprecated"] = true
		}
		props[name] = s
	}
	doc := js{
		"$schema":              "http://json-schema.org/draft-07/schema#",
		"title":                "provision cloud-config",
		"description":          SchemaDescription,
		"type":                 "object",
		"properties":           props,
		"additionalProperties": true,
		"definitions":          definitions(),
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		panic(fmt.Sprintf("cloudinit: the schema does not marshal: %v", err)) // a bug in the tables above
	}
	return append(out, '\n')
}

// knownKeys lists the table's keys of the given statuses, sorted.
func knownKeys(statuses ...keyStatus) []string {
	var out []string
	for name, k := range cloudConfigKeys() {
		for _, s := range statuses {
			if k.status == s {
				out = append(out, name)
			}
		}
	}
	sort.Strings(out)
	return out
}

// yamlToPlain decodes a cloud-config the way the parser reads it (YAML 1.1
// scalars) into plain values for a JSON Schema validator.
func yamlToPlain(data []byte) (any, error) {
	n, err := parseYAML(data, config.Origin{}, func(config.Origin, string) {})
	if err != nil {
		return nil, err
	}
	return n.plain(), nil
}
