package gateway

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// BenchmarkPlainRoute is one GET through a plain route over real sockets,
// access log included (to io.Discard): a profile target for the gateway's
// per-request cost beside its upstream.
func BenchmarkPlainRoute(b *testing.B) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true,"padding":"0123456789012345678901234567890123456"}`)
	}))
	defer origin.Close()
	url, client := benchServer(b, fmt.Sprintf(`
routes:
  - id: plain
    uri: /plain
    upstream: { nodes: { %q: 1 } }
`, origin.Listener.Addr().String()))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Get(url + "/plain")
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}

// benchServer serves the gateway of the config yaml on a socket for the
// length of a benchmark, and returns its URL and a client that keeps up
// to 64 connections.
func benchServer(b *testing.B, yaml string) (string, *http.Client) {
	srv := httptest.NewServer(benchGateway(b, yaml))
	b.Cleanup(srv.Close)
	return srv.URL, &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
}

// benchGateway is the gateway of the config yaml for a benchmark, its
// access log to io.Discard and its metrics on a registry of its own.
func benchGateway(b *testing.B, yaml string) *Gateway {
	cfg, err := LoadConfig("b.yaml", []byte(yaml), nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	l := zerolog.New(io.Discard)
	g, err := New(cfg, Options{Registerer: prometheus.NewRegistry(), Logger: &l})
	if err != nil {
		b.Fatal(err)
	}
	return g
}
