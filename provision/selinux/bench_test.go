package selinux

import (
	"sort"
	"testing"
)

// BenchmarkLoad measures Load of the Debian refpolicy (about 5,600 lines
// over file_contexts and file_contexts.homedirs).
func BenchmarkLoad(b *testing.B) {
	root, _ := referenceRoot(b)
	b.ReportAllocs()
	for b.Loop() {
		if p, err := Load(root); err != nil || p == nil {
			b.Fatal(p, err)
		}
	}
}

// BenchmarkLookup measures 1000 lookups of the reference paths on a
// freshly loaded policy, so regex compilation on first use is included.
func BenchmarkLookup(b *testing.B) {
	benchmarkLookup(b, false)
}

// BenchmarkLookupWarm is the same with every regex already compiled.
func BenchmarkLookupWarm(b *testing.B) {
	benchmarkLookup(b, true)
}

func benchmarkLookup(b *testing.B, warm bool) {
	root, _ := referenceRoot(b)
	paths := refPaths()
	var names []string
	for p := range paths {
		names = append(names, p)
	}
	sort.Strings(names)
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = names[i%len(names)]
	}
	p, err := Load(root)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if !warm {
			b.StopTimer()
			p, _ = Load(root)
			b.StartTimer()
		}
		for _, k := range keys {
			p.Lookup(k, goMode[paths[k]])
		}
	}
}
