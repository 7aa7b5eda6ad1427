package modules

import "sync"

// Ahead is a value a step's Apply needs that takes milliseconds of CPU and
// depends on nothing the transaction writes (a password's hash, a host
// key): Start, the step's Prefetch, computes it on a goroutine of its own
// once the plan stands; Get waits for it, or computes it here when Start
// was never called (a dry run's plan, a test, a tool).
type Ahead[T any] struct {
	compute func() (T, error)
	once    sync.Once
	done    chan struct{}
	value   T
	err     error
}

// NewAhead returns compute's value to be had ahead.
func NewAhead[T any](compute func() (T, error)) *Ahead[T] {
	return &Ahead[T]{compute: compute, done: make(chan struct{})}
}

// Start begins computing the value, once.
func (a *Ahead[T]) Start() {
	a.once.Do(func() {
		go func() {
			defer close(a.done)
			a.value, a.err = a.compute()
		}()
	})
}

// Get returns the value, starting it first if nobody did.
func (a *Ahead[T]) Get() (T, error) {
	a.Start()
	<-a.done
	return a.value, a.err
}
