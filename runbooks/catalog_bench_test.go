package runbooks

import "testing"

// BenchmarkCatalogGet is on the hot path of every release start. Target: under 100µs per
// lookup for a folder of a few runbooks, so the API adds little to the Temporal call.
func BenchmarkCatalogGet(b *testing.B) {
	c := NewCatalog("examples")
	for b.Loop() {
		if _, err := c.Get("hello"); err != nil {
			b.Fatal(err)
		}
	}
}
