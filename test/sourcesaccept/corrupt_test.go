package sourcesaccept

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// mutate copies img to a new file in its directory with fn applied to the
// bytes, and returns the new path.
func mutate(t testing.TB, img, name string, fn func(b []byte) []byte) string {
	t.Helper()
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(filepath.Dir(img), name)
	if err := os.WriteFile(out, fn(b), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// fatGeometry reads the BPB fields the corruptions below need.
func fatGeometry(b []byte) (bps, reserved, fats, sectorsPerFAT int, rootCluster uint32) {
	bps = int(binary.LittleEndian.Uint16(b[11:]))
	reserved = int(binary.LittleEndian.Uint16(b[14:]))
	fats = int(b[16])
	sectorsPerFAT = int(binary.LittleEndian.Uint16(b[22:]))
	if sectorsPerFAT == 0 {
		sectorsPerFAT = int(binary.LittleEndian.Uint32(b[36:]))
		rootCluster = binary.LittleEndian.Uint32(b[44:])
	}
	return
}

const pvd = 16 * 2048 // the ISO9660 primary volume descriptor

// corruptions of a seed image that keep its label readable (so the seed is
// found) and break what lies behind it. Each must end in a clear error
// naming the image: exit 1, no panic, no hang.
var corruptions = []struct {
	name  string
	base  string // a seedCases name
	fn    func(b []byte) []byte
	error string // in stderr
}{
	{"iso-root-extent-beyond-end", "cloud-localds-iso", func(b []byte) []byte {
		binary.LittleEndian.PutUint32(b[pvd+156+2:], 0x7fffffff)
		binary.BigEndian.PutUint32(b[pvd+156+6:], 0x7fffffff)
		return b
	}, "root directory"},
	{"iso-root-directory-garbage", "cloud-localds-iso", func(b []byte) []byte {
		loc := int(binary.LittleEndian.Uint32(b[pvd+156+2:])) * 2048
		n := int(binary.LittleEndian.Uint32(b[pvd+156+10:]))
		for i := loc; i < loc+n && i < len(b); i++ {
			b[i] = 0xff
		}
		return b
	}, "corrupt"},
	{"iso-cut-after-descriptors", "genisoimage-config-2", func(b []byte) []byte {
		return b[:pvd+4*2048]
	}, "does not fit the image"},
	{"fat12-tables-zeroed", "mkfs-vfat-fat12-combustion", func(b []byte) []byte {
		bps, res, fats, spf, _ := fatGeometry(b)
		for i := range fats {
			off := (res + i*spf) * bps
			clear(b[off+3 : off+spf*bps]) // keep the media descriptor entries
		}
		return b
	}, "cluster"},
	{"fat32-root-chain-loops", "mkfs-vfat-fat32-combustion", func(b []byte) []byte {
		bps, res, fats, spf, root := fatGeometry(b)
		for i := range fats {
			binary.LittleEndian.PutUint32(b[(res+i*spf)*bps+4*int(root):], root)
		}
		return b
	}, "loops"},
	{"fat32-chains-point-past-the-end", "mkfs-vfat-fat32-combustion", func(b []byte) []byte {
		bps, res, fats, spf, _ := fatGeometry(b)
		for i := range fats {
			for c := 3; c < 64; c++ {
				binary.LittleEndian.PutUint32(b[(res+i*spf)*bps+4*c:], 0x0ffffff0)
			}
		}
		return b
	}, "cluster"},
	{"fat12-truncated", "mkfs-vfat-fat12-combustion", func(b []byte) []byte {
		return b[:len(b)/3]
	}, "not an image holding a filesystem we read"},
	{"iso-truncated-before-descriptors", "cloud-localds-iso", func(b []byte) []byte {
		return b[:pvd+100]
	}, "not an image holding a filesystem we read"},
	{"gpt-partition-2-zeroed", "disk-gpt-vfat-cidata-p2", func(b []byte) []byte {
		clear(b[6144*512 : 6144*512+64<<10])
		return b
	}, "no filesystem with a seed label"},
}

func seedCase(t testing.TB, name string) func(testing.TB, string) string {
	for _, c := range seedCases {
		if c.name == name {
			return c.build
		}
	}
	t.Fatalf("no seed case %q", name)
	return nil
}

func TestCorruptImagesFailClearly(t *testing.T) {
	for _, tc := range corruptions {
		t.Run(tc.name, func(t *testing.T) {
			img := mutate(t, seedCase(t, tc.base)(t, workDir(t)), "corrupt.img", tc.fn)
			r := runCLI(t, cliLimit, nil, "--dry-run", "--source", img)
			if tc.name == "gpt-partition-2-zeroed" {
				// No seed label left: not an error, but nothing to do,
				// and the plan says which source was read.
				if r.code != 0 || !strings.Contains(r.stderr, "nothing to do") {
					t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
				}
				return
			}
			if r.timedOut || r.code != 1 {
				t.Fatalf("exit %d (timed out: %v), want 1\nstdout:\n%s\nstderr:\n%s", r.code, r.timedOut, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stderr, img) || !strings.Contains(r.stderr, tc.error) {
				t.Errorf("stderr does not name %s and say %q:\n%s", img, tc.error, r.stderr)
			}
			if v := runCLI(t, cliLimit, nil, "validate", img); v.code != 1 || !strings.Contains(v.stderr, img) {
				t.Errorf("validate: exit %d, want 1\nstderr:\n%s", v.code, v.stderr)
			}
		})
	}
}

// Random damage to the bytes after the volume descriptors / boot sector:
// whatever the outcome (the damage may miss the files), the binary ends in
// bounded time with 0, 1 or 2 and never panics.
func TestRandomlyDamagedImagesNeverHang(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	for _, base := range []string{"cloud-localds-iso", "cloud-localds-vfat", "genisoimage-config-2", "mkfs-vfat-fat12-combustion", "disk-mbr-vfat-cidata-p2"} {
		t.Run(base, func(t *testing.T) {
			img := seedCase(t, base)(t, workDir(t))
			for seed := range uint64(6) {
				rng := rand.New(rand.NewPCG(seed, 42))
				bad := mutate(t, img, fmt.Sprintf("damaged-%d.img", seed), func(b []byte) []byte {
					start := 512
					if seed%2 == 1 {
						start = pvd + 2048 // keep the ISO descriptors
					}
					for i := start; i < len(b); i++ {
						if rng.IntN(8) == 0 {
							b[i] = byte(rng.UintN(256))
						}
					}
					return b
				})
				r := runCLI(t, cliLimit, nil, "--dry-run", "--source", bad)
				if r.timedOut || !slices.Contains([]int{0, 1, 2}, r.code) {
					t.Errorf("seed %d: exit %d (timed out: %v)\nstderr:\n%s", seed, r.code, r.timedOut, r.stderr)
				}
			}
		})
	}
}

// A Combustion drive's script comes with every sibling file, nested ones
// included: the plan shows only the script, the JSON lists the documents.
func TestCombustionSiblingsRead(t *testing.T) {
	for _, base := range []string{"mkfs-vfat-fat12-combustion", "mkfs-vfat-fat32-combustion"} {
		t.Run(base, func(t *testing.T) {
			img := seedCase(t, base)(t, workDir(t))
			r := runCLI(t, cliLimit, nil, "--dry-run", "--json", "--source", img)
			if r.code != 0 {
				t.Fatalf("exit %d\n%s", r.code, r.stderr)
			}
			var res struct {
				Documents []struct{ Origin, Kind string }
			}
			if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
				t.Fatalf("%v\n%s", err, r.stdout)
			}
			var got []string
			for _, d := range res.Documents {
				got = append(got, strings.TrimPrefix(d.Origin, "combustion:"+img+":")+" "+d.Kind)
			}
			want := []string{"files/motd combustion", "key.pub combustion", "script combustion"}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("documents %q, want %q", got, want)
			}
		})
	}
}

// validate: exit 0 on a good seed, 2 with file:line:column on a seed whose
// user-data is invalid, 1 on an image it cannot read.
func TestValidateExitCodes(t *testing.T) {
	needTools(t, "cloud-localds")
	dir := workDir(t)
	ud := filepath.Join(dir, "user-data")
	md := filepath.Join(dir, "meta-data")
	if err := os.WriteFile(ud, []byte("#cloud-config\nusers:\n  - name: eve\n    uid: not-a-number\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(md, []byte("instance-id: bad\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.iso")
	run(t, "cloud-localds", bad, ud, md)
	chmodAll(t, bad)
	good := cloudLocalds(t, workDir(t))
	broken := mutate(t, good, "broken.iso", func(b []byte) []byte {
		binary.LittleEndian.PutUint32(b[pvd+156+2:], 0x7fffffff)
		binary.BigEndian.PutUint32(b[pvd+156+6:], 0x7fffffff)
		return b
	})

	r := runCLI(t, cliLimit, nil, "validate", bad)
	if want := "nocloud:" + bad + ":user-data:4:"; r.code != 2 || !strings.Contains(r.stderr, want) {
		t.Errorf("invalid seed: exit %d, want 2 and %q in:\n%s", r.code, want, r.stderr)
	}
	r = runCLI(t, cliLimit, nil, "--dry-run", "--source", bad)
	if r.code != 2 {
		t.Errorf("dry run of an invalid seed: exit %d, want 2\n%s", r.code, r.stderr)
	}
	r = runCLI(t, cliLimit, nil, "validate", good, broken)
	if r.code != 1 || !strings.Contains(r.stdout, good+": valid") || !strings.Contains(r.stderr, broken) {
		t.Errorf("good + broken: exit %d, want 1\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
}
