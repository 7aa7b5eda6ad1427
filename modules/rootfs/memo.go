package rootfs

import (
	"path/filepath"
	"strings"
)

// memoEntry is a value parsed from files of the target, with the host
// paths whose change makes it stale.
type memoEntry struct {
	value any
	hosts []string
	// fragile: a dep resolved through a symlink (see Memo).
	fragile bool
}

// Memo returns what load made of the files deps (paths inside the root),
// loading it only when no change since the last load could have touched
// them: a run reads the target's account databases once, not once per
// file whose owner it resolves.
//
// A change through this Root (preserve, which sees every one first) drops
// the memos whose files, or a directory above them, it touches; Forget
// drops them all, and must be called when something else may have written
// the target (a program run in it). The value is shared: callers must not
// change it, and copy it when they would.
func (r *Root) Memo(key string, deps []string, load func() (any, error)) (any, error) {
	r.memoMu.Lock()
	e, ok := r.memo[key]
	r.memoMu.Unlock()
	if ok {
		return e.value, nil
	}
	v, err := load()
	if err != nil {
		return nil, err
	}
	hosts := make([]string, 0, len(deps))
	fragile := false
	for _, p := range deps {
		lexical := filepath.Join(r.Dir, Join(p))
		hosts = append(hosts, lexical)
		// A path reached through a symlink depends on every link on the
		// way, which need not lie on either path: any change drops it.
		if h, err := r.ResolveFollow(p); err != nil || h != lexical {
			fragile = true
		}
	}
	r.memoMu.Lock()
	defer r.memoMu.Unlock()
	if r.memo == nil {
		r.memo = map[string]memoEntry{}
	}
	r.memo[key] = memoEntry{value: v, hosts: hosts, fragile: fragile}
	return v, nil
}

// Forget drops every memo: the target may have changed behind this Root.
func (r *Root) Forget() {
	r.memoMu.Lock()
	r.memo, r.dirs, r.absent, r.made, r.mountsOK, r.rootIDKnown = nil, nil, nil, nil, nil, false
	r.memoMu.Unlock()
}

// knownDir reports whether rel (relative to the root) was found to be a
// directory, not a symlink, since the last change that could make it one:
// resolution then skips its lstat (a run resolves /etc, /home/alice...
// for every file it writes).
func (r *Root) knownDir(rel string) bool { return r.inSet(&r.dirs, rel) }

// knownHostDir is knownDir for a host path below the root.
func (r *Root) knownHostDir(host string) bool {
	rel, ok := strings.CutPrefix(host, r.Dir+"/")
	return ok && r.knownDir(rel)
}

func (r *Root) rememberDir(rel string) { r.addToSet(&r.dirs, rel) }

// inSet and addToSet are the look-up and the insertion, under memoMu, of
// the Root's sets of paths (dirs, absent, made); a set is made on its
// first insertion, and dropped whole by setting it nil.
func (r *Root) inSet(set *map[string]struct{}, key string) bool {
	r.memoMu.Lock()
	_, ok := (*set)[key]
	r.memoMu.Unlock()
	return ok
}

func (r *Root) addToSet(set *map[string]struct{}, key string) {
	r.memoMu.Lock()
	if *set == nil {
		*set = map[string]struct{}{}
	}
	(*set)[key] = struct{}{}
	r.memoMu.Unlock()
}

// knownAbsent reports whether rel (relative to the root) was found
// missing since the last change through this Root: resolution then takes
// it, and everything below it, as missing without an lstat (a run looks
// up /etc/bench for each of the files it is about to create there, while
// planning and announcing them).
//
// A stale entry is harmless as long as nothing made since is a symlink:
// a missing component and a directory or file resolve to the same path.
// So every change through the Root drops them all (forgetChanged, and the
// link calls after making their link), as do Forget (a program may have
// made one).
func (r *Root) knownAbsent(rel string) bool { return r.inSet(&r.absent, rel) }

func (r *Root) rememberAbsent(rel string) { r.addToSet(&r.absent, rel) }

// forgetAbsent drops what knownAbsent knows.
func (r *Root) forgetAbsent() {
	r.memoMu.Lock()
	r.absent = nil
	r.memoMu.Unlock()
}

// madeDir reports whether host is a directory this Root made (MkdirAll,
// or a missing parent of a write) and has not removed since: a file new
// in it replaces nothing of the target's (writeNew).
func (r *Root) madeDir(host string) bool { return r.inSet(&r.made, host) }

// forgetMade drops the made directories at and below host, which is
// removed. Other changes of a made directory (its mode, its owner) leave it
// the one the run made: through a Root only removal takes a directory away
// (a write or a link refuses to replace one), and what is run in the
// target is followed by Forget.
func (r *Root) forgetMade(host string) {
	r.memoMu.Lock()
	for d := range r.made {
		if within(d, host) {
			delete(r.made, d)
		}
	}
	r.memoMu.Unlock()
}

func (r *Root) rememberMade(host string) {
	r.forgetAbsent() // host exists now
	r.addToSet(&r.made, host)
}

// forgetChanged drops the memos that a change of host may make stale: the
// path itself, anything below it, or a directory above one of their files
// (a symlink made there is such a change); a memo of a path that resolved
// through a symlink goes at any change. The directories known to
// resolution are dropped at and below host, the missing ones all.
func (r *Root) forgetChanged(host string) {
	r.memoMu.Lock()
	defer r.memoMu.Unlock()
	r.absent = nil
	if rel, ok := strings.CutPrefix(host, r.Dir+"/"); ok {
		for d := range r.dirs {
			if within(d, rel) {
				delete(r.dirs, d)
			}
		}
	} else if len(r.dirs) > 0 {
		r.dirs = nil // the root itself
	}
	for key, e := range r.memo {
		if e.fragile {
			delete(r.memo, key)
			continue
		}
		for _, h := range e.hosts {
			if within(h, host) || within(host, h) {
				delete(r.memo, key)
				break
			}
		}
	}
}
