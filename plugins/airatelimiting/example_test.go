package airatelimiting_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/plugins/airatelimiting"
	"github.com/phasegate/phasegate/pluginsdk"
	"github.com/phasegate/phasegate/ratelimit"
)

// A requests limit in front of an upstream: the second request of the
// window is refused, with the headers a client acts on.
func ExampleNewWithStore() {
	cfg := airatelimiting.DefaultConfig()
	cfg.Limits = []airatelimiting.LimitConfig{{Name: "rpm", Key: "header:X-Tenant", Requests: 1, Window: time.Hour}}
	p, err := airatelimiting.NewWithStore(cfg, pluginsdk.Env{Route: "chat"}, ratelimit.NewLocal(ratelimit.LocalOptions{}))
	if err != nil {
		panic(err)
	}
	defer p.Close()
	chain, err := phases.NewChain(phases.Options{Route: "chat"}, p, completion{})
	if err != nil {
		panic(err)
	}
	for range 2 {
		req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions",
			strings.NewReader(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`))
		req.Header.Set("X-Tenant", "acme")
		rec := httptest.NewRecorder()
		chain.ServeHTTP(rec, req)
		fmt.Println(rec.Code, rec.Header().Get("X-RateLimit-Remaining-rpm"), rec.Header().Get("Retry-After") != "")
	}
	// Output:
	// 200 0 false
	// 429 0 true
}

// Config errors name their field.
func ExampleConfig_Validate() {
	cfg := airatelimiting.DefaultConfig()
	cfg.Limits = []airatelimiting.LimitConfig{{Name: "tpm", Tokens: 1000}}
	for _, e := range cfg.Validate() {
		fmt.Println(e.Field+":", e.Msg)
	}
	// Output:
	// limits[0].window: must be a positive whole number of milliseconds, got 0s
}

// A limit on one upstream instance of ai-proxy-multi, by its name.
func ExampleInstanceLimit() {
	cfg := airatelimiting.DefaultConfig()
	cfg.Limits = []airatelimiting.LimitConfig{{Name: "rpm", Requests: 600, Window: time.Minute}}
	cfg.Instances = map[string]airatelimiting.InstanceLimit{
		"primary": {Tokens: 200000, Window: time.Minute},
		"backup":  {Tokens: 1000, Requests: 10, Window: time.Minute},
	}
	for _, e := range cfg.Validate() {
		fmt.Println(e.Field+":", e.Msg)
	}
	// Output:
	// instances["backup"]: exactly one of tokens or requests must be set
}
