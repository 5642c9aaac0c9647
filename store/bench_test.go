package store

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/trainyard/trainyard/internal/testpg"
)

// benchEvent is an audit write as the API makes it.
var benchEvent = AuditEvent{
	Actor: "alice", Roles: []string{"release-manager"}, SourceIP: "10.0.0.7", UserAgent: "trainyard-cli/1",
	Action: "release.approve", ReleaseID: "release-shop-1.0.0", Outcome: OutcomeAllowed,
	Details: json.RawMessage(`{"gate":"prod-signoff","comment":"ship it"}`),
}

func benchStore(b *testing.B) *Store {
	b.Helper()
	s, err := Open(context.Background(), testpg.URL(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(context.Background()); err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkAppendAudit is one audit write at a time: the latency the API adds to an action.
func BenchmarkAppendAudit(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.AppendAudit(ctx, benchEvent); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendAuditParallel is audit writes from concurrent requests, which the chain's
// lock makes take turns.
func BenchmarkAppendAuditParallel(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	b.SetParallelism(4) // with GOMAXPROCS, 8 to 16 writers: within the pool's 20 connections
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.AppendAudit(ctx, benchEvent); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
