package aiproxymulti_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/phasegate/phasegate/forward"
	"github.com/phasegate/phasegate/metrics"
	"github.com/phasegate/phasegate/mockllm"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/plugins/aiproxymulti"
	"github.com/phasegate/phasegate/pluginsdk"
)

// A primary instance that fails with 503 and a backup (the mock LLM): the
// request falls back to the backup, and the primary's in-flight series is
// back to 0 at once.
func Example() {
	primary := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":{"message":"overloaded"}}`, http.StatusServiceUnavailable)
	}))
	defer primary.Close()
	backup, err := mockllm.Start("127.0.0.1:0", mockllm.Options{})
	if err != nil {
		panic(err)
	}
	defer backup.Close()
	transport := forward.NewTransport()
	defer transport.CloseIdleConnections()
	set, _ := metrics.New(prometheus.NewRegistry())

	cfg := aiproxymulti.DefaultConfig() // fallback_on: [http_5xx, http_429, network]
	cfg.Instances = []aiproxymulti.Instance{
		{Name: "primary", Provider: "openai-compatible", Endpoint: primary.URL + "/v1/chat/completions", Priority: 1,
			Options: map[string]any{"model": "big-model"}},
		{Name: "backup", Provider: "openai-compatible", Endpoint: backup.URL() + "/v1/chat/completions",
			Options: map[string]any{"model": "small-model"}, Timeout: 10 * time.Second},
	}
	plugin, err := aiproxymulti.New(cfg, pluginsdk.Env{Route: "chat", Metrics: set, Transport: transport})
	if err != nil {
		panic(err)
	}
	chain, err := phases.NewChain(phases.Options{Route: "chat"}, plugin)
	if err != nil {
		panic(err)
	}
	served := make(chan struct{}, 1)
	gateway := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { served <- struct{}{} }()
		chain.ServeHTTP(w, r) // returns once the request has reached done
	}))
	defer gateway.Close()

	resp, err := gateway.Client().Post(gateway.URL+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"any","messages":[{"role":"user","content":"hello"}]}`))
	if err != nil {
		panic(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	<-served
	var completion struct{ Model string }
	_ = json.Unmarshal(data, &completion)
	fmt.Println(resp.StatusCode, completion.Model)
	for _, in := range []struct{ name, model string }{{"primary", "big-model"}, {"backup", "small-model"}} {
		labels := []string{"chat", in.name, in.model, "ai_chat"}
		fmt.Printf("%s: in flight %v\n", in.name, testutil.ToFloat64(set.LLMActive.WithLabelValues(labels...)))
	}
	// Tokens and the duration are the backup's, which answered.
	fmt.Println("prompt tokens:", testutil.ToFloat64(set.LLMPromptTokens.WithLabelValues("chat", "backup", "small-model", "ai_chat")))
	fmt.Println("duration series:", testutil.CollectAndCount(set.LLMDuration))
	// Output:
	// 200 small-model
	// primary: in flight 0
	// backup: in flight 0
	// prompt tokens: 1
	// duration series: 1
}

// Validate reports each problem of the config at its field.
func ExampleConfig_Validate() {
	cfg := aiproxymulti.DefaultConfig()
	cfg.FallbackOn = []string{"http_5xx", "http_4xx"}
	cfg.Instances = []aiproxymulti.Instance{
		{Name: "a", Provider: "openai"},
		{Name: "a", Provider: "openai-compatible", Weight: -1},
	}
	for _, e := range cfg.Validate() {
		fmt.Printf("%s: %s\n", e.Field, e.Msg)
	}
	// Output:
	// instances[1].name: "a" is also instances[0]'s name
	// instances[1].weight: must be at least 1, got -1
	// instances[1].endpoint: is required for provider "openai-compatible"
	// fallback_on[1]: must be "http_5xx", "http_429" or "network", got "http_4xx"
}
