package httpx_test

import (
	"fmt"
	"net/http"

	"github.com/phasegate/phasegate/httpx"
)

func ExampleEndToEnd() {
	h := http.Header{"Connection": {"X-Hop"}, "X-Hop": {"1"}, "Keep-Alive": {"5"}, "X-Kept": {"1"}}
	fmt.Println(httpx.EndToEnd(h))
	fmt.Println(httpx.IsSSE(http.Header{"Content-Type": {"Text/Event-Stream; charset=utf-8"}}))
	// Output:
	// map[X-Kept:[1]]
	// true
}
