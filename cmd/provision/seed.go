package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/provision-dev/provision/provision/seed"
)

// seedCmd is `provision seed`: flags in, image out (package seed does the work).
func seedCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("seed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	format := fs.String("format", "", "nocloud, configdrive or combustion (required)")
	iso := fs.Bool("iso", false, "write an ISO9660 image (default for nocloud and configdrive)")
	vfat := fs.Bool("vfat", false, "write a FAT image (default for combustion)")
	out := fs.String("o", "", "the image file to write (required)")
	var opts seed.Options
	fs.StringVar(&opts.MetaData, "meta-data", "", "meta-data file (nocloud) or meta_data.json (configdrive); generated when absent")
	fs.StringVar(&opts.NetworkConfig, "network-config", "", "network-config (nocloud) or network_data.json (configdrive)")
	fs.StringVar(&opts.VendorData, "vendor-data", "", "vendor-data (nocloud) or vendor_data.json (configdrive)")
	fs.StringVar(&opts.InstanceID, "instance-id", "", "instance-id for generated meta-data (default: random)")
	fs.StringVar(&opts.Hostname, "hostname", "", "hostname for generated meta-data")
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: provision seed --format nocloud|configdrive|combustion [--iso|--vfat] -o IMAGE INPUTS...
  nocloud:     USER-DATA [META-DATA]   (label cidata)
  configdrive: [USER-DATA]             (label config-2, openstack/latest/)
  combustion:  DIR with script | SCRIPT (label combustion, combustion/)
`)
		fs.PrintDefaults()
	}
	// Flags may follow the inputs, as with cloud-localds.
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return exitOK
			}
			return exitInvalid
		}
		left := fs.Args()
		if n := len(rest) - len(left); n > 0 && rest[n-1] == "--" {
			opts.Inputs = append(opts.Inputs, left...)
			break
		}
		if len(left) == 0 {
			break
		}
		opts.Inputs = append(opts.Inputs, left[0])
		rest = left[1:]
	}
	switch {
	case *format == "":
		fmt.Fprintln(stderr, "provision seed: --format is required")
		return exitInvalid
	case *out == "":
		fmt.Fprintln(stderr, "provision seed: -o IMAGE is required")
		return exitInvalid
	case *iso && *vfat:
		fmt.Fprintln(stderr, "provision seed: give --iso or --vfat, not both")
		return exitInvalid
	case *iso:
		opts.Filesystem = seed.ISO9660
	case *vfat:
		opts.Filesystem = seed.VFAT
	}
	opts.Format = seed.Format(*format)
	l, err := seed.Build(opts, *out)
	if err != nil {
		fmt.Fprintf(stderr, "provision seed: %v\n", err)
		if errors.Is(err, seed.ErrInput) {
			return exitInvalid
		}
		return exitFailed
	}
	fmt.Fprintf(stdout, "%s: %s %q, %d file(s)\n", *out, l.Filesystem, l.Label, len(l.Files))
	return exitOK
}
