package aiproxy_test

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
	"github.com/phasegate/phasegate/plugins/aiproxy"
	"github.com/phasegate/phasegate/pluginsdk"
)

// A chat route whose upstream is ai-proxy, in front of the mock LLM.
func Example() {
	mock, err := mockllm.Start("127.0.0.1:0", mockllm.Options{})
	if err != nil {
		panic(err)
	}
	defer mock.Close()
	transport := forward.NewTransport() // the gateway's shared transport
	defer transport.CloseIdleConnections()
	set, _ := metrics.New(prometheus.NewRegistry())

	// ai-proxy: { provider: openai-compatible, endpoint: <mock>, options: { model: gpt-4o-mini } }
	cfg := aiproxy.DefaultConfig()
	cfg.Provider = aiproxy.ProviderOpenAICompatible
	cfg.Endpoint = mock.URL() + "/v1/chat/completions"
	cfg.Options = map[string]any{"model": "gpt-4o-mini"}
	cfg.Timeout = 10 * time.Second
	plugin, err := aiproxy.New(cfg, pluginsdk.Env{Route: "chat", Metrics: set, Transport: transport})
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

	body := `{"model":"any","messages":[{"role":"user","content":"say hello"}]}`
	resp, err := gateway.Client().Post(gateway.URL+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		panic(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var completion struct {
		Model   string `json:"model"`
		Choices []struct {
			Message struct {
				Content string `json:"content"`
			} `json:"message"`
		} `json:"choices"`
	}
	_ = json.Unmarshal(data, &completion)
	fmt.Println(resp.StatusCode, completion.Model, completion.Choices[0].Message.Content)
	<-served

	labels := []string{"chat", "ai-proxy", "gpt-4o-mini", "ai_chat"}
	fmt.Println("prompt tokens:", testutil.ToFloat64(set.LLMPromptTokens.WithLabelValues(labels...)))
	fmt.Println("completion tokens:", testutil.ToFloat64(set.LLMCompletionTokens.WithLabelValues(labels...)))
	fmt.Println("in flight:", testutil.ToFloat64(set.LLMActive.WithLabelValues(labels...)))
	// Output:
	// 200 gpt-4o-mini Hello from the phasegate mock LLM.
	// prompt tokens: 2
	// completion tokens: 6
	// in flight: 0
}

// Validate reports each problem of the config at its field.
func ExampleConfig_Validate() {
	cfg := aiproxy.DefaultConfig()
	cfg.Provider = aiproxy.ProviderOpenAICompatible
	cfg.Options = map[string]any{"model": 4}
	cfg.Timeout = -time.Second
	for _, e := range cfg.Validate() {
		fmt.Printf("%s: %s\n", e.Field, e.Msg)
	}
	// Output:
	// endpoint: is required for provider "openai-compatible"
	// options.model: must be a non-empty string, got a number
	// timeout: must be positive, got -1s
}
