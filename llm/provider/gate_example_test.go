package provider_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/phasegate/phasegate/fsm"
	"github.com/phasegate/phasegate/llm/provider"
	"github.com/phasegate/phasegate/phases"
)

// closedForMaintenance is an AttemptGate that refuses one instance and
// counts, on each admitted attempt's scope, the attempts in flight.
type closedForMaintenance struct {
	instance string
	inFlight int
}

func (g *closedForMaintenance) Admit(ctx context.Context, r *phases.Request, in *provider.Instance, model string, scope *fsm.Scope) phases.Exit {
	if in.Name() == g.instance {
		return phases.Error(http.StatusServiceUnavailable, "service_unavailable", in.Name()+" is closed for maintenance")
	}
	g.inFlight++
	scope.Acquire(fsm.Resource{Name: "example attempt"}, func() { g.inFlight-- })
	return phases.Exit{}
}

// publishGate is an access hook that gives each request the gate.
type publishGate struct{ gate provider.AttemptGate }

func (publishGate) Name() string { return "gate" }

func (p publishGate) Access(ctx context.Context, r *phases.Request) phases.Exit {
	provider.Gate.Set(r.Values, p.gate)
	return phases.Exit{}
}

// A gate refuses the only instance: nothing is sent and the client gets
// the gate's answer. Once it admits it, the attempt's hold comes back
// when the attempt ends.
func ExampleAttemptGate() {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"choices":[{"message":{"role":"assistant","content":"hi"}}]}`)
	}))
	defer upstream.Close()
	in, err := provider.NewInstance(provider.Config{
		Name: "solo", Provider: provider.ProviderOpenAICompatible, Endpoint: upstream.URL + "/v1/chat/completions",
	}, upstream.Client().Transport)
	if err != nil {
		panic(err)
	}
	gate := &closedForMaintenance{instance: "solo"}
	chain, err := phases.NewChain(phases.Options{Route: "chat"},
		publishGate{gate}, &single{in: in, proxy: &provider.Proxy{Model: in.Model, Instance: "solo"}})
	if err != nil {
		panic(err)
	}
	for range 2 {
		req := httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(`{"model":"m","messages":[]}`))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		chain.ServeHTTP(rec, req)
		fmt.Println(rec.Code, strings.TrimSpace(rec.Body.String()), gate.inFlight)
		gate.instance = ""
	}
	// Output:
	// 503 {"error":{"message":"solo is closed for maintenance","type":"service_unavailable","code":503}} 0
	// 200 {"choices":[{"message":{"role":"assistant","content":"hi"}}]} 0
}
