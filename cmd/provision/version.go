package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// versionCmd is `provision version`.
func versionCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 1 && (args[0] == "--help" || args[0] == "-h") {
		lookup("version").help(stdout)
		return exitOK
	}
	if len(args) > 0 {
		fmt.Fprintf(stderr, "provision version: unexpected argument %q\n", args[0])
		return exitInvalid
	}
	printVersion(stdout)
	return exitOK
}

// printVersion prints the version the Makefile stamped, the commit and the
// Go version. The commit comes from the build's VCS stamp when the go
// command recorded one (it does not with -buildvcs=false or outside a
// checkout); the stamped version (git describe) names it otherwise.
func printVersion(w io.Writer) {
	commit, goVersion := version, runtime.Version()
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVersion = bi.GoVersion
		commit = buildCommit(bi.Settings, version)
	}
	fmt.Fprintf(w, "provision %s\ncommit: %s\ngo: %s %s/%s\n", version, commit, goVersion, runtime.GOOS, runtime.GOARCH)
}

// buildCommit returns vcs.revision (marked when the tree was modified), or
// fallback when the build carries none.
func buildCommit(settings []debug.BuildSetting, fallback string) string {
	var rev, modified string
	for _, s := range settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev == "" {
		return fallback
	}
	if modified == "true" {
		rev += " (modified)"
	}
	return rev
}
