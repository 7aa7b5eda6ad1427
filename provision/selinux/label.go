package selinux

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// xattrName is where the kernel keeps a file's context.
const xattrName = "security.selinux"

// Label sets the context the policy assigns to targetPath (the path as the
// booted system sees it) on hostPath, which is where that file is reachable
// now. Symbolic links are labelled themselves, never followed. A path the
// policy does not label (no match, <<none>>) is left as it is.
func (p *Policy) Label(hostPath, targetPath string) error {
	if p == nil {
		return nil
	}
	fi, err := os.Lstat(hostPath)
	if err != nil {
		return fmt.Errorf("selinux label %s: %w", targetPath, err)
	}
	ctx, ok := p.Lookup(targetPath, fi.Mode())
	if !ok {
		return nil
	}
	// setfiles (lsetfilecon) writes the context with its terminating NUL;
	// write the same bytes so a later "setfiles -n" sees no difference.
	val := append([]byte(ctx), 0)
	if err := unix.Lsetxattr(hostPath, xattrName, val, 0); err != nil {
		return fmt.Errorf("selinux label %s as %s (from %s): %w", targetPath, ctx, p.FileContexts, err)
	}
	return nil
}
