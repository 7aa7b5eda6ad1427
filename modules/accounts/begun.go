package accounts

import "sync"

// A SHA-crypt hash of a password takes a millisecond or two of CPU (5000
// rounds by default, more where login.defs asks). A run knows its
// plain-text passwords as soon as the configuration is parsed, long before
// a step sets one; BeginHash lets the engine start the hash then, on
// another core, and HashPassword takes the result when the method it is
// asked for is the one the hash was begun with.
//
// The hashes begun and not yet taken, by password. A hash is taken once:
// each carries its own random salt, as each HashPassword call does.
var begun struct {
	sync.Mutex
	byPlain map[string][]*begunHash
}

type begunHash struct {
	done   chan struct{}
	method HashMethod // effective; zero when reading it failed
	hash   string
	err    error
}

// BeginHash starts hashing plain with the method method returns (read from
// the target on that goroutine too), unless a hash of plain is already
// begun and not taken. Nothing waits for it: a HashPassword of plain takes
// it, and an untaken one is only a wasted millisecond.
func BeginHash(plain string, method func() (HashMethod, error)) {
	begun.Lock()
	defer begun.Unlock()
	if len(begun.byPlain[plain]) > 0 {
		return
	}
	if begun.byPlain == nil {
		begun.byPlain = map[string][]*begunHash{}
	}
	b := &begunHash{done: make(chan struct{})}
	begun.byPlain[plain] = append(begun.byPlain[plain], b)
	go func() {
		defer close(b.done)
		m, err := method()
		if err != nil {
			b.err = err
			return
		}
		b.method = m.effective()
		b.hash, b.err = hashNow(b.method, plain)
	}()
}

// takeBegun returns a begun hash of plain made with method m (effective),
// waiting for it to finish; false when none was begun, or it failed, or it
// used another method (the target's settings changed in between).
func takeBegun(m HashMethod, plain string) (string, bool) {
	begun.Lock()
	q := begun.byPlain[plain]
	if len(q) == 0 {
		begun.Unlock()
		return "", false
	}
	b := q[0]
	if len(q) == 1 {
		delete(begun.byPlain, plain)
	} else {
		begun.byPlain[plain] = q[1:]
	}
	begun.Unlock()
	<-b.done
	if b.err != nil || !sameCost(b.method, m) {
		return "", false
	}
	return b.hash, true
}

// sameCost reports whether hashes made with a and b are interchangeable:
// the scheme and its rounds (From only names where it was read).
func sameCost(a, b HashMethod) bool {
	return a.Name == b.Name && a.Rounds == b.Rounds && a.MaxRounds == b.MaxRounds
}
