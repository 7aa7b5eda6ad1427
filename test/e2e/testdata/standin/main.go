// Command standin is `provision init` without an engine, for developing the
// VM harness before cmd/provision builds: PROVISION_E2E_BINARY=<built standin>.
// The real tests use the real binary.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/provision-dev/provision/initrd"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "init" {
		err := initrd.Main(context.Background(), initrd.Options{})
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Fprintln(os.Stderr, "standin: only `init` is implemented")
	os.Exit(2)
}
