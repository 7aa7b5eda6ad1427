// Package certs applies cloud-init's ca_certs to the target root: the
// trusted certificates are written where the target's trust store takes
// them, the distribution's own CAs are removed first when remove_defaults
// says so, and the target's update tool (update-ca-certificates,
// update-ca-trust) runs in the chroot to rebuild the bundles.
package certs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/provision/config"
)

// store is how one family of distributions keeps its trusted CAs, as
// cloud-init's cc_ca_certs knows them.
type store struct {
	name string
	// dir holds the added certificates; file names one file holding all
	// of them, or "" for one file per certificate (fileFmt, numbered).
	dir, file, fileFmt string
	// config lists the certificates update-ca-certificates takes from
	// dir (Debian's /etc/ca-certificates.conf); "" when none.
	config string
	// system is where the built bundles are; remove_defaults empties it.
	system string
	update []string // the tool, in the target's PATH
}

var (
	// Debian and Ubuntu: cloud-init's default configuration.
	debian = store{name: "debian", dir: "/usr/share/ca-certificates", file: "cloud-init-ca-certs.crt",
		config: "/etc/ca-certificates.conf", system: "/etc/ssl/certs", update: []string{"update-ca-certificates"}}
	// Fedora, RHEL and their rebuilds: p11-kit's source anchors.
	rhel = store{name: "rhel", dir: "/usr/share/pki/ca-trust-source", file: "anchors/cloud-init-ca-certs.crt",
		system: "/etc/pki/ca-trust", update: []string{"update-ca-trust"}}
	// openSUSE and SLE (cloud-init 23.1 added them): one anchor per
	// certificate, bundles in /var/lib/ca-certificates.
	suse = store{name: "suse", dir: "/etc/pki/trust", fileFmt: "anchors/cloud-init-ca-cert-%d.crt",
		system: "/var/lib/ca-certificates", update: []string{"update-ca-certificates"}}
)

// detect reads the target's trust store layout. Without a target the
// plan is for the MicroOS-like base system: openSUSE's.
func detect(root *rootfs.Root) store {
	switch {
	case root == nil:
		return suse
	case root.Exists("/etc/pki/trust") || root.Exists("/usr/share/pki/trust"):
		return suse
	case root.Exists("/etc/pki/ca-trust") || hasTool(root, "update-ca-trust"):
		return rhel
	default:
		return debian
	}
}

var binDirs = []string{"/usr/sbin", "/usr/bin", "/sbin", "/bin"}

func hasTool(root *rootfs.Root, name string) bool {
	for _, d := range binDirs {
		if root.Exists(path.Join(d, name)) {
			return true
		}
	}
	return false
}

// Plan returns the steps of cfg.CACerts: remove the defaults, write the
// certificates, run the update tool.
func Plan(cfg *config.Config, root *rootfs.Root) ([]modules.Step, error) {
	cc := cfg.CACerts
	if cc == nil {
		return nil, nil
	}
	st := detect(root)
	var steps []modules.Step
	if cc.RemoveDefaults {
		steps = append(steps, removeStep(cc, st))
		if st.name == "debian" && root != nil && hasTool(root, debconfTool) {
			steps = append(steps, debconfStep(cc))
		}
	}
	steps = append(steps, writeSteps(cc, st)...)
	if root != nil && !hasTool(root, st.update[0]) {
		// cloud-init's subp would fail: the certificates are in place for
		// whoever installs the tool, and the plan says so.
		if len(steps) > 0 {
			steps[len(steps)-1].Detail += "; the target has no " + st.update[0] + ": bundles not rebuilt"
		}
		return steps, nil
	}
	return append(steps, updateStep(cc, st)), nil
}

func removeStep(cc *config.CACerts, st store) modules.Step {
	detail := "the distribution's CAs: the contents of " + st.dir + " and " + st.system
	if st.config != "" {
		detail += ", and an empty " + st.config
	}
	return modules.Step{
		Module: "certs",
		Action: "remove default CA certificates",
		Target: st.dir,
		Detail: detail,
		Origin: cc.Origin,
		Apply: func(ctx context.Context, env *modules.Env) error {
			for _, d := range []string{st.dir, st.system} {
				if err := removeContents(env.Root, d); err != nil {
					return fmt.Errorf("%s: ca_certs.remove_defaults: %w", cc.Origin, err)
				}
			}
			if st.config != "" {
				if err := env.Root.WriteFile(st.config, nil, 0o644, rootfs.RootOwner); err != nil {
					return fmt.Errorf("%s: ca_certs.remove_defaults: %w", cc.Origin, err)
				}
			}
			return nil
		},
	}
}

// debconfTool answers debconf's questions from its standard input.
const debconfTool = "debconf-set-selections"

// debconfAnswer is what cloud-init's remove_defaults tells debconf on
// Debian and Ubuntu: ca-certificates must not trust the CAs a later
// upgrade of the package brings, or the removed defaults would come back
// with it.
const debconfAnswer = "ca-certificates ca-certificates/trust_new_crts select no"

func debconfStep(cc *config.CACerts) modules.Step {
	return modules.Step{
		Module: "certs",
		Action: "run",
		Target: debconfTool,
		Detail: "in the target: " + debconfAnswer + " (new CAs of a package upgrade not trusted)",
		Origin: cc.Origin,
		Apply: func(ctx context.Context, env *modules.Env) error {
			if env.Exec == nil {
				return fmt.Errorf("%s: ca_certs.remove_defaults: %s: %w", cc.Origin, debconfTool, modules.ErrNoExecutor)
			}
			code, err := env.Exec.Run(ctx, modules.Command{Argv: []string{debconfTool, "-"}, Dir: "/",
				Stdin: strings.NewReader(debconfAnswer + "\n"), Output: env.Console})
			if err != nil {
				return fmt.Errorf("%s: ca_certs.remove_defaults: %s: %w", cc.Origin, debconfTool, err)
			}
			if code != 0 {
				return fmt.Errorf("%s: ca_certs.remove_defaults: %s exited with status %d", cc.Origin, debconfTool, code)
			}
			return nil
		},
	}
}

// removeContents deletes everything below dir, keeping dir itself, as
// cloud-init's delete_dir_contents; each removal goes through the root
// so the run can still be undone.
func removeContents(root *rootfs.Root, dir string) error {
	entries, err := root.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		p := path.Join(dir, e.Name())
		if e.IsDir() {
			if err := removeContents(root, p); err != nil {
				return err
			}
		}
		if err := root.Remove(p); err != nil {
			return err
		}
	}
	return nil
}

func writeSteps(cc *config.CACerts, st store) []modules.Step {
	if len(cc.Trusted) == 0 {
		return nil
	}
	if st.fileFmt != "" {
		var steps []modules.Step
		for i, c := range cc.Trusted {
			p := path.Join(st.dir, fmt.Sprintf(st.fileFmt, i+1))
			steps = append(steps, writeStep(c.Origin, p, []byte(c.PEM), "1 certificate"))
		}
		return steps
	}
	// One file of every certificate, joined by newlines, as cloud-init
	// writes it, and its name in Debian's list of enabled certificates.
	var pems []string
	for _, c := range cc.Trusted {
		pems = append(pems, c.PEM)
	}
	p := path.Join(st.dir, st.file)
	steps := []modules.Step{writeStep(cc.Trusted[0].Origin, p, []byte(strings.Join(pems, "\n")), fmt.Sprintf("%d certificates", len(pems)))}
	if st.config != "" {
		steps = append(steps, configStep(cc, st))
	}
	return steps
}

func writeStep(o config.Origin, p string, data []byte, detail string) modules.Step {
	return modules.Step{
		Module: "certs",
		Action: "write CA certificate",
		Target: p,
		Detail: detail + ", mode 0644",
		Origin: o,
		Apply: func(ctx context.Context, env *modules.Env) error {
			if err := env.Root.WriteFile(p, data, 0o644, rootfs.RootOwner); err != nil {
				return fmt.Errorf("%s: ca_certs: %w", o, err)
			}
			return nil
		},
	}
}

// configStep adds the file to /etc/ca-certificates.conf once, at the end,
// without blank lines (update-ca-certificates stops reading at one).
func configStep(cc *config.CACerts, st store) modules.Step {
	return modules.Step{
		Module: "certs",
		Action: "enable CA certificate",
		Target: st.config,
		Detail: st.file,
		Origin: cc.Origin,
		Apply: func(ctx context.Context, env *modules.Env) error {
			old, err := env.Root.ReadFile(st.config)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("%s: ca_certs: %w", cc.Origin, err)
			}
			if err := env.Root.WriteFile(st.config, enableCert(old, st.file), 0o644, rootfs.RootOwner); err != nil {
				return fmt.Errorf("%s: ca_certs: %w", cc.Origin, err)
			}
			return nil
		},
	}
}

// enableCert is cloud-init's update_cert_config: the name once, last.
func enableCert(old []byte, name string) []byte {
	if len(old) == 0 {
		return []byte(name + "\n")
	}
	var keep []string
	for _, l := range strings.Split(strings.TrimRight(string(old), "\n"), "\n") {
		if l != name {
			keep = append(keep, l)
		}
	}
	return []byte(strings.TrimRight(strings.Join(keep, "\n"), " \t\r\n") + "\n" + name + "\n")
}

// updateStep runs the target's tool in the chroot: the bundles programs
// read (/etc/ssl/certs/ca-certificates.crt, /var/lib/ca-certificates/...)
// are built from the sources the steps before wrote.
func updateStep(cc *config.CACerts, st store) modules.Step {
	what := strings.Join(st.update, " ")
	return modules.Step{
		Module: "certs",
		Action: "run",
		Target: what,
		Detail: "in the target (" + st.name + " trust store), needs the chroot",
		Origin: cc.Origin,
		Apply: func(ctx context.Context, env *modules.Env) error {
			if env.Exec == nil {
				return fmt.Errorf("%s: ca_certs: %s: %w", cc.Origin, what, modules.ErrNoExecutor)
			}
			code, err := env.Exec.Run(ctx, modules.Command{Argv: st.update, Dir: "/", Output: env.Console})
			if err != nil {
				return fmt.Errorf("%s: ca_certs: %s: %w", cc.Origin, what, err)
			}
			if code != 0 {
				return fmt.Errorf("%s: ca_certs: %s exited with status %d", cc.Origin, what, code)
			}
			return nil
		},
	}
}
