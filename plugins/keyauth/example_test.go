package keyauth_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/plugins/keyauth"
	"github.com/phasegate/phasegate/pluginsdk"
)

// hello answers with the consumer key-auth found and what it can see of the
// key.
type hello struct{}

func (hello) Name() string { return "hello" }
func (hello) Upstream(ctx context.Context, r *phases.Request) (*phases.Response, error) {
	body := fmt.Sprintf("hello %s (apikey header %q, query %q)",
		keyauth.ConsumerFrom(r.Values), r.Header.Get("apikey"), r.URL.RawQuery)
	return &phases.Response{Status: http.StatusOK, Body: phases.BytesBody([]byte(body))}, nil
}

func Example() {
	cfg := keyauth.DefaultConfig() // hide_credentials: the key stays here
	auth, err := keyauth.New(cfg, []pluginsdk.ConsumerConfig{
		{Username: "alice", Key: "alice-secret"},
		{Username: "bob", Key: "bob-secret"},
	})
	if err != nil {
		panic(err)
	}
	chain, err := phases.NewChain(phases.Options{Route: "example"}, auth, hello{})
	if err != nil {
		panic(err)
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chain.ServeHTTP(w, r)
	})

	for _, target := range []string{
		"/v1/models",
		"/v1/models?apikey=guess",
		"/v1/models?limit=5&apikey=bob-secret",
	} {
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
		fmt.Println(rec.Code, rec.Body)
	}
	req := httptest.NewRequest(http.MethodGet, "/v1/models", nil)
	req.Header.Set("apikey", "alice-secret")
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	fmt.Println(rec.Code, rec.Body)
	// Output:
	// 401 {"error":{"message":"Missing API key in request","type":"invalid_request_error","code":401}}
	// 401 {"error":{"message":"Invalid API key in request","type":"invalid_request_error","code":401}}
	// 200 hello bob (apikey header "", query "limit=5")
	// 200 hello alice (apikey header "", query "")
}
