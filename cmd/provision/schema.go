package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/provision-dev/provision/provision/cloudinit"
)

// schemaCmd is `provision schema`: the JSON Schema of the cloud-config keys,
// made from the parser's own key table, for editors.
func schemaCmd(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("schema", flag.ContinueOnError)
	pos, err := lookup("schema").parse(fs, args, stdout, stderr)
	if err != nil {
		return parseResult(err)
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "provision schema: unexpected argument %q\n", pos[0])
		return exitInvalid
	}
	if _, err := stdout.Write(cloudinit.Schema()); err != nil {
		fmt.Fprintf(stderr, "provision schema: %v\n", err)
		return exitFailed
	}
	return exitOK
}
