package runbooks

import "testing"

// BenchmarkRegistryGet is on the path of every release start. Target: under 1µs, so the API
// adds nothing measurable to the Temporal call (files are parsed at load, not per request).
func BenchmarkRegistryGet(b *testing.B) {
	reg, err := NewRegistry("examples")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := reg.Get("hello"); err != nil {
			b.Fatal(err)
		}
	}
}
