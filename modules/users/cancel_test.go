package users

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/provision/config"
)

// Applying thousands of users stops at the next step once the context is
// done (SIGTERM), and the account databases, written once when their
// batch ends, are left as they were: nothing is half applied. The count of
// steps that ran after the cancel is the test.
func TestApplyManyUsersCancelled(t *testing.T) {
	const n, stopAfter = 2000, 500
	r := tree(t, baseTree)
	cfg := &config.Config{}
	for i := range n {
		cfg.Users = append(cfg.Users, config.User{Name: fmt.Sprintf("u%05d", i), Groups: []string{"users"}, Origin: origin})
	}
	steps, err := plan(cfg, r, func() time.Time { return day })
	must(t, err)
	if len(steps) < n {
		t.Fatalf("%d steps for %d users", len(steps), n)
	}
	before := map[string]string{}
	for _, p := range []string{"/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow"} {
		before[p] = read(t, r, p)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran, afterCancel := 0, 0
	for i, s := range steps {
		apply := s.Apply
		steps[i].Apply = func(ctx context.Context, env *modules.Env) error {
			if ran++; ran == stopAfter {
				cancel()
			}
			err := apply(ctx, env)
			if ran > stopAfter && err == nil {
				afterCancel++
			}
			return err
		}
	}
	env := &modules.Env{Root: r}
	err = modules.ApplyAll(ctx, env, steps)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("ApplyAll after cancel: %v, want context.Canceled", err)
	}
	if afterCancel != 0 || ran != stopAfter {
		t.Errorf("%d steps called, %d applied after the cancel; want %d and 0", ran, afterCancel, stopAfter)
	}
	for p, want := range before {
		if got := read(t, r, p); got != want {
			t.Errorf("%s changed by a cancelled run:\n%.200s", p, got)
		}
	}
	if r.Exists("/home/u00000") {
		t.Error("a home was made by a cancelled run")
	}
}
