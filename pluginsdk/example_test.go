package pluginsdk_test

import (
	"fmt"

	"github.com/phasegate/phasegate/pluginsdk"
)

type pool struct{ name string }

func (p *pool) Close() error { fmt.Println("closed", p.name); return nil }

// Two routes share one pool: it opens with the first and closes with the
// last release, which each plugin makes from its Close.
func ExampleAcquireShared() {
	shared := pluginsdk.NewShared()
	open := func() (*pool, error) { fmt.Println("opened"); return &pool{name: "moderation"}, nil }
	a, releaseA, _ := pluginsdk.AcquireShared(shared, "moderation-pool", open)
	b, releaseB, _ := pluginsdk.AcquireShared(shared, "moderation-pool", open)
	fmt.Println(a == b, shared.Len())
	_ = releaseA()
	_ = releaseA() // idempotent
	fmt.Println(shared.Len())
	_ = releaseB()
	fmt.Println(shared.Len())
	// Output:
	// opened
	// true 1
	// 1
	// closed moderation
	// 0
}
