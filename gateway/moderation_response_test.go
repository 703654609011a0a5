package gateway

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/phasegate/phasegate/metrics"
)

// scriptedUpstream answers a stream request with events and a non-stream
// one with body.
func scriptedUpstream(events []string, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Stream bool }
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &req)
		if !req.Stream {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, body)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		for _, ev := range events {
			io.WriteString(w, "data: "+ev+"\n\n")
			w.(http.Flusher).Flush()
		}
	}
}

func sseChunk(choices ...string) string {
	return `{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[` + strings.Join(choices, ",") + `]}`
}

func sseDelta(i int, delta string) string {
	return fmt.Sprintf(`{"index":%d,"delta":%s,"finish_reason":null}`, i, delta)
}

func sseContent(s string) string {
	b, _ := json.Marshal(map[string]string{"content": s})
	return string(b)
}

// clientText is what a client shows of a stream: the content of each
// choice, and whether the stream ended with the refusal.
func clientText(t *testing.T, body string) (texts map[int]string, refused bool) {
	t.Helper()
	texts = map[int]string{}
	for _, ev := range strings.Split(strings.TrimSuffix(body, "\n\n"), "\n\n") {
		data := strings.TrimPrefix(ev, "data: ")
		var c struct {
			Choices []struct {
				Index int
				Delta struct{ Content string }
			}
		}
		if json.Unmarshal([]byte(data), &c) != nil {
			continue
		}
		for _, ch := range c.Choices {
			if ch.Delta.Content == denyMessage {
				refused = true
				continue
			}
			texts[ch.Index] += ch.Delta.Content
		}
	}
	return texts, refused
}

// Response moderation over real sockets: choices apart, tool-call arguments
// assembled, and in realtime mode nothing past a match reaches the client,
// even in text without word breaks.
func TestResponseModerationOverSockets(t *testing.T) {
	const config = `
routes:
  - id: chat
    uri: /v1/chat/completions
    plugins:
      ai-content-moderation:
        deny_patterns: ["(?i)\\bkill\\b", "(?i)detonate"]
        check_request: false
        check_response: true
        stream_check_cache_size: 16
        deny_message: %q
      ai-proxy: { provider: openai-compatible, endpoint: "%s/v1/chat/completions" }
`
	role := sseChunk(sseDelta(0, `{"role":"assistant","content":""}`), sseDelta(1, `{"role":"assistant","content":""}`))
	noBreaks := strings.Repeat("x", 200) + "DETONATE" + strings.Repeat("y", 200)
	var noBreakEvents []string
	for i := 0; i < len(noBreaks); i += 5 {
		noBreakEvents = append(noBreakEvents, sseChunk(sseDelta(0, sseContent(noBreaks[i:min(i+5, len(noBreaks))]))))
	}
	cases := []struct {
		name    string
		events  []string
		body    string
		refused bool
		check   func(t *testing.T, texts map[int]string)
	}{
		{name: "a match across two choices",
			events: []string{role, sseChunk(sseDelta(0, sseContent("Do not ki"))), sseChunk(sseDelta(1, sseContent("ll it"))), sseChunk(sseDelta(0, sseContent(", no."))), "[DONE]"},
			body:   `{"object":"chat.completion","model":"m","choices":[{"index":0,"message":{"content":"Do not ki"}},{"index":1,"message":{"content":"ll it"}}]}`},
		{name: "a match within one choice",
			events:  []string{role, sseChunk(sseDelta(1, sseContent("I will ki"))), sseChunk(sseDelta(0, sseContent("Fine"))), sseChunk(sseDelta(1, sseContent("ll it"))), "[DONE]"},
			body:    `{"object":"chat.completion","model":"m","choices":[{"index":0,"message":{"content":"Fine"}},{"index":1,"message":{"content":"I will kill it"}}]}`,
			refused: true,
			check: func(t *testing.T, texts map[int]string) {
				if texts[1] != "I will ki" {
					t.Fatalf("choice 1 showed %q, want only the text before the match", texts[1])
				}
			}},
		{name: "tool-call arguments in fragments",
			events:  []string{role, sseChunk(sseDelta(0, `{"tool_calls":[{"index":0,"id":"c","type":"function","function":{"name":"sh","arguments":"{\"cmd\":\"ki"}}]}`)), sseChunk(sseDelta(0, `{"tool_calls":[{"index":0,"function":{"arguments":"ll -9\"}"}}]}`)), "[DONE]"},
			body:    `{"object":"chat.completion","model":"m","choices":[{"index":0,"message":{"tool_calls":[{"function":{"name":"sh","arguments":"{\"cmd\":\"kill -9\"}"}}]}}]}`,
			refused: true},
		{name: "refusal field",
			events:  []string{role, sseChunk(sseDelta(0, `{"refusal":"I won't detonate it"}`)), "[DONE]"},
			body:    `{"object":"chat.completion","model":"m","choices":[{"index":0,"message":{"refusal":"I won't detonate it"}}]}`,
			refused: true},
		{name: "no word breaks",
			events:  append(append([]string{role}, noBreakEvents...), "[DONE]"),
			body:    `{"object":"chat.completion","model":"m","choices":[{"index":0,"message":{"content":"` + noBreaks + `"}}]}`,
			refused: true,
			check: func(t *testing.T, texts map[int]string) {
				if start := strings.Index(noBreaks, "DETONATE"); len(texts[0])-start > len("DETONATE") || !strings.HasPrefix(noBreaks, texts[0]) {
					t.Fatalf("%d bytes past the start of the match reached the client: %q", len(texts[0])-start, texts[0])
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			up := httptestServer(t, scriptedUpstream(tc.events, tc.body))
			tg := newTestGateway(t, fmt.Sprintf(config, denyMessage, up))
			url := tg.url("/v1/chat/completions")

			code, body := postJSON(t, url, `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
			texts, refused := clientText(t, body)
			if code != http.StatusOK || refused != tc.refused || !strings.HasSuffix(body, "data: [DONE]\n\n") {
				t.Fatalf("stream: got %d, refused %v, %q; want refused %v", code, refused, body, tc.refused)
			}
			if tc.check != nil {
				tc.check(t, texts)
			}

			code, body = postJSON(t, url, `{"model":"m","messages":[{"role":"user","content":"hi"}]}`)
			if refusedWhole := strings.Contains(body, denyMessage); refusedWhole != tc.refused || (code == http.StatusOK) == tc.refused {
				t.Fatalf("non-stream: got %d %s, want refused %v", code, body, tc.refused)
			}
			tg.waitGaugesZero(t, metrics.NameLLMActive, metrics.NameHTTPActive)
		})
	}
}
