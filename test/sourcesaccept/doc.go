// Package sourcesaccept holds the acceptance tests of the configuration
// sources (issue 3) at the level a user meets them: the built provision
// binary run without root on seeds made by the real tools (cloud-localds,
// genisoimage, mkfs.vfat + mcopy, sfdisk), the network sources against
// metadata servers in the test, and the boot job's source detection through
// the engine on fake sysfs trees. The package has no code of its own.
package sourcesaccept
