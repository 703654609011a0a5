package provider_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/phasegate/phasegate/llm"
	"github.com/phasegate/phasegate/llm/provider"
	"github.com/phasegate/phasegate/phases"
)

// single is the smallest AI upstream plugin: a Proxy over one Instance, as
// ai-proxy is.
type single struct {
	proxy *provider.Proxy
	in    *provider.Instance
}

func (*single) Name() string { return "single" }

func (s *single) Access(ctx context.Context, r *phases.Request) phases.Exit {
	return s.proxy.Access(r)
}

func (s *single) Upstream(ctx context.Context, r *phases.Request) (*phases.Response, error) {
	used := false
	return s.proxy.Serve(ctx, r, func() *provider.Instance {
		if used {
			return nil
		}
		used = true
		return s.in
	}, nil)
}

func (s *single) Log(ctx context.Context, sum *phases.Summary) { s.proxy.Log(sum) }

// A streamed completion passes event by event, and the request's LLMInfo
// follows it.
func Example() {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Printf("upstream got %s\n", body)
		w.Header().Set("Content-Type", "text/event-stream")
		for _, ev := range []string{
			`{"choices":[{"delta":{"content":"Hel"}}]}`,
			`{"choices":[{"delta":{"content":"lo"}}]}`,
			`{"choices":[],"usage":{"prompt_tokens":4,"completion_tokens":2,"total_tokens":6}}`,
			`[DONE]`,
		} {
			fmt.Fprintf(w, "data: %s\n\n", ev)
			w.(http.Flusher).Flush()
		}
	}))
	defer upstream.Close()

	in, err := provider.NewInstance(provider.Config{
		Name:     "solo",
		Provider: provider.ProviderOpenAICompatible,
		Endpoint: upstream.URL + "/v1/chat/completions",
		Options:  map[string]any{"model": "small"},
	}, upstream.Client().Transport)
	if err != nil {
		panic(err)
	}
	plugin := &single{in: in, proxy: &provider.Proxy{Model: in.Model, Instance: "solo"}}
	infos := make(chan llm.Info, 1)
	chain, err := phases.NewChain(phases.Options{Route: "chat", Hooks: phases.Hooks{
		Finished: func(_ context.Context, s *phases.Summary) {
			info, _ := llm.InfoKey.Get(s.Values)
			infos <- *info
		},
	}}, plugin)
	if err != nil {
		panic(err)
	}

	req := httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(`{"model":"big","messages":[],"stream":true}`))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	chain.ServeHTTP(rec, req)
	fmt.Print(rec.Code, " ", rec.Header().Get("Content-Type"), "\n", rec.Body.String())
	info := <-infos
	fmt.Println(info.Instance, info.Model, info.PromptTokens, info.CompletionTokens, info.TTFT > 0)
	// Output:
	// upstream got {"messages":[],"stream":true,"model":"small","stream_options":{"include_usage":true}}
	// 200 text/event-stream
	// data: {"choices":[{"delta":{"content":"Hel"}}]}
	//
	// data: {"choices":[{"delta":{"content":"lo"}}]}
	//
	// data: {"choices":[],"usage":{"prompt_tokens":4,"completion_tokens":2,"total_tokens":6}}
	//
	// data: [DONE]
	//
	// solo small 4 2 true
}
