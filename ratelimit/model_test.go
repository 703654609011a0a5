package ratelimit

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/phasegate/phasegate/internal/redistest"
)

// propertyLimits are the counters the property test draws from: windows
// short enough for random clock moves to cross them, leases shorter still.
var propertyLimits = []Limit{
	{Name: "tpm", Key: "a", Kind: Tokens, Max: 1000, Window: 10 * time.Second},
	{Name: "tpm", Key: "b:c", Kind: Tokens, Max: 500, Window: 10 * time.Second},
	{Name: "rpm", Key: "a", Kind: Requests, Max: 5, Window: time.Minute},
	{Name: "budget", Key: "a", Kind: Cost, Max: 3_000_000, Window: time.Hour},
	{Name: "slots", Key: "a", Kind: Concurrent, Max: 3},
	{Name: "slots", Key: "b", Kind: Concurrent, Max: 1},
}

// pair is one reservation made in both stores.
type pair struct{ local, redis *Reservation }

// TestPropertyLocalAndRedisAgree runs the same random operations (reserve,
// commit, commit again, renew, time passing) on a Local store and a Redis
// store on one fake clock, and wants the same decision, remaining amounts,
// reset times and lost reservations from both, after every step.
func TestPropertyLocalAndRedisAgree(t *testing.T) {
	srv := redistest.Start(t)
	var run atomic.Int64
	ctx := context.Background()
	rapid.Check(t, func(rt *rapid.T) {
		clock := newFakeClock()
		local := NewLocal(LocalOptions{Clock: clock.Now})
		remote, err := NewRedis(RedisConfig{Address: srv.Addr(), Timeout: 5 * time.Second, KeyPrefix: fmt.Sprint("prop:", run.Add(1))})
		if err != nil {
			rt.Fatal(err)
		}
		defer remote.Close()
		remote.pinned = clock.Now

		var live, committed []pair
		both := func(items []Item, lease time.Duration) (Decision, Decision) {
			dl, errL := local.Reserve(ctx, items, lease)
			dr, errR := remote.Reserve(ctx, items, lease)
			if errL != nil || errR != nil {
				rt.Fatalf("Reserve: local %v, redis %v", errL, errR)
			}
			if dl.Admitted() != dr.Admitted() || dl.Rejected != dr.Rejected {
				rt.Fatalf("local admitted %v (rejected %d), redis admitted %v (rejected %d)", dl.Admitted(), dl.Rejected, dr.Admitted(), dr.Rejected)
			}
			for i := range items {
				l, r := dl.States[i], dr.States[i]
				if l.Limit != r.Limit || l.Remaining != r.Remaining || !l.Reset.Equal(r.Reset) || l.ResetIn != r.ResetIn {
					rt.Fatalf("item %d (%s/%s): local %+v, redis %+v", i, items[i].Name, items[i].Key, l, r)
				}
			}
			return dl, dr
		}
		commitBoth := func(p pair, actual []int64) {
			if err := local.Commit(ctx, p.local, actual); err != nil {
				rt.Fatal(err)
			}
			if err := remote.Commit(ctx, p.redis, actual); err != nil {
				rt.Fatal(err)
			}
		}
		actuals := func(rt *rapid.T, p pair) []int64 {
			a := make([]int64, len(p.local.items))
			for i, it := range p.local.items {
				a[i] = rapid.Int64Range(0, 2*it.Amount).Draw(rt, fmt.Sprint("actual", i))
			}
			return a
		}

		rt.Repeat(map[string]func(*rapid.T){
			"reserve": func(rt *rapid.T) {
				idx := rapid.SliceOfNDistinct(rapid.IntRange(0, len(propertyLimits)-1), 1, len(propertyLimits), rapid.ID).Draw(rt, "limits")
				items := make([]Item, len(idx))
				for i, j := range idx {
					l := propertyLimits[j]
					items[i] = Item{Limit: l, Amount: rapid.Int64Range(0, l.Max*2/3).Draw(rt, fmt.Sprint("amount", i))}
				}
				lease := rapid.SampledFrom([]time.Duration{2 * time.Second, 5 * time.Second, 20 * time.Second}).Draw(rt, "lease")
				dl, dr := both(items, lease)
				if dl.Admitted() {
					live = append(live, pair{dl.Reservation, dr.Reservation})
				}
			},
			"commit": func(rt *rapid.T) {
				if len(live) == 0 {
					rt.Skip("nothing live")
				}
				i := rapid.IntRange(0, len(live)-1).Draw(rt, "reservation")
				p := live[i]
				commitBoth(p, actuals(rt, p))
				live = slices.Delete(live, i, i+1)
				committed = append(committed, p)
			},
			"commit again": func(rt *rapid.T) {
				if len(committed) == 0 {
					rt.Skip("nothing committed")
				}
				p := committed[rapid.IntRange(0, len(committed)-1).Draw(rt, "reservation")]
				commitBoth(p, actuals(rt, p))
			},
			"renew": func(rt *rapid.T) {
				all := append(slices.Clone(live), committed...)
				if len(all) == 0 {
					rt.Skip("nothing reserved")
				}
				idx := rapid.SliceOfNDistinct(rapid.IntRange(0, len(all)-1), 1, len(all), rapid.ID).Draw(rt, "reservations")
				var ls, rs []*Reservation
				for _, i := range idx {
					ls = append(ls, all[i].local)
					rs = append(rs, all[i].redis)
				}
				lostL, errL := local.Renew(ctx, ls)
				lostR, errR := remote.Renew(ctx, rs)
				if errL != nil || errR != nil {
					rt.Fatalf("Renew: local %v, redis %v", errL, errR)
				}
				for i := range ls {
					l, r := slices.Contains(lostL, ls[i]), slices.Contains(lostR, rs[i])
					if l != r {
						rt.Fatalf("reservation %d: lost %v on local, %v on redis", idx[i], l, r)
					}
				}
			},
			// in half seconds, so that leases and windows often end exactly
			// at the clock's time; and by a millisecond, to step over it
			"time passes": func(rt *rapid.T) {
				clock.Advance(time.Duration(rapid.Int64Range(1, 30).Draw(rt, "half seconds")) * 500 * time.Millisecond)
			},
			"a millisecond passes": func(*rapid.T) { clock.Advance(time.Millisecond) },
			"": func(rt *rapid.T) {
				// both see the same remaining amounts on every counter
				probe := make([]Item, len(propertyLimits))
				for i, l := range propertyLimits {
					probe[i] = Item{Limit: l}
				}
				dl, dr := both(probe, time.Second)
				if dl.Admitted() {
					commitBoth(pair{dl.Reservation, dr.Reservation}, make([]int64, len(probe)))
				}
			},
		})
	})
}
