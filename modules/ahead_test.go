package modules

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

// A value had ahead is computed once, whether Start came first, Get alone
// asked for it, or both raced; its error comes back with it.
func TestAhead(t *testing.T) {
	var calls atomic.Int32
	a := NewAhead(func() (int, error) { return int(calls.Add(1)), nil })
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(2)
		go func() { defer wg.Done(); a.Start() }()
		go func() {
			defer wg.Done()
			if v, err := a.Get(); v != 1 || err != nil {
				t.Errorf("Get = %d, %v; want 1, nil", v, err)
			}
		}()
	}
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Errorf("computed %d times, want once", n)
	}
	boom := errors.New("boom")
	b := NewAhead(func() (string, error) { return "", boom })
	if _, err := b.Get(); !errors.Is(err, boom) {
		t.Errorf("Get without Start: %v, want %v", err, boom)
	}
}
