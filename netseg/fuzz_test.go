package netseg

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var rewrite = flag.Bool("rewrite", false, "rewrite golden files under testdata/")

// FuzzParse: no input crashes the parser; every refusal is a *PolicyError;
// every accepted policy round-trips through its canonical form to an equal
// value with the same digest, and compiles.
func FuzzParse(f *testing.F) {
	f.Add([]byte(examplePolicy))
	f.Add([]byte(`{"version":1,"segments":[{"name":"a","cgroup":"/a","allow":[{"cidr":"::1","ports":["1-2",3]}]}]}`))
	f.Add([]byte("version: 1\nsegments:\n  - &a {name: a, cgroup: /a}\n  - *a\n"))
	f.Add([]byte("version: 1\nsegments:\n  - name: a\n    cgroup: /a\n    deny: [{cidr: 0.0.0.0/0}, {cidr: ::/0, protocol: icmp}]\n"))
	f.Add([]byte("- [\n"))
	if ents, err := os.ReadDir("testdata"); err == nil {
		for _, e := range ents {
			if b, err := os.ReadFile(filepath.Join("testdata", e.Name())); err == nil {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			var pe *PolicyError
			if !errors.As(err, &pe) || p != nil {
				t.Fatalf("refusal is not a *PolicyError, or came with a policy: %v", err)
			}
			return
		}
		b, err := p.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		q, err := Parse(b)
		if err != nil {
			t.Fatalf("canonical form does not parse: %v\n%s", err, b)
		}
		if q.Digest() != p.Digest() {
			t.Fatalf("digest changed over a round trip:\n%s", b)
		}
		if _, err := compile(p); err != nil {
			t.Fatalf("accepted policy does not compile: %v", err)
		}
	})
}
