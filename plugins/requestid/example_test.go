package requestid_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/plugins/requestid"
)

// upstreamEcho answers with the request id it received.
type upstreamEcho struct{}

func (upstreamEcho) Name() string { return "upstream" }
func (upstreamEcho) Upstream(ctx context.Context, r *phases.Request) (*phases.Response, error) {
	body := "upstream got " + r.Header.Get("X-Request-Id") + ", values hold " + requestid.From(r.Values)
	return &phases.Response{Status: http.StatusOK, Body: phases.BytesBody([]byte(body))}, nil
}

func Example() {
	rid, err := requestid.New(requestid.DefaultConfig())
	if err != nil {
		panic(err)
	}
	chain, err := phases.NewChain(phases.Options{Route: "example"}, rid, upstreamEcho{})
	if err != nil {
		panic(err)
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chain.ServeHTTP(w, r)
	})

	// An acceptable id is kept, and passed on.
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("X-Request-Id", "trace-42")
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	fmt.Println(rec.Header().Get("X-Request-Id"), "|", rec.Body)

	// One that could break a log line is replaced by a fresh UUID.
	req = httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("X-Request-Id", "forged\tstatus=200")
	rec = httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	id := rec.Header().Get("X-Request-Id")
	fmt.Println(len(id), id[14:15], rec.Body.String() == "upstream got "+id+", values hold "+id)
	// Output:
	// trace-42 | upstream got trace-42, values hold trace-42
	// 36 4 true
}
