package forward_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/phasegate/phasegate/forward"
	"github.com/phasegate/phasegate/phases"
)

// A route with an `upstream:` block: its chain ends in an Upstream, which
// proxies to the block's nodes over the gateway's shared transport.
func Example() {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s for %s via %s", r.Method, r.URL.RequestURI(), r.Host, r.Header.Get("X-Forwarded-For"))
	}))
	defer backend.Close()

	transport := forward.NewTransport() // one per gateway, shared by all routes
	defer transport.CloseIdleConnections()

	// upstream: { nodes: { "<backend>": 1 }, timeout: 5s }
	up, err := forward.New(forward.Config{
		Nodes:   map[string]int{backend.Listener.Addr().String(): 1},
		Timeout: 5 * time.Second,
	}, transport)
	if err != nil {
		panic(err)
	}
	chain, err := phases.NewChain(phases.Options{Route: "models"}, up)
	if err != nil {
		panic(err)
	}
	gateway := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chain.ServeHTTP(w, r)
	}))
	defer gateway.Close()

	req, _ := http.NewRequest("GET", gateway.URL+"/v1/models?limit=2", nil)
	req.Host = "api.example.com"
	resp, err := gateway.Client().Do(req)
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, string(body))
	// Output: 200 GET /v1/models?limit=2 for api.example.com via 127.0.0.1
}

// Validate reports each problem of an `upstream:` block at its field.
func ExampleConfig_Validate() {
	cfg := forward.Config{
		Nodes:    map[string]int{"10.0.0.1:80": 0, "10.0.0.2": 1},
		Timeout:  -time.Second,
		PassHost: "rewrite",
	}
	for _, e := range cfg.Validate() {
		fmt.Printf("%s: %s\n", e.Field, e.Msg)
	}
	// Output:
	// nodes["10.0.0.2"]: node "10.0.0.2" is not host:port
	// timeout: must be positive, got -1s
	// pass_host: must be "pass" or "node", got "rewrite"
}
