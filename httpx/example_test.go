package httpx_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

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

// A response the caller has just received is its own: its hop-by-hop
// headers go in place.
func ExampleStripHop() {
	resp := &http.Response{Header: http.Header{"Connection": {"close"}, "Content-Type": {"application/json"}}}
	httpx.StripHop(resp.Header)
	fmt.Println(resp.Header)
	// Output:
	// map[Content-Type:[application/json]]
}

// The upstream request of a client's request, from parts already parsed.
func ExampleOutgoing() {
	in, _ := http.NewRequest(http.MethodGet, "http://gateway/v1/models?limit=2", nil)
	target := &url.URL{Scheme: "http", Host: "10.0.0.7:8080", Path: in.URL.Path, RawQuery: in.URL.RawQuery}
	out := httpx.Outgoing(context.Background(), in.Method, target, httpx.EndToEnd(in.Header))
	fmt.Println(out.Method, out.URL, out.Host)
	// Output:
	// GET http://10.0.0.7:8080/v1/models?limit=2 10.0.0.7:8080
}
