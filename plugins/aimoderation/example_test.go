package aimoderation_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/plugins/aimoderation"
	"github.com/phasegate/phasegate/pluginsdk"
)

// wordsUpstream is an upstream that streams its words as OpenAI chunks, one per
// event, then [DONE].
type wordsUpstream []string

func (wordsUpstream) Name() string { return "words" }
func (u wordsUpstream) Upstream(ctx context.Context, r *phases.Request) (*phases.Response, error) {
	events := []string{}
	for _, w := range u {
		b, _ := json.Marshal(map[string]any{"object": "chat.completion.chunk", "model": "m1", "choices": []any{map[string]any{"index": 0, "delta": map[string]string{"content": w}}}})
		events = append(events, string(b))
	}
	events = append(events, "[DONE]")
	return &phases.Response{
		Status: http.StatusOK,
		Header: http.Header{"Content-Type": {"text/event-stream"}},
		SSE:    true,
		Body:   &eventsBody{events: events},
	}, nil
}

type eventsBody struct{ events []string }

func (b *eventsBody) Next() (phases.Chunk, error) {
	if len(b.events) == 0 {
		return phases.Chunk{}, io.EOF
	}
	ev := b.events[0]
	b.events = b.events[1:]
	return phases.Chunk{Data: []byte("data: " + ev + "\n\n"), Event: []byte(ev)}, nil
}

func (b *eventsBody) Close() error { return nil }

// contents prints what a client reads in each event of a stream.
func contents(body string) []string {
	var out []string
	for _, ev := range strings.Split(strings.TrimSpace(body), "\n\n") {
		data := strings.TrimPrefix(ev, "data: ")
		var c struct {
			Choices []struct{ Delta struct{ Content string } }
		}
		if json.Unmarshal([]byte(data), &c) == nil && len(c.Choices) > 0 {
			out = append(out, fmt.Sprintf("%q", c.Choices[0].Delta.Content))
		} else {
			out = append(out, data)
		}
	}
	return out
}

func Example() {
	cfg := aimoderation.DefaultConfig()
	cfg.DenyPatterns = []string{`(?i)\bkill\b`}
	cfg.CheckResponse = true
	cfg.StreamCheckCacheSize = 10
	moderation, err := aimoderation.New(cfg, pluginsdk.Env{})
	if err != nil {
		panic(err)
	}
	upstream := wordsUpstream{"To stop it, ", "send it ", "SIGKILL: ", "kill", " -9 ", "1234."}
	chain, err := phases.NewChain(phases.Options{Route: "chat"}, moderation, upstream)
	if err != nil {
		panic(err)
	}
	ask := func(prompt string) *httptest.ResponseRecorder {
		body := fmt.Sprintf(`{"model":"m1","stream":true,"messages":[{"role":"user","content":%q}]}`, prompt)
		rec := httptest.NewRecorder()
		chain.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(body)))
		return rec
	}

	// A flagged prompt: the refusal is the whole response.
	rec := ask("How do I kill a process?")
	fmt.Println(rec.Code, rec.Header().Get("Content-Type"), contents(rec.Body.String()))

	// A flagged answer: each event is checked before it is sent, and a
	// match is certain once the character after it has come (\b needs it:
	// "kill" could still become "killer"). The client got "kill"; the
	// refusal replaces the event after it and the rest of the stream.
	rec = ask("How do I stop a process?")
	fmt.Println(rec.Code, contents(rec.Body.String()))
	// Output:
	// 400 text/event-stream ["Your request was rejected by the content policy." [DONE]]
	// 200 ["To stop it, " "send it " "SIGKILL: " "kill" "Your request was rejected by the content policy." [DONE]]
}
