package aimoderation_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/phasegate/phasegate/internal/plugintest"
	"github.com/phasegate/phasegate/llm"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/plugins/aimoderation"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// upstreamModel is the model the fake ai-proxy records as sent upstream; the
// client's bodies ask for clientModel, so that a refusal's model shows
// which one it took.
const (
	upstreamModel = "gpt-upstream"
	clientModel   = "gpt-client"
)

// fakeProxy mimics ai-proxy's access hook (priority 1100): it records the
// request's LLMInfo with the model sent upstream and the client's stream
// flag.
type fakeProxy struct{}

func (fakeProxy) Name() string  { return "fake-ai-proxy" }
func (fakeProxy) Priority() int { return 1100 }
func (fakeProxy) Access(ctx context.Context, r *phases.Request) phases.Exit {
	body, _ := r.Body()
	var req struct {
		Stream bool `json:"stream"`
	}
	_ = json.Unmarshal(body, &req)
	llm.InfoKey.Set(r.Values, &llm.Info{Model: upstreamModel, Instance: "ai-proxy", Stream: req.Stream})
	return phases.Exit{}
}

// usage is the canned usage of the test upstream's responses.
type usage struct{ prompt, completion int }

// completionUpstream answers a non-streamed chat.completion (or, with a
// status ≥ 400, an error body) whose content is content, and records its
// usage in LLMInfo as ai-proxy does before the body filters run.
type completionUpstream struct {
	status  int
	content string
	usage   *usage
	calls   int
}

func (u *completionUpstream) Name() string { return "upstream" }
func (u *completionUpstream) Upstream(ctx context.Context, r *phases.Request) (*phases.Response, error) {
	u.calls++
	status := u.status
	if status == 0 {
		status = http.StatusOK
	}
	if info, ok := llm.InfoKey.Get(r.Values); ok && u.usage != nil && status < 400 {
		info.UsageKnown, info.PromptTokens, info.CompletionTokens = true, u.usage.prompt, u.usage.completion
	}
	return &phases.Response{
		Status: status,
		Header: http.Header{"Content-Type": {"application/json"}},
		Body:   phases.BytesBody([]byte(u.body())),
	}, nil
}

func (u *completionUpstream) body() string {
	if u.status >= 400 {
		b, _ := json.Marshal(map[string]any{"error": map[string]any{"message": u.content, "type": "server_error"}})
		return string(b)
	}
	m := map[string]any{
		"id": "chatcmpl-up", "object": "chat.completion", "created": 1, "model": upstreamModel,
		"choices": []any{map[string]any{"index": 0, "message": map[string]any{"role": "assistant", "content": u.content}, "finish_reason": "stop"}},
	}
	if u.usage != nil {
		m["usage"] = map[string]any{"prompt_tokens": u.usage.prompt, "completion_tokens": u.usage.completion, "total_tokens": u.usage.prompt + u.usage.completion}
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// contentEvent is a chat.completion.chunk carrying content.
func contentEvent(content string) string {
	b, _ := json.Marshal(map[string]any{
		"id": "chatcmpl-up", "object": "chat.completion.chunk", "created": 1, "model": upstreamModel,
		"choices": []any{map[string]any{"index": 0, "delta": map[string]any{"content": content}, "finish_reason": nil}},
	})
	return string(b)
}

// roleEvent is the first chunk of an OpenAI stream.
func roleEvent() string {
	return `{"id":"chatcmpl-up","object":"chat.completion.chunk","created":1,"model":"gpt-upstream","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`
}

func finishEvent() string {
	return `{"id":"chatcmpl-up","object":"chat.completion.chunk","created":1,"model":"gpt-upstream","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`
}

func usageEvent(u usage) string {
	b, _ := json.Marshal(map[string]any{
		"id": "chatcmpl-up", "object": "chat.completion.chunk", "created": 1, "model": upstreamModel, "choices": []any{},
		"usage": map[string]any{"prompt_tokens": u.prompt, "completion_tokens": u.completion, "total_tokens": u.prompt + u.completion},
	})
	return string(b)
}

// stream builds an OpenAI stream's events: a role chunk, one chunk per
// piece of content, a finish chunk, the usage chunk when u is not nil, and
// [DONE].
func stream(u *usage, pieces ...string) []string {
	evs := []string{roleEvent()}
	for _, p := range pieces {
		evs = append(evs, contentEvent(p))
	}
	evs = append(evs, finishEvent())
	if u != nil {
		evs = append(evs, usageEvent(*u))
	}
	return append(evs, "[DONE]")
}

// wire is the bytes of events on the wire.
func wire(events ...string) string {
	var b strings.Builder
	for _, e := range events {
		b.WriteString("data: " + e + "\n\n")
	}
	return b.String()
}

// streamUpstream answers a text/event-stream of events, one chunk each, as
// ai-proxy delivers them, updating LLMInfo's usage when the usage chunk
// passes.
type streamUpstream struct {
	events []string
	status int

	mu     sync.Mutex
	closed int
}

func (u *streamUpstream) Name() string { return "upstream" }
func (u *streamUpstream) Upstream(ctx context.Context, r *phases.Request) (*phases.Response, error) {
	status := u.status
	if status == 0 {
		status = http.StatusOK
	}
	info, _ := llm.InfoKey.Get(r.Values)
	return &phases.Response{
		Status: status,
		Header: http.Header{"Content-Type": {"text/event-stream"}},
		SSE:    true,
		Body:   &sseBody{u: u, info: info},
	}, nil
}

func (u *streamUpstream) closes() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.closed
}

type sseBody struct {
	u    *streamUpstream
	info *llm.Info
	i    int
}

func (b *sseBody) Next() (phases.Chunk, error) {
	if b.i >= len(b.u.events) {
		return phases.Chunk{}, io.EOF
	}
	ev := b.u.events[b.i]
	b.i++
	if b.info != nil && strings.Contains(ev, `"usage"`) {
		var u struct {
			Usage struct {
				Prompt     int `json:"prompt_tokens"`
				Completion int `json:"completion_tokens"`
			} `json:"usage"`
		}
		if json.Unmarshal([]byte(ev), &u) == nil {
			b.info.UsageKnown, b.info.PromptTokens, b.info.CompletionTokens = true, u.Usage.Prompt, u.Usage.Completion
		}
	}
	return phases.Chunk{Data: []byte("data: " + ev + "\n\n"), Event: []byte(ev)}, nil
}

func (b *sseBody) Close() error {
	b.u.mu.Lock()
	b.u.closed++
	b.u.mu.Unlock()
	return nil
}

// logProbe records what the log phase sees.
type logProbe struct {
	verdict    string // aimoderation.VerdictFrom
	moderation string // LLMInfo.Moderation
	cause      phases.Cause
	exitPlugin string
	status     int
}

func (p *logProbe) Name() string { return "log-probe" }
func (p *logProbe) Log(ctx context.Context, s *phases.Summary) {
	p.verdict = aimoderation.VerdictFrom(s.Values)
	if info, ok := llm.InfoKey.Get(s.Values); ok && info != nil {
		p.moderation = p.verdict // what the access log prints (LogFields)
	}
	p.cause, p.exitPlugin, p.status = s.Cause, s.ExitPlugin, s.Status
}

func handler(t testing.TB, plugins ...phases.Plugin) http.Handler {
	t.Helper()
	return plugintest.Chain(t, phases.Options{Route: "test"}, plugins...)
}

type msg = plugintest.Msg

var user = plugintest.User

// response is what a client got.
type response struct {
	code   int
	header http.Header
	body   string
}

func do(h http.Handler, body string) response {
	req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return response{rec.Code, rec.Header(), rec.Body.String()}
}

// refusal is a decoded refusal body (chat.completion or chunk).
type refusal struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Model   string `json:"model"`
	Choices []struct {
		Message      *struct{ Role, Content string } `json:"message"`
		Delta        *struct{ Role, Content string } `json:"delta"`
		FinishReason string                          `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		Prompt     int `json:"prompt_tokens"`
		Completion int `json:"completion_tokens"`
		Total      int `json:"total_tokens"`
	} `json:"usage"`
}

func (r refusal) content() string {
	if len(r.Choices) != 1 {
		return ""
	}
	if m := r.Choices[0].Message; m != nil {
		return m.Content
	}
	if d := r.Choices[0].Delta; d != nil {
		return d.Content
	}
	return ""
}

// checkCompletionRefusal checks that body is a chat.completion refusal with
// message, model and usage (nil: none).
func checkCompletionRefusal(t *testing.T, body, message, model string, u *usage) {
	t.Helper()
	var r refusal
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("refusal %q is not JSON: %v", body, err)
	}
	checkRefusal(t, r, "chat.completion", message, model, u)
	if r.Choices[0].Message.Role != "assistant" {
		t.Fatalf("refusal role %q", r.Choices[0].Message.Role)
	}
}

func checkRefusal(t *testing.T, r refusal, object, message, model string, u *usage) {
	t.Helper()
	if r.Object != object || r.Model != model || r.content() != message || r.Choices[0].FinishReason != "stop" || !strings.HasPrefix(r.ID, "chatcmpl-") {
		t.Fatalf("refusal %+v: want a %s from %s saying %q", r, object, model, message)
	}
	switch {
	case u == nil && r.Usage != nil:
		t.Fatalf("refusal has usage %+v, want none", *r.Usage)
	case u != nil && (r.Usage == nil || r.Usage.Prompt != u.prompt || r.Usage.Completion != u.completion || r.Usage.Total != u.prompt+u.completion):
		t.Fatalf("refusal usage %+v, want %+v", r.Usage, *u)
	}
}

// splitEvents splits an SSE body into its data fields.
func splitEvents(t *testing.T, body string) []string {
	t.Helper()
	if !strings.HasSuffix(body, "\n\n") {
		t.Fatalf("SSE body %q does not end with a blank line", body)
	}
	var out []string
	for _, ev := range strings.Split(strings.TrimSuffix(body, "\n\n"), "\n\n") {
		data, ok := strings.CutPrefix(ev, "data: ")
		if !ok || strings.Contains(data, "\n") {
			t.Fatalf("event %q is not one data line", ev)
		}
		out = append(out, data)
	}
	return out
}

// checkStreamRefusal checks that body is a refusal stream: one chunk and
// [DONE].
func checkStreamRefusal(t *testing.T, body, message, model string, u *usage) {
	t.Helper()
	evs := splitEvents(t, body)
	if len(evs) != 2 || evs[1] != "[DONE]" {
		t.Fatalf("refusal stream %q: want one chunk and [DONE]", body)
	}
	checkChunkRefusal(t, evs[0], message, model, u)
}

func checkChunkRefusal(t *testing.T, ev, message, model string, u *usage) {
	t.Helper()
	var r refusal
	if err := json.Unmarshal([]byte(ev), &r); err != nil {
		t.Fatalf("refusal chunk %q is not JSON: %v", ev, err)
	}
	checkRefusal(t, r, "chat.completion.chunk", message, model, u)
}

// logBuffer is a concurrency-safe log destination.
type logBuffer = plugintest.LogBuffer
