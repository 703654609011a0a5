package gateway

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/phasegate/phasegate/metrics"
)

// chunkEvent is an OpenAI chat completion chunk carrying text, as an SSE
// event.
func chunkEvent(text string) string {
	return fmt.Sprintf(`data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":%q},"finish_reason":null}]}`+"\n\n", text)
}

// Events the upstream delivers in one write reach the client together (the
// gateway flushes once per upstream read), and none waits for the
// upstream's next write: with two events and half of a third sent at once,
// the client has both whole events while the upstream holds the rest.
func TestStreamEventsOfOneReadAreNotHeldBack(t *testing.T) {
	first := chunkEvent("Hello ") + chunkEvent("from ")
	third := chunkEvent("the upstream.")
	cut := len(third) / 2
	rest := third[cut:] + `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":3,"total_tokens":6}}` + "\n\ndata: [DONE]\n\n"
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, first+third[:cut])
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, rest)
	}))
	t.Cleanup(up.Close)
	tg := newTestGateway(t, fmt.Sprintf(`
routes:
  - id: chat
    uri: /v1/chat/completions
    plugins:
      ai-content-moderation: { deny_patterns: ["(?i)\\bkill\\b"], check_response: true, stream_check_mode: realtime }
      ai-proxy: { provider: openai-compatible, endpoint: "%s/v1/chat/completions" }
`, up.URL))
	body := `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`
	resp, err := http.Post(tg.url("/v1/chat/completions"), "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	var got bytes.Buffer
	two := make(chan error, 1)
	go func() {
		for events := 0; events < 2; {
			line, err := br.ReadBytes('\n')
			got.Write(line)
			if err != nil {
				two <- err
				return
			}
			if len(line) == 1 {
				events++
			}
		}
		two <- nil
	}()
	select {
	case err := <-two:
		if err != nil {
			t.Fatalf("reading the first two events: %v", err)
		}
	case <-time.After(3 * time.Second):
		close(release)
		t.Fatal("events the upstream sent waited for its next write")
	}
	if got.String() != first {
		t.Fatalf("the client's first events differ from the upstream's\n--- client\n%q\n--- upstream\n%q", got.String(), first)
	}
	close(release)
	tail, err := io.ReadAll(br)
	if err != nil {
		t.Fatal(err)
	}
	if string(tail) != third+rest[len(third)-cut:] {
		t.Fatalf("the rest of the stream differs\n--- client\n%q\n--- upstream\n%q", tail, third+rest[len(third)-cut:])
	}
	tg.waitGaugesZero(t, metrics.NameLLMActive, metrics.NameHTTPActive)
}
