package wrr_test

import (
	"fmt"

	"github.com/phasegate/phasegate/forward/wrr"
)

func ExampleBalancer_Next() {
	b := wrr.New([]int{2, 1, 1})
	fmt.Println(b.Next(nil), b.Next(nil), b.Next(nil), b.Next(nil))
	// A retry skips what it has tried.
	tried := map[int]bool{0: true}
	fmt.Println(b.Next(func(i int) bool { return tried[i] }))
	// Output:
	// 0 1 2 0
	// 1
}
