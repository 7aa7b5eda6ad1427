package system

import (
	"fmt"
	"strings"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/provision/config"
)

// DefaultKeyboardModel is cloud-init's cc_keyboard default.
const DefaultKeyboardModel = "pc105"

// Where distributions keep the console keymaps converted from XKB layouts
// (newer kbd / xkeyboard-config packaging; systemd-localed looks there
// first) and systemd's X11 → console keymap table.
var (
	xkbKeymapDirs = []string{"/usr/share/kbd/keymaps/xkb", "/usr/lib/kbd/keymaps/xkb", "/usr/share/keymaps/xkb"}
	kbdModelMaps  = []string{"/usr/share/systemd/kbd-model-map", "/usr/lib/systemd/kbd-model-map"}
)

// consoleKeymap picks the console keymap for an X11 layout the way
// `localectl set-x11-keymap` converts it: a keymap converted from that XKB
// layout(-variant) if the target has one, else the best line of the
// target's kbd-model-map (the layout must match; model, variant and
// options break ties), else the layout name itself.
func consoleKeymap(root *rootfs.Root, k config.Keyboard, model string) (keymap, how string) {
	if root == nil {
		return k.Layout, "console keymap named after the layout"
	}
	var names []string
	if k.Variant != "" {
		names = append(names, k.Layout+"-"+k.Variant)
	}
	names = append(names, k.Layout)
	for _, n := range names {
		for _, d := range xkbKeymapDirs {
			for _, ext := range []string{".map.gz", ".map"} {
				if root.Exists(d + "/" + n + ext) {
					return n, "converted keymap " + d + "/" + n + ext
				}
			}
		}
	}
	for _, p := range kbdModelMaps {
		data, err := root.ReadFile(p)
		if err != nil {
			continue
		}
		if km := bestLegacyKeymap(data, k, model); km != "" {
			return km, "from " + p
		}
	}
	return k.Layout, "no conversion known in the target; console keymap named after the layout"
}

func dash(s string) string {
	if s == "-" {
		return ""
	}
	return s
}

// bestLegacyKeymap scores kbd-model-map lines ("consolelayout xlayout
// xmodel xvariant xoptions", "-" for empty) against the request.
func bestLegacyKeymap(data []byte, k config.Keyboard, model string) string {
	best, bestScore := "", 0
	for _, line := range lines(data) {
		f := strings.Fields(line)
		if len(f) < 5 || strings.HasPrefix(f[0], "#") {
			continue
		}
		score := 0
		switch {
		case f[1] == k.Layout:
			score = 10
		case strings.SplitN(f[1], ",", 2)[0] == k.Layout:
			score = 5
		default:
			continue
		}
		if dash(f[2]) == model {
			score++
		}
		if dash(f[3]) == k.Variant {
			score++
		}
		if dash(f[4]) == k.Options {
			score++
		}
		if score > bestScore {
			best, bestScore = f[0], score
		}
	}
	return best
}

const xorgHeader = "# Written by provision from the keyboard configuration, in the layout\n" +
	"# systemd-localed(8) writes and reads. Prefer localectl(1) for changes.\n"

// renderXorgKeyboard is the InputClass section `localectl set-x11-keymap`
// writes; empty values are left out, as localed does.
func renderXorgKeyboard(k config.Keyboard, model string) []byte {
	var b strings.Builder
	b.WriteString(xorgHeader)
	b.WriteString("Section \"InputClass\"\n" +
		"        Identifier \"system-keyboard\"\n" +
		"        MatchIsKeyboard \"on\"\n")
	for _, o := range []struct{ name, value string }{
		{"XkbLayout", k.Layout}, {"XkbModel", model}, {"XkbVariant", k.Variant}, {"XkbOptions", k.Options},
	} {
		if o.value != "" {
			fmt.Fprintf(&b, "        Option \"%s\" \"%s\"\n", o.name, o.value)
		}
	}
	b.WriteString("EndSection\n")
	return []byte(b.String())
}

func planKeyboard(s *config.System, root *rootfs.Root) ([]modules.Step, error) {
	k := s.Keyboard
	if !k.IsSet() {
		return nil, nil
	}
	for _, v := range []string{k.Layout, k.Model, k.Variant, k.Options} {
		if !validValue(v) {
			return nil, fmt.Errorf("%s: invalid keyboard setting %q", k.Origin, v)
		}
	}
	model := k.Model
	if model == "" {
		model = DefaultKeyboardModel
	}
	keymap, how := consoleKeymap(root, k, model)
	vconsoleKeys := []string{"KEYMAP", "XKBLAYOUT", "XKBMODEL", "XKBVARIANT", "XKBOPTIONS"}
	edits := []edit{
		{
			action: "set keymap",
			path:   "/etc/vconsole.conf",
			origin: k.Origin,
			detail: "KEYMAP=" + keymap + " (" + how + ")",
			render: func(old []byte, r *rootfs.Root) ([]byte, error) {
				// Recomputed against the target being written: planning may
				// have run without one.
				km, _ := consoleKeymap(r, k, model)
				// systemd ≥ 253 keeps the X11 settings in vconsole.conf too;
				// older versions ignore keys they do not know.
				return setEnvKeys(old, vconsoleKeys, map[string]string{
					"KEYMAP": km, "XKBLAYOUT": k.Layout, "XKBMODEL": model,
					"XKBVARIANT": k.Variant, "XKBOPTIONS": k.Options,
				}, false), nil
			},
		},
		{
			action: "set X11 keymap",
			path:   "/etc/X11/xorg.conf.d/00-keyboard.conf",
			origin: k.Origin,
			detail: strings.TrimSuffix(strings.Join([]string{k.Layout, model, k.Variant, k.Options}, " "), " "),
			render: func([]byte, *rootfs.Root) ([]byte, error) { return renderXorgKeyboard(k, model), nil },
		},
		{
			// Debian's console-setup and X read /etc/default/keyboard
			// (cloud-init's Debian support writes only this file).
			action:       "set keymap",
			path:         "/etc/default/keyboard",
			origin:       k.Origin,
			detail:       "XKBLAYOUT=" + k.Layout,
			onlyIfExists: true,
			render: func(old []byte, _ *rootfs.Root) ([]byte, error) {
				return setEnvKeys(old, []string{"XKBMODEL", "XKBLAYOUT", "XKBVARIANT", "XKBOPTIONS"}, map[string]string{
					"XKBMODEL": model, "XKBLAYOUT": k.Layout, "XKBVARIANT": k.Variant, "XKBOPTIONS": k.Options,
				}, true), nil
			},
		},
	}
	var steps []modules.Step
	for _, e := range edits {
		st, err := e.plan(root)
		if err != nil {
			return nil, err
		}
		steps = append(steps, st...)
	}
	return steps, nil
}
