// Package network turns the network documents of a config (cloud-init v1
// and v2, OpenStack network_data.json, EC2 interface metadata) into a small
// model and renders it for the target's own stack: NetworkManager keyfiles
// or systemd-networkd files. cloud-init's renderers set the file names and
// layout; where they lose settings (global DNS and routes, metrics, bond and
// bridge options, MTU, .netdev files) this package keeps them.
package network

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/provision/config"
)

// Document formats (config.NetworkDoc.Format).
const (
	FormatV1        = "cloud-init-v1"
	FormatV2        = "cloud-init-v2"
	FormatOpenStack = "openstack-network-data"
	FormatEC2       = "ec2-metadata"
)

// Parse reads one network document into a resolved model. Errors carry the
// document's origin and the path of the offending key.
func Parse(doc config.NetworkDoc) (*Model, error) {
	var m *Model
	var err error
	switch doc.Format {
	case FormatV1:
		m, err = parseV1(doc.Data)
	case FormatV2:
		m, err = parseV2(doc.Data)
	case FormatOpenStack:
		m, err = parseOpenStack(doc.Data)
	case FormatEC2:
		m, err = parseEC2(doc.Data)
	default:
		err = fmt.Errorf("unknown network config format %q", doc.Format)
	}
	if err == nil {
		err = m.Resolve()
	}
	if err != nil {
		origin := doc.Origin
		var pe *pathError
		if errors.As(err, &pe) {
			origin = doc.At(pe.path)
		}
		return nil, &config.Error{Origin: origin, Message: "network: " + err.Error()}
	}
	return m, nil
}

// Stack is a network configuration system a target can have.
type Stack string

// The stacks we render for.
const (
	NetworkManager Stack = "NetworkManager"
	Networkd       Stack = "systemd-networkd"
)

var (
	nmMarkers = []string{
		"/usr/bin/nmcli", "/usr/sbin/NetworkManager",
		"/usr/lib/systemd/system/NetworkManager.service", "/lib/systemd/system/NetworkManager.service",
		"/etc/systemd/system/NetworkManager.service",
	}
	networkdMarkers = []string{
		"/usr/lib/systemd/systemd-networkd", "/lib/systemd/systemd-networkd",
		"/usr/lib/systemd/system/systemd-networkd.service", "/lib/systemd/system/systemd-networkd.service",
	}
)

// ErrNoStack means the target has neither NetworkManager nor
// systemd-networkd.
var ErrNoStack = errors.New("the target has neither NetworkManager nor systemd-networkd")

// DetectStack picks the stack by what the target has: NetworkManager first
// (the MicroOS default), else systemd-networkd.
func DetectStack(root *rootfs.Root) (Stack, error) {
	for _, p := range nmMarkers {
		if _, err := root.Stat(p); err == nil {
			return NetworkManager, nil
		}
	}
	for _, p := range networkdMarkers {
		if _, err := root.Stat(p); err == nil {
			return Networkd, nil
		}
	}
	return "", ErrNoStack
}

// Render renders m for stack.
func Render(m *Model, stack Stack) ([]File, error) {
	if stack == Networkd {
		return RenderNetworkd(m)
	}
	return RenderNM(m)
}

// Plan renders the highest-precedence network document (cloud-init uses
// exactly one network configuration) for the target's stack; the others are
// listed as superseded. Without a root (a dry run of a seed alone) the plan
// shows NetworkManager's files, the MicroOS default. Files the target
// already has with the same content and mode are left out.
func Plan(cfg *config.Config, root *rootfs.Root) ([]modules.Step, error) {
	if len(cfg.Network) == 0 {
		return nil, nil
	}
	doc := cfg.Network[0]
	var steps []modules.Step
	noop := func(context.Context, *modules.Env) error { return nil }
	for _, other := range cfg.Network[1:] {
		steps = append(steps, modules.Step{
			Module: "network", Action: "ignore", Target: other.Format,
			Detail: "superseded by " + doc.Origin.String(), Origin: other.Origin, Apply: noop,
		})
	}
	if doc.Disabled {
		return append([]modules.Step{{
			Module: "network", Action: "leave unconfigured", Target: "(config: disabled)",
			Origin: doc.Origin, Apply: noop,
		}}, steps...), nil
	}
	m, err := Parse(doc)
	if err != nil {
		return nil, err
	}
	stack, assumed := NetworkManager, true
	if root != nil {
		if stack, err = DetectStack(root); err != nil {
			// EC2's interface metadata is a fallback nobody asked for: a
			// target without a network stack keeps its own arrangements.
			// A network configuration the user gave must be applied.
			if doc.Format == FormatEC2 && errors.Is(err, ErrNoStack) {
				return append([]modules.Step{{
					Module: "network", Action: "leave unconfigured", Target: "(EC2 interface metadata)",
					Detail: err.Error(), Origin: doc.Origin, Apply: noop,
				}}, steps...), nil
			}
			return nil, fmt.Errorf("%s: network: %w", doc.Origin, err)
		}
		assumed = false
	}
	files, err := Render(m, stack)
	if err != nil {
		return nil, fmt.Errorf("%s: network: %w", doc.Origin, err)
	}
	var out []modules.Step
	for _, f := range files {
		if root != nil {
			same, err := unchanged(root, f)
			if err != nil {
				return nil, fmt.Errorf("%s: network: %s: %w", doc.Origin, f.Path, err)
			}
			if same {
				continue
			}
		}
		detail := string(stack) + ": " + f.Detail
		if assumed {
			detail += "; stack assumed, no target root"
		}
		out = append(out, writeStep(f, detail, doc.Origin))
	}
	return append(out, steps...), nil
}

func unchanged(root *rootfs.Root, f File) (bool, error) {
	st, err := root.Lstat(f.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !st.Mode().IsRegular() || st.Mode().Perm() != f.Mode {
		return false, nil
	}
	old, err := root.ReadFile(f.Path)
	if err != nil {
		return false, err
	}
	return bytes.Equal(old, f.Data), nil
}

func writeStep(f File, detail string, origin config.Origin) modules.Step {
	return modules.Step{
		Module: "network",
		Action: "write",
		Target: f.Path,
		Detail: detail,
		Origin: origin,
		Apply: func(_ context.Context, env *modules.Env) error {
			if err := env.Root.WriteFile(f.Path, f.Data, f.Mode, rootfs.RootOwner); err != nil {
				return fmt.Errorf("%s: network: write %s: %w", origin, f.Path, err)
			}
			return nil
		},
	}
}
