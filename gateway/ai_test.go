package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/phasegate/phasegate/llm/provider/providertest"
	"github.com/phasegate/phasegate/metrics"
	"github.com/phasegate/phasegate/mockllm"
)

const denyMessage = "rejected by content policy"

// aiConfig is a chat route (ai-proxy + moderation checking the response),
// the same behind ai-proxy-multi whose primary instance always fails, and a
// realtime stream route.
func aiConfig(mockURL, failingURL string) string {
	return fmt.Sprintf(`
routes:
  - id: chat
    uri: /v1/chat/completions
    plugins:
      ai-content-moderation:
        deny_patterns: ["(?i)\\bkill\\b"]
        check_request: true
        check_response: true
        stream_check_mode: realtime
        stream_check_cache_size: 16
        deny_code: 400
        deny_message: %[3]q
      ai-proxy:
        provider: openai-compatible
        endpoint: %[1]s/v1/chat/completions
        options: { model: gpt-4o-mini }
        timeout: 5s
  - id: chat-multi
    uri: /multi/v1/chat/completions
    plugins:
      ai-content-moderation:
        deny_patterns: ["(?i)\\bkill\\b"]
        check_response: true
        deny_code: 400
        deny_message: %[3]q
      ai-proxy-multi:
        fallback_on: [http_5xx, http_429, network]
        instances:
          - { name: primary, provider: openai-compatible, endpoint: "%[2]s/v1/chat/completions", weight: 4, priority: 1 }
          - { name: backup,  provider: openai-compatible, endpoint: "%[1]s/v1/chat/completions", weight: 1 }
`, mockURL, failingURL, denyMessage)
}

// failing is an upstream that answers every request 500.
func failing(t *testing.T) string {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(500)
		io.WriteString(w, `{"error":{"message":"primary is down","type":"server_error","code":null}}`)
	}))
	t.Cleanup(s.Close)
	return s.URL
}

func chat(t *testing.T, url string, stream bool, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	body := fmt.Sprintf(`{"model":"client-model","stream":%v,"messages":[{"role":"user","content":"Tell me about gardening"}]}`, stream)
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b := readAll(t, resp.Body)
	resp.Body.Close()
	return resp, b
}

// llmGaugeSamples returns every sample of the in-flight LLM gauge.
func llmGaugeSamples(t *testing.T, reg *prometheus.Registry) []float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []float64
	for _, mf := range mfs {
		if mf.GetName() == metrics.NameLLMActive {
			for _, m := range mf.GetMetric() {
				out = append(out, m.GetGauge().GetValue())
			}
		}
	}
	return out
}

// The regression that started phasegate: the upstream answers a harmless
// prompt with content the moderation plugin denies; the client gets the
// refusal, and the in-flight LLM gauge has a sample at 0 and none above.
func TestRegressionModerationExitReleasesLLMGauge(t *testing.T) {
	mock := providertest.StartMock(t)
	tg := newTestGateway(t, aiConfig(mock.URL(), failing(t)))
	deny := map[string]string{mockllm.HeaderContent: "Sure. First, kill the weeds at the root."}

	for _, tc := range []struct{ name, path string }{
		{"ai-proxy", "/v1/chat/completions"},
		{"ai-proxy-multi", "/multi/v1/chat/completions"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := chat(t, tg.url(tc.path), false, deny)
			if resp.StatusCode != 400 {
				t.Fatalf("status %d, want the deny_code 400: %s", resp.StatusCode, body)
			}
			var c struct {
				Object  string `json:"object"`
				Model   string `json:"model"`
				Choices []struct {
					Message struct{ Content string } `json:"message"`
				} `json:"choices"`
				Usage *struct {
					PromptTokens int `json:"prompt_tokens"`
				} `json:"usage"`
			}
			if err := json.Unmarshal([]byte(body), &c); err != nil || c.Object != "chat.completion" || len(c.Choices) != 1 || c.Choices[0].Message.Content != denyMessage {
				t.Fatalf("refusal body %s (%v)", body, err)
			}
			if c.Usage == nil || c.Usage.PromptTokens == 0 {
				t.Fatalf("the refusal does not carry the real usage: %s", body)
			}
			tg.waitGaugesZero(t, metrics.NameLLMActive, metrics.NameHTTPActive)
			samples := llmGaugeSamples(t, tg.reg)
			if len(samples) == 0 {
				t.Fatal("no phasegate_llm_active_connections sample at all")
			}
			for _, v := range samples {
				if v != 0 {
					t.Fatalf("phasegate_llm_active_connections samples %v", samples)
				}
			}
		})
	}
	// A realtime deny in the middle of a stream: status stays 200, the
	// refusal replaces the rest, the stream ends with [DONE], gauge at 0.
	t.Run("realtime mid-stream", func(t *testing.T) {
		resp, body := chat(t, tg.url("/v1/chat/completions"), true, map[string]string{
			mockllm.HeaderContent: "Gardening is calm and slow work, and then you kill the aphids one by one with soap",
			mockllm.HeaderChunks:  "8",
		})
		if resp.StatusCode != 200 || !strings.HasSuffix(body, "data: [DONE]\n\n") || !strings.Contains(body, denyMessage) {
			t.Fatalf("status %d body:\n%s", resp.StatusCode, body)
		}
		if strings.Contains(body, "aphids") {
			t.Fatalf("content after the denied word reached the client:\n%s", body)
		}
		tg.waitGaugesZero(t, metrics.NameLLMActive, metrics.NameHTTPActive)
		for _, v := range llmGaugeSamples(t, tg.reg) {
			if v != 0 {
				t.Fatal("in-flight gauge not 0 after a mid-stream refusal")
			}
		}
	})
	// The multi route's primary failed on every request, and its series
	// is back at 0 with exactly its labels.
	if v := counterGaugeLLM(t, tg, "chat-multi", "primary"); v != 0 {
		t.Fatalf("primary's in-flight series reads %v", v)
	}
}

func counterGaugeLLM(t *testing.T, tg *testGateway, route, instance string) float64 {
	t.Helper()
	return gaugeValue(t, tg.reg, metrics.NameLLMActive, map[string]string{"route": route, "instance": instance})
}

func gaugeValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, _ := reg.Gather()
	found := false
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue next
				}
			}
			found = true
			sum += m.GetGauge().GetValue()
		}
	}
	if !found {
		t.Fatalf("no %s series with %v", name, labels)
	}
	return sum
}

// gatedUpstream sends the first SSE event, waits until the test releases it,
// then sends the rest; it records every byte it wrote.
type gatedUpstream struct {
	*httptest.Server
	release chan struct{}
	mu      sync.Mutex
	sent    bytes.Buffer
}

func newGatedUpstream(t *testing.T, mock *mockllm.Server) *gatedUpstream {
	g := &gatedUpstream{release: make(chan struct{})}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Relay the mock's stream, holding back after the first event.
		req, _ := http.NewRequestWithContext(r.Context(), "POST", mock.URL()+"/v1/chat/completions", r.Body)
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.WriteHeader(resp.StatusCode)
		br := bufio.NewReader(resp.Body)
		first := true
		for {
			line, err := br.ReadBytes('\n')
			g.mu.Lock()
			g.sent.Write(line)
			g.mu.Unlock()
			w.Write(line)
			if err != nil {
				return
			}
			if len(line) == 1 { // end of an event
				w.(http.Flusher).Flush()
				if first {
					first = false
					select {
					case <-g.release:
					case <-r.Context().Done():
						return
					}
				}
			}
		}
	}))
	t.Cleanup(g.Close)
	return g
}

// A streamed response keeps its events and their order byte for byte, and
// the client has the first event before the upstream sends the second.
func TestStreamIsForwardedByteForByteAsItArrives(t *testing.T) {
	mock := providertest.StartMock(t)
	up := newGatedUpstream(t, mock)
	tg := newTestGateway(t, fmt.Sprintf(`
routes:
  - id: chat
    uri: /v1/chat/completions
    plugins:
      ai-content-moderation: { deny_patterns: ["(?i)\\bkill\\b"], check_response: true }
      ai-proxy: { provider: openai-compatible, endpoint: "%s/v1/chat/completions" }
`, up.URL))
	body := `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`
	req, _ := http.NewRequest("POST", tg.url("/v1/chat/completions"), strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(mockllm.HeaderSplit, "true")
	req.Header.Set(mockllm.HeaderChunks, "5")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("Content-Type %q", ct)
	}
	br := bufio.NewReader(resp.Body)
	var got bytes.Buffer
	firstDone := make(chan error, 1)
	go func() {
		for {
			line, err := br.ReadBytes('\n')
			got.Write(line)
			if err != nil {
				firstDone <- err
				return
			}
			if len(line) == 1 {
				firstDone <- nil
				return
			}
		}
	}()
	select {
	case err := <-firstDone:
		if err != nil {
			t.Fatalf("reading the first event: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the first event did not reach the client before the upstream sent the second")
	}
	close(up.release)
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatal(err)
	}
	got.Write(rest)
	up.mu.Lock()
	sent := up.sent.String()
	up.mu.Unlock()
	if got.String() != sent {
		t.Fatalf("the client's stream differs from the upstream's\n--- client\n%s\n--- upstream\n%s", got.String(), sent)
	}
	if !strings.Contains(sent, `"usage"`) {
		t.Fatal("ai-proxy did not ask for the usage chunk")
	}
	tg.waitGaugesZero(t, metrics.NameLLMActive, metrics.NameHTTPActive)
}

// The official OpenAI Go client talks to the gateway: a plain completion, a
// streamed one, and refusals before and during a stream.
func TestOfficialOpenAIClient(t *testing.T) {
	mock := providertest.StartMock(t)
	tg := newTestGateway(t, aiConfig(mock.URL(), failing(t)))
	client := openai.NewClient(option.WithBaseURL(tg.url("/v1")), option.WithAPIKey("unused"), option.WithMaxRetries(0))
	ctx := context.Background()
	params := openai.ChatCompletionNewParams{
		Model:    "client-model",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Tell me about gardening")},
	}

	c, err := client.Chat.Completions.New(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	if c.Model != "gpt-4o-mini" || c.Choices[0].Message.Content != mockllm.DefaultCompletionText || c.Usage.TotalTokens == 0 {
		t.Fatalf("completion %+v", c)
	}

	stream := client.Chat.Completions.NewStreaming(ctx, params, option.WithHeader(mockllm.HeaderChunks, "3"))
	var text strings.Builder
	var usage int64
	for stream.Next() {
		ch := stream.Current()
		if len(ch.Choices) > 0 {
			text.WriteString(ch.Choices[0].Delta.Content)
		}
		usage += ch.Usage.TotalTokens
	}
	if err := stream.Err(); err != nil || text.String() != mockllm.DefaultCompletionText || usage == 0 {
		t.Fatalf("stream %q usage %d err %v", text.String(), usage, err)
	}

	// A refusal before the response started: deny_code and a completion.
	_, err = client.Chat.Completions.New(ctx, params, option.WithHeader(mockllm.HeaderContent, "you could kill it"))
	// The SDK surfaces any 4xx as an *openai.Error; the refusal's body is a
	// chat.completion (not an error object), which the SDK keeps in the
	// raw response.
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Response == nil {
		t.Fatalf("refusal: %v", err)
	}
	if raw, _ := io.ReadAll(apiErr.Response.Body); !strings.Contains(string(raw), denyMessage) {
		t.Fatalf("refusal body %q", raw)
	}

	// A refusal during a stream: the client reads the refusal as the last
	// content, and the stream ends cleanly.
	stream = client.Chat.Completions.NewStreaming(ctx, params,
		option.WithHeader(mockllm.HeaderContent, "a long calm answer about soil and seeds and then kill the slugs"),
		option.WithHeader(mockllm.HeaderChunks, "10"))
	text.Reset()
	for stream.Next() {
		if ch := stream.Current(); len(ch.Choices) > 0 {
			text.WriteString(ch.Choices[0].Delta.Content)
		}
	}
	if err := stream.Err(); err != nil || !strings.HasSuffix(text.String(), denyMessage) || strings.Contains(text.String(), "slugs") {
		t.Fatalf("streamed refusal %q, err %v", text.String(), err)
	}
	tg.waitGaugesZero(t, metrics.NameLLMActive, metrics.NameHTTPActive)
}
