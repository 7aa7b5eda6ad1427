package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/provision-dev/provision/provision/seed"
)

// seedFlags are the flags of `provision seed`.
type seedFlags struct {
	format, out string
	iso, vfat   bool
	noValidate  bool
	strict      bool
	opts        seed.Options
}

func (f *seedFlags) define(fs *flag.FlagSet) {
	fs.StringVar(&f.format, "format", "", "the medium `FORMAT`: nocloud, configdrive, combustion or ignition (required)")
	fs.BoolVar(&f.iso, "iso", false, "write an ISO9660 image (default for nocloud and configdrive)")
	fs.BoolVar(&f.vfat, "vfat", false, "write a FAT image (default for combustion and ignition)")
	fs.StringVar(&f.out, "o", "", "the `IMAGE` file to write (required)")
	fs.BoolVar(&f.noValidate, "no-validate", false, "pack the inputs without validating them first")
	fs.BoolVar(&f.strict, "strict", false, "refuse to pack a config with warnings (unknown keys...) too")
	fs.StringVar(&f.opts.MetaData, "meta-data", "", "meta-data `FILE` (nocloud) or meta_data.json (configdrive); generated when absent")
	fs.StringVar(&f.opts.NetworkConfig, "network-config", "", "network-config `FILE` (nocloud) or network_data.json (configdrive)")
	fs.StringVar(&f.opts.VendorData, "vendor-data", "", "vendor-data `FILE` (nocloud) or vendor_data.json (configdrive)")
	fs.StringVar(&f.opts.InstanceID, "instance-id", "", "`ID` for generated meta-data (default: random)")
	fs.StringVar(&f.opts.Hostname, "hostname", "", "`NAME` for generated meta-data")
}

// seedCmd is `provision seed`: flags in, image out (package seed does the
// work). Flags may follow the inputs, as with cloud-localds.
func seedCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var f seedFlags
	fs := flag.NewFlagSet("seed", flag.ContinueOnError)
	f.define(fs)
	inputs, err := lookup("seed").parse(fs, args, stdout, stderr)
	if err != nil {
		return parseResult(err)
	}
	f.opts.Inputs = inputs
	switch {
	case f.format == "":
		fmt.Fprintln(stderr, "provision seed: --format is required")
		return exitInvalid
	case f.out == "":
		fmt.Fprintln(stderr, "provision seed: -o IMAGE is required")
		return exitInvalid
	case f.iso && f.vfat:
		fmt.Fprintln(stderr, "provision seed: give --iso or --vfat, not both")
		return exitInvalid
	case f.iso:
		f.opts.Filesystem = seed.ISO9660
	case f.vfat:
		f.opts.Filesystem = seed.VFAT
	}
	f.opts.Format = seed.Format(f.format)
	l, code := buildSeed(ctx, &f, stderr)
	if code != exitOK {
		return code
	}
	fmt.Fprintf(stdout, "%s: %s %q, %d file(s)\n", f.out, l.Filesystem, l.Label, len(l.Files))
	return exitOK
}

// buildSeed writes the image and, unless --no-validate, reads it back as
// `provision validate IMAGE` does before putting it in place: what is
// validated is exactly what the machine will read, generated meta-data
// included. An invalid config leaves whatever was at -o untouched.
func buildSeed(ctx context.Context, f *seedFlags, stderr io.Writer) (*seed.Layout, int) {
	l, err := seed.Plan(f.opts)
	if err != nil {
		return nil, seedFailure(err, stderr)
	}
	if f.noValidate {
		if err := seed.Write(l, f.out); err != nil {
			return nil, seedFailure(err, stderr)
		}
		return l, exitOK
	}
	if st, err := os.Stat(f.out); err == nil && !st.Mode().IsRegular() {
		return nil, seedFailure(fmt.Errorf("%w: %s exists and is not a regular file", seed.ErrInput, f.out), stderr)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(f.out), ".provision-seed-*")
	if err != nil {
		return nil, seedFailure(err, stderr)
	}
	defer os.RemoveAll(tmp)
	img := filepath.Join(tmp, filepath.Base(f.out))
	if err := seed.Write(l, img); err != nil {
		return nil, seedFailure(err, stderr)
	}
	// Messages name the image the user asked for, not the temporary one.
	var msgs bytes.Buffer
	_, code := checkSource(ctx, img, "", f.strict, &msgs)
	io.WriteString(stderr, strings.ReplaceAll(msgs.String(), img, f.out))
	if code != exitOK {
		fmt.Fprintf(stderr, "provision seed: %s not written: the configuration is invalid (--no-validate packs it anyway)\n", f.out)
		return nil, code
	}
	if err := os.Rename(img, f.out); err != nil {
		return nil, seedFailure(err, stderr)
	}
	return l, exitOK
}

func seedFailure(err error, stderr io.Writer) int {
	fmt.Fprintf(stderr, "provision seed: %v\n", err)
	if errors.Is(err, seed.ErrInput) {
		return exitInvalid
	}
	return exitFailed
}
