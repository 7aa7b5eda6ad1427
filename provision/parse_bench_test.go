package provision

import (
	"context"
	"os"
	"testing"

	"github.com/provision-dev/provision/provision/config"
	"github.com/provision-dev/provision/sources"
)

// BenchmarkParseBenchSeed parses the benchmark's user-data and meta-data:
// the cost of reading a config, apart from applying it.
func BenchmarkParseBenchSeed(b *testing.B) {
	var docs []sources.Document
	for _, f := range []struct {
		name string
		kind sources.Kind
	}{{"user-data", sources.KindUserData}, {"meta-data", sources.KindMetaData}} {
		data, err := os.ReadFile("../test/bench/seed/" + f.name)
		if err != nil {
			b.Fatal(err)
		}
		docs = append(docs, sources.Document{Origin: config.Origin{Source: "bench", File: f.name}, Kind: f.kind, Data: data})
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseDocuments(context.Background(), docs, ParseOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
