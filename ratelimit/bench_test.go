package ratelimit

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phasegate/phasegate/internal/redistest"
)

// BenchmarkReserveCommit is one request's cost to the store: a reservation
// on three limits (tokens, requests, a concurrency slot) and its commit.
// The parallel variant spreads the requests over 64 tenants.
func BenchmarkReserveCommit(b *testing.B) {
	stores := []struct {
		name string
		new  func(b *testing.B) Store
	}{
		{"local", func(*testing.B) Store { return NewLocal(LocalOptions{}) }},
		{"redis", func(b *testing.B) Store {
			s := newRedisStore(b, redistest.Start(b), nil)
			s.timeout = 5 * time.Second
			return s
		}},
	}
	for _, st := range stores {
		b.Run(st.name, func(b *testing.B) {
			s := st.new(b)
			b.Run("serial", func(b *testing.B) {
				items := benchItems("acme")
				b.ReportAllocs()
				for b.Loop() {
					reserveCommit(b, s, items)
				}
			})
			b.Run("parallel", func(b *testing.B) {
				var tenant atomic.Int64
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					items := benchItems(fmt.Sprint("tenant-", tenant.Add(1)%64))
					for pb.Next() {
						reserveCommit(b, s, items)
					}
				})
			})
		})
	}
}

func benchItems(key string) []Item {
	return []Item{
		{Limit: Limit{Name: "tpm", Key: key, Kind: Tokens, Max: MaxAmount, Window: time.Minute}, Amount: 500},
		{Limit: Limit{Name: "rpm", Key: key, Kind: Requests, Max: MaxAmount, Window: time.Minute}, Amount: 1},
		{Limit: Limit{Name: "slots", Key: key, Kind: Concurrent, Max: MaxAmount}, Amount: 1},
	}
}

func reserveCommit(b *testing.B, s Store, items []Item) {
	ctx := context.Background()
	d, err := s.Reserve(ctx, items, 2*time.Minute)
	if err != nil || !d.Admitted() {
		b.Fatalf("Reserve: %+v, %v", d.States, err)
	}
	if err := s.Commit(ctx, d.Reservation, []int64{300, 1, 0}); err != nil {
		b.Fatal(err)
	}
}
