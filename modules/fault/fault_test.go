package fault

import (
	"errors"
	"sync"
	"syscall"
	"testing"
)

// reset makes At read the environment again.
func reset(t *testing.T, spec string) {
	t.Helper()
	t.Setenv(Env, spec)
	state.once = sync.Once{}
	state.rules, state.calls, state.trace, state.bad = nil, nil, false, nil
	t.Cleanup(func() { state.once = sync.Once{} })
}

func TestAtCountsAndErrnos(t *testing.T) {
	reset(t, "write#2:ENOSPC,mount:EPERM")
	if err := At(PointWrite); err != nil {
		t.Fatalf("first write failed: %v", err)
	}
	if err := At(PointWrite); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("second write: %v, want ENOSPC", err)
	}
	if err := At(PointWrite); err != nil {
		t.Fatalf("third write failed: %v", err)
	}
	for i := 0; i < 3; i++ {
		if err := At(PointMount); !errors.Is(err, syscall.EPERM) {
			t.Fatalf("mount %d: %v, want EPERM every time", i+1, err)
		}
	}
	if err := At(PointRename); err != nil {
		t.Fatalf("a point without a rule failed: %v", err)
	}
}

func TestUnsetNeverFails(t *testing.T) {
	reset(t, "")
	for _, p := range Points() {
		if err := At(p); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
	}
}

// A rule that cannot be read fails every call: a test with a typo must
// not pass for the wrong reason.
func TestBadRuleFailsLoudly(t *testing.T) {
	for _, spec := range []string{"write", "write:ENOPE", "write#0:EIO", "write#x:EIO"} {
		reset(t, spec)
		if err := At(PointRename); err == nil {
			t.Errorf("%q: no error", spec)
		}
	}
}
