package rootfstest

import (
	"context"
	"io/fs"
	"testing"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/provision/config"
)

func TestNewRoot(t *testing.T) {
	r := NewRoot(t, map[string]string{
		"etc/hostname":  "h\n",
		"var/empty/":    "",
		"etc/localtime": "->/usr/share/zoneinfo/UTC",
	})
	if b, err := r.ReadFile("/etc/hostname"); err != nil || string(b) != "h\n" {
		t.Errorf("etc/hostname: %q, %v", b, err)
	}
	for p, want := range map[string]fs.FileMode{"/var/empty": fs.ModeDir, "/etc/localtime": fs.ModeSymlink, "/etc/hostname": 0} {
		fi, err := r.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Type(); got != want {
			t.Errorf("%s: type %v, want %v", p, got, want)
		}
	}
}

func TestApplyAndPlanText(t *testing.T) {
	r := NewRoot(t, nil)
	o := config.Origin{Source: "test", File: "f", Line: 3, Column: 1}
	steps := []modules.Step{{
		Module: "m", Action: "write", Target: "/a", Detail: "d", Origin: o,
		Apply: func(_ context.Context, env *modules.Env) error {
			env.Console.Write([]byte("wrote /a\n"))
			return env.Root.WriteFile("/a", []byte("x"), 0o644, rootfs.Owner{UID: -1, GID: -1}) // the caller's: runs unprivileged too
		},
	}}
	if got, want := string(PlanText(steps)), steps[0].String()+"\n"; got != want {
		t.Errorf("PlanText = %q, want %q", got, want)
	}
	if got := Apply(t, r, steps); got != "wrote /a\n" {
		t.Errorf("console %q", got)
	}
	if b, err := r.ReadFile("/a"); err != nil || string(b) != "x" {
		t.Errorf("/a: %q, %v", b, err)
	}
}
