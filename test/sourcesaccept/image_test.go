package sourcesaccept

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cliLimit bounds every run of the binary on a local image: reading a seed
// takes milliseconds, so hitting it means a hang.
const cliLimit = 60 * time.Second

// seed builders: each makes an image with the real tool and returns its path.

func cloudLocalds(t testing.TB, dir string, extra ...string) string {
	needTools(t, "cloud-localds")
	in := copyTree(t, "nocloud", filepath.Join(dir, "in"))
	img := filepath.Join(dir, "seed.img")
	args := append(extra, "--network-config="+filepath.Join(in, "network-config"), img, filepath.Join(in, "user-data"), filepath.Join(in, "meta-data"))
	run(t, "cloud-localds", args...)
	chmodAll(t, img)
	return img
}

func genisoimage(t testing.TB, dir, volid, tree string) string {
	needTools(t, "genisoimage")
	in := copyTree(t, tree, filepath.Join(dir, "in"))
	img := filepath.Join(dir, "seed.iso")
	run(t, "genisoimage", "-quiet", "-o", img, "-V", volid, "-J", "-r", in)
	chmodAll(t, img)
	return img
}

// mkfat makes a FAT filesystem in path at byte offset off (0: the whole
// file, created) and mcopies the top-level entries of testdata/tree in.
func mkfat(t testing.TB, path string, off int64, label string, bits int, sizeKiB int64, tree string) string {
	needTools(t, "mkfs.vfat", "mcopy")
	args := []string{"-n", label}
	if bits != 0 {
		args = append(args, "-F", fmt.Sprint(bits))
	}
	target := path
	if off == 0 {
		args = append([]string{"-C"}, args...)
	} else {
		args = append(args, "--offset", fmt.Sprint(off/512))
		target = fmt.Sprintf("%s@@%d", path, off)
	}
	args = append(args, path, fmt.Sprint(sizeKiB))
	run(t, "mkfs.vfat", args...)
	if tree != "" {
		in := copyTree(t, tree, filepath.Join(filepath.Dir(path), "in-"+label))
		entries, err := os.ReadDir(in)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			run(t, "mcopy", "-s", "-i", target, filepath.Join(in, e.Name()), "::/")
		}
	}
	chmodAll(t, path)
	return path
}

// disk makes a whole-disk image with an sfdisk table ("dos" or "gpt"):
// partition 1 (2 MiB) holds an unrelated FAT labelled DATA, partition 2
// (8 MiB, at 3 MiB) is left for the seed. It returns the image and
// partition 2's byte offset.
func disk(t testing.TB, dir, table string) (string, int64) {
	needTools(t, "sfdisk", "mkfs.vfat")
	img := filepath.Join(dir, "disk.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(12 << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	typ := map[string]string{"dos": "c", "gpt": "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"}[table]
	script := fmt.Sprintf("label: %s\nstart=2048, size=4096, type=%s\nstart=6144, size=16384, type=%s\n", table, typ, typ)
	cmd := exec.Command("sfdisk", "--no-reread", "--no-tell-kernel", "-q", img)
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	mkfat(t, img, 2048*512, "DATA", 12, 2048, "")
	return img, 6144 * 512
}

// ddInto writes src into dst at off without truncating dst.
func ddInto(t testing.TB, src, dst string, off int64) {
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(dst, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// seedCases are the seeds of "How it will be checked", each made by the
// tool users make them with.
var seedCases = []struct {
	name  string
	build func(t testing.TB, dir string) string
	// origin is what the plan's origins say for the image path: the image
	// itself, or its partition ("#p2").
	partition string
}{
	{"cloud-localds-iso", func(t testing.TB, d string) string { return cloudLocalds(t, d) }, ""},
	{"cloud-localds-vfat", func(t testing.TB, d string) string { return cloudLocalds(t, d, "-f", "vfat") }, ""},
	{"genisoimage-cidata", func(t testing.TB, d string) string { return genisoimage(t, d, "cidata", "nocloud") }, ""},
	{"genisoimage-config-2", func(t testing.TB, d string) string { return genisoimage(t, d, "config-2", "configdrive") }, ""},
	{"genisoimage-config-2-dated", func(t testing.TB, d string) string { return genisoimage(t, d, "CONFIG-2", "configdrive-dated") }, ""},
	{"mkfs-vfat-fat12-combustion", func(t testing.TB, d string) string {
		return mkfat(t, filepath.Join(d, "stick.img"), 0, "combustion", 12, 1440, "combustion")
	}, ""},
	{"mkfs-vfat-fat32-combustion", func(t testing.TB, d string) string {
		return mkfat(t, filepath.Join(d, "stick.img"), 0, "COMBUSTION", 32, 64<<10, "combustion")
	}, ""},
	{"disk-mbr-vfat-cidata-p2", func(t testing.TB, d string) string {
		img, off := disk(t, d, "dos")
		mkfat(t, img, off, "cidata", 0, 8192, "nocloud")
		return img
	}, "#p2"},
	{"disk-gpt-vfat-cidata-p2", func(t testing.TB, d string) string {
		img, off := disk(t, d, "gpt")
		mkfat(t, img, off, "CIDATA", 0, 8192, "nocloud")
		return img
	}, "#p2"},
	{"disk-gpt-iso-cidata-p2", func(t testing.TB, d string) string {
		img, off := disk(t, d, "gpt")
		ddInto(t, cloudLocalds(t, d), img, off)
		return img
	}, "#p2"},
	{"disk-mbr-vfat-combustion-p2", func(t testing.TB, d string) string {
		img, off := disk(t, d, "dos")
		// A stick image made apart and written into the partition, as dd
		// onto a partition of a real disk would.
		stick := mkfat(t, filepath.Join(d, "p2.img"), 0, "combustion", 0, 8192, "combustion")
		ddInto(t, stick, img, off)
		return img
	}, "#p2"},
}

// The dry run on each seed prints the plan read from it (golden file per
// seed) with the "# source" header, without root; validate agrees.
func TestDryRunOnToolMadeSeeds(t *testing.T) {
	for _, tc := range seedCases {
		t.Run(tc.name, func(t *testing.T) {
			img := tc.build(t, workDir(t))
			r := runCLI(t, cliLimit, nil, "--dry-run", "--source", img)
			if r.code != 0 || r.timedOut {
				t.Fatalf("exit %d (timed out: %v)\nstdout:\n%s\nstderr:\n%s", r.code, r.timedOut, r.stdout, r.stderr)
			}
			if want := "# source image:" + img + ": "; !strings.HasPrefix(r.stdout, want) {
				t.Errorf("first line of the plan is not %q...:\n%s", want, r.stdout)
			}
			if !strings.Contains(r.stdout, img+tc.partition+":") {
				t.Errorf("plan origins do not name %s%s:\n%s", img, tc.partition, r.stdout)
			}
			golden(t, tc.name+".plan", scrub(r.stdout, img, "IMAGE"))

			v := runCLI(t, cliLimit, nil, "validate", img)
			steps := 0 // the plan's lines less its "# " header
			for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
				if !strings.HasPrefix(l, "# ") {
					steps++
				}
			}
			if want := fmt.Sprintf("%s: valid (%d steps)\n", img, steps); v.code != 0 || v.stdout != want {
				t.Errorf("validate: exit %d, stdout %q, want 0 and %q\nstderr:\n%s", v.code, v.stdout, want, v.stderr)
			}
		})
	}
}

// The runs above are unprivileged: when the tests run as root the binary
// runs as nobody, which this proves by failing on a root-only copy.
func TestRunsWithoutRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("not root: the binary already runs unprivileged")
	}
	img := cloudLocalds(t, workDir(t))
	private := mutate(t, img, "private.img", func(b []byte) []byte { return b })
	if err := os.Chmod(private, 0o600); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, cliLimit, nil, "--dry-run", "--source", private)
	if r.code == 0 || !strings.Contains(r.stderr, "permission denied") {
		t.Errorf("a root-only image was readable: exit %d\n%s", r.code, r.stderr)
	}
}

// An ext4 filesystem labelled combustion is mounted read-only by the
// kernel: without root the run says so; as root (the root tier, a loop
// device) the plan is read and nothing stays attached.
func TestExt4CombustionImage(t *testing.T) {
	needTools(t, "mkfs.ext4")
	dir := workDir(t)
	in := copyTree(t, "combustion", filepath.Join(dir, "in"))
	img := filepath.Join(dir, "ext4.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(16 << 20)
	f.Close()
	run(t, "mkfs.ext4", "-q", "-L", "combustion", "-d", in, img)
	chmodAll(t, img)

	r := runCLI(t, cliLimit, nil, "--dry-run", "--source", img)
	if r.code != 1 || !strings.Contains(r.stderr, "needs root to read") {
		t.Errorf("unprivileged: exit %d, want 1 and \"needs root to read\"\n%s", r.code, r.stderr)
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root for the loop mount")
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		t.Skip("no loop devices")
	}
	r = runAs(t, false, cliLimit, nil, "--dry-run", "--source", img)
	if r.code != 0 {
		t.Fatalf("as root: exit %d\n%s", r.code, r.stderr)
	}
	golden(t, "ext4-combustion.plan", scrub(r.stdout, img, "IMAGE"))
	if out, _ := exec.Command("losetup", "-j", img).Output(); len(out) != 0 {
		t.Errorf("loop device left attached: %s", out)
	}
}
