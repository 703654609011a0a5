package ratelimit_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/phasegate/phasegate/ratelimit"
)

// A request reserves its estimate on every limit at once, and commits its
// actual usage when it ends.
func Example() {
	now := time.Date(2026, 1, 1, 12, 0, 45, 0, time.UTC)
	store := ratelimit.NewLocal(ratelimit.LocalOptions{Clock: func() time.Time { return now }})
	ctx := context.Background()

	tpm := ratelimit.Limit{Name: "tenant-tpm", Key: "acme", Kind: ratelimit.Tokens, Max: 1000, Window: time.Minute}
	slots := ratelimit.Limit{Name: "tenant-concurrency", Key: "acme", Kind: ratelimit.Concurrent, Max: 4}

	// prompt estimate plus max_tokens, and one slot
	d, err := store.Reserve(ctx, []ratelimit.Item{{Limit: tpm, Amount: 800}, {Limit: slots, Amount: 1}}, 2*time.Minute)
	if err != nil {
		panic(err)
	}
	fmt.Println("admitted:", d.Admitted(), "tokens remaining:", d.States[0].Remaining)

	// a second request does not fit: nothing is taken, not even a slot
	d2, _ := store.Reserve(ctx, []ratelimit.Item{{Limit: tpm, Amount: 300}, {Limit: slots, Amount: 1}}, 2*time.Minute)
	fmt.Printf("admitted: %v, over %q, Retry-After: %d\n", d2.Admitted(), tpm.Name, d2.States[d2.Rejected].RetryAfter())

	// the first used 150 tokens in all: the rest comes back, the slot too
	if err := store.Commit(ctx, d.Reservation, []int64{150, 0}); err != nil {
		panic(err)
	}
	d2, _ = store.Reserve(ctx, []ratelimit.Item{{Limit: tpm, Amount: 300}, {Limit: slots, Amount: 1}}, 2*time.Minute)
	fmt.Println("admitted:", d2.Admitted(), "tokens remaining:", d2.States[0].Remaining, "slots remaining:", d2.States[1].Remaining)
	// Output:
	// admitted: true tokens remaining: 200
	// admitted: false, over "tenant-tpm", Retry-After: 15
	// admitted: true tokens remaining: 550 slots remaining: 3
}

// A Keeper renews the reservations of long requests, so that only those of
// a crashed instance expire.
func ExampleKeeper() {
	store := ratelimit.NewLocal(ratelimit.LocalOptions{})
	keeper, err := ratelimit.NewKeeper(store, 2*time.Minute, ratelimit.KeeperEvents{
		RenewFailed: func(err error) { fmt.Println("renewal failed:", err) },
	})
	if err != nil {
		panic(err)
	}
	defer keeper.Close()

	slots := ratelimit.Limit{Name: "tenant-concurrency", Key: "acme", Kind: ratelimit.Concurrent, Max: 4}
	d, err := keeper.Reserve(context.Background(), []ratelimit.Item{{Limit: slots, Amount: 1}})
	if err != nil {
		panic(err)
	}
	fmt.Println("renewing:", keeper.Live())
	// ... the request streams for longer than the lease ...
	if err := keeper.Commit(context.Background(), d.Reservation, []int64{0}); err != nil {
		panic(err)
	}
	fmt.Println("renewing:", keeper.Live())
	// Output:
	// renewing: 1
	// renewing: 0
}

// A shared store is built from the plugin's redis settings; calls fail
// with an error matching ErrUnavailable when Redis does not answer in time.
func ExampleNewRedis() {
	store, err := ratelimit.NewRedis(ratelimit.RedisConfig{
		Address:   "127.0.0.1:1", // nothing listens here
		Timeout:   100 * time.Millisecond,
		KeyPrefix: "phasegate",
	})
	if err != nil {
		panic(err)
	}
	defer store.Close()
	rpm := ratelimit.Limit{Name: "tenant-rpm", Key: "acme", Kind: ratelimit.Requests, Max: 60, Window: time.Minute}
	_, err = store.Reserve(context.Background(), []ratelimit.Item{{Limit: rpm, Amount: 1}}, 2*time.Minute)
	fmt.Println("fail open or closed:", errors.Is(err, ratelimit.ErrUnavailable))
	// Output:
	// fail open or closed: true
}

// Cost limits count integer micro-dollars.
func ExampleMicroDollars() {
	perMillion := 0.60 // dollars per million completion tokens
	cost, err := ratelimit.MicroDollars(perMillion * 1234 / 1e6)
	if err != nil {
		panic(err)
	}
	fmt.Println(cost, "micro-dollars is", ratelimit.Dollars(cost), "dollars")
	// Output:
	// 740 micro-dollars is 0.00074 dollars
}
