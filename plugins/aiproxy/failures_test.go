package aiproxy_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/phasegate/phasegate/llm/llmtest"
	"github.com/phasegate/phasegate/llm/provider/providertest"
	"github.com/phasegate/phasegate/metrics"
	"github.com/phasegate/phasegate/mockllm"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/plugins/aiproxy"
)

// errorOf decodes a gateway error body.
func errorOf(t *testing.T, b []byte) (msg string, code int) {
	t.Helper()
	var e struct {
		Error struct {
			Message string `json:"message"`
			Code    int    `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("not an error body: %v: %q", err, b)
	}
	return e.Error.Message, e.Error.Code
}

// finalFrame returns the error message of a stream's final frame, and
// whether the stream ends with "data: [DONE]".
func finalFrame(t *testing.T, body []byte) (msg string, code int, done bool) {
	t.Helper()
	events := providertest.Events(body)
	if len(events) < 2 {
		t.Fatalf("no final frame in %q", body)
	}
	last, frame := events[len(events)-1], events[len(events)-2]
	msg, code = errorOf(t, []byte(strings.TrimSuffix(strings.TrimPrefix(frame, "data: "), "\n\n")))
	return msg, code, last == "data: [DONE]\n\n"
}

// An unreachable upstream is answered 502.
func TestUnreachable(t *testing.T) {
	f := serve(t, config("http://"+providertest.DeadAddr(t)+"/v1/chat/completions"))
	resp := f.Post(t, providertest.Chat("m", false), nil)
	o := f.Wait(t)
	if msg, code := errorOf(t, resp.Body); resp.Status != 502 || code != 502 || msg == "" {
		t.Errorf("%d %s", resp.Status, resp.Body)
	}
	if o.Cause != phases.CauseUpstreamError || o.LLM.Attempts != 1 || o.LLM.Instance != aiproxy.Name {
		t.Errorf("cause %s, LLMInfo %+v", o.Cause, o.LLM)
	}
	if v, ok := f.counts(t, nameActive)[key("m", metrics.RequestTypeChat)]; !ok || v != 0 {
		t.Errorf("the attempt's series: %v %v", v, ok)
	}
	if n := len(f.counts(t, nameDuration)); n != 0 {
		t.Errorf("%d duration series for a failed attempt", n)
	}
}

// An upstream slower than the timeout to answer is answered 504, at the
// timeout, and its request is cancelled.
func TestSlowHeaders(t *testing.T) {
	m := providertest.StartMock(t)
	cfg := config(mockURL(m))
	cfg.Timeout = 100 * time.Millisecond
	f := serve(t, cfg)
	start := time.Now()
	resp := f.Post(t, providertest.Chat("m", false), map[string]string{mockllm.HeaderHeaderDelay: "5s"})
	o := f.Wait(t)
	if _, code := errorOf(t, resp.Body); resp.Status != 504 || code != 504 || o.Cause != phases.CauseTimeout {
		t.Errorf("%d %s, cause %s", resp.Status, resp.Body, o.Cause)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("answered after %s", d)
	}
	if !providertest.Eventually(2*time.Second, func() bool { return m.Mock().Stats().Canceled == 1 }) {
		t.Errorf("the upstream request was not cancelled: %+v", m.Mock().Stats())
	}
	providertest.AssertNoneActive(t, f.reg)
}

// An upstream that stalls mid-stream for the timeout ends the stream with
// a final frame; one that stalls after its header, before any event, is
// answered 504 as a whole.
func TestStreamStall(t *testing.T) {
	up := providertest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, `data: {"choices":[{"delta":{"content":"a"}}]}`+"\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	cfg := config(up.URL)
	cfg.Timeout = 100 * time.Millisecond
	f := serve(t, cfg)
	resp := f.Post(t, providertest.Chat("m", true), nil)
	o := f.Wait(t)
	if _, code, done := finalFrame(t, resp.Body); resp.Status != 200 || code != 504 || !done {
		t.Errorf("%d %q", resp.Status, resp.Body)
	}
	if o.Cause != phases.CauseTimeout {
		t.Errorf("cause %s (%v)", o.Cause, o.Err)
	}
	providertest.AssertNoneActive(t, f.reg)

	m := providertest.StartMock(t)
	cfg = config(mockURL(m))
	cfg.Timeout = 100 * time.Millisecond
	f = serve(t, cfg)
	resp = f.Post(t, providertest.Chat("m", true), map[string]string{mockllm.HeaderHang: "true"})
	o = f.Wait(t)
	if _, code := errorOf(t, resp.Body); resp.Status != 504 || code != 504 || o.Cause != phases.CauseTimeout {
		t.Errorf("%d %q, cause %s", resp.Status, resp.Body, o.Cause)
	}
	if !providertest.Eventually(2*time.Second, func() bool { return m.Mock().Stats().Canceled == 1 }) {
		t.Errorf("the upstream request was not cancelled: %+v", m.Mock().Stats())
	}
	providertest.AssertNoneActive(t, f.reg)
}

// An upstream that resets mid-stream: the stream ends with a final frame,
// the gauge falls. Before the body, the reset is a 502.
func TestResetMidStream(t *testing.T) {
	m := providertest.StartMock(t)
	f := serve(t, config(mockURL(m)))
	resp := f.Post(t, providertest.Chat("m", true), map[string]string{mockllm.HeaderResetAfter: "2"})
	o := f.Wait(t)
	events := providertest.Events(resp.Body)
	if len(events) != 5 || !strings.Contains(events[2], `"content"`) {
		t.Errorf("events %q", events)
	}
	if _, code, done := finalFrame(t, resp.Body); resp.Status != 200 || code != 502 || !done {
		t.Errorf("%d %q", resp.Status, resp.Body)
	}
	if o.Cause != phases.CauseUpstreamError {
		t.Errorf("cause %s", o.Cause)
	}
	providertest.AssertNoneActive(t, f.reg)

	resp = f.Post(t, providertest.Chat("m", false), map[string]string{mockllm.HeaderResetAfter: "0"})
	f.Wait(t)
	if resp.Status != 502 {
		t.Errorf("non-stream reset: %d %s", resp.Status, resp.Body)
	}
	providertest.AssertNoneActive(t, f.reg)
}

// max_stream_duration ends a started stream cleanly: a final frame and
// [DONE]; the upstream request is cancelled.
func TestStreamDurationCap(t *testing.T) {
	m := providertest.StartMock(t)
	cfg := config(mockURL(m))
	cfg.MaxStreamDuration = 150 * time.Millisecond
	f := serve(t, cfg)
	start := time.Now()
	resp := f.Post(t, providertest.Chat("m", true), map[string]string{mockllm.HeaderChunks: "20", mockllm.HeaderChunkDelay: "40ms"})
	o := f.Wait(t)
	msg, code, done := finalFrame(t, resp.Body)
	if resp.Status != 200 || code != 504 || !done || !strings.Contains(msg, "max_stream_duration") {
		t.Errorf("%d %q", resp.Status, resp.Body)
	}
	if d := time.Since(start); d > 700*time.Millisecond {
		t.Errorf("the stream lasted %s", d)
	}
	if o.Cause != phases.CauseExit || o.ExitPlugin != aiproxy.Name || o.ExitPhase != "body_filter" {
		t.Errorf("cause %s exit %s/%s", o.Cause, o.ExitPhase, o.ExitPlugin)
	}
	if !providertest.Eventually(2*time.Second, func() bool { return m.Mock().Stats().Canceled == 1 }) {
		t.Errorf("the upstream request was not cancelled: %+v", m.Mock().Stats())
	}
	providertest.AssertNoneActive(t, f.reg)
}

// max_response_bytes: a whole body over it is a 502 before anything is
// sent; a stream over it ends with a final frame.
func TestMaxResponseBytes(t *testing.T) {
	m := providertest.StartMock(t)
	cfg := config(mockURL(m))
	cfg.MaxResponseBytes = 100
	f := serve(t, cfg)
	resp := f.Post(t, providertest.Chat("m", false), nil)
	f.Wait(t)
	if msg, code := errorOf(t, resp.Body); resp.Status != 502 || code != 502 || !strings.Contains(msg, "max_response_bytes") {
		t.Errorf("%d %s", resp.Status, resp.Body)
	}

	cfg.MaxResponseBytes = 700
	f = serve(t, cfg)
	resp = f.Post(t, providertest.Chat("m", true), map[string]string{mockllm.HeaderChunks: "10"})
	o := f.Wait(t)
	msg, code, done := finalFrame(t, resp.Body)
	if resp.Status != 200 || code != 502 || !done || !strings.Contains(msg, "max_response_bytes") {
		t.Errorf("%d %q", resp.Status, resp.Body)
	}
	if n := len(providertest.Events(resp.Body)); n < 3 {
		t.Errorf("only %d events before the cap", n)
	}
	if o.Cause != phases.CauseExit {
		t.Errorf("cause %s", o.Cause)
	}
	providertest.AssertNoneActive(t, f.reg)
}

// A client that goes away mid-stream: the upstream request is cancelled at
// once, the gauge falls, the metrics of what was seen are recorded.
func TestClientDisconnectMidStream(t *testing.T) {
	m := providertest.StartMock(t)
	f := serve(t, config(mockURL(m)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req := f.Request(t, providertest.Chat("m", true), map[string]string{mockllm.HeaderChunks: "50", mockllm.HeaderChunkDelay: "100ms"})
	resp, err := f.Client.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	rd := bufio.NewReader(resp.Body)
	if _, err := rd.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	if v := f.counts(t, nameActive)[key("m", metrics.RequestTypeStream)]; v != 1 {
		t.Errorf("in flight: active %v, want 1", v)
	}
	left := time.Now()
	cancel()
	resp.Body.Close()
	o := f.Wait(t)
	if !providertest.Eventually(2*time.Second, func() bool { return m.Mock().Stats().Canceled == 1 }) {
		t.Fatalf("the upstream request was not cancelled: %+v", m.Mock().Stats())
	}
	if d := time.Since(left); d > time.Second {
		t.Errorf("the upstream request was cancelled %s after the client left", d)
	}
	if o.Cause != phases.CauseClientClosed {
		t.Errorf("cause %s", o.Cause)
	}
	providertest.AssertNoneActive(t, f.reg)
	if v := f.counts(t, nameDuration)[key("m", metrics.RequestTypeStream)]; v != 1 {
		t.Errorf("duration observations %v", v)
	}
}

// Usage seen before the client left is kept in LLMInfo and counted.
func TestClientDisconnectKeepsUsage(t *testing.T) {
	upstreamDone := make(chan struct{})
	up := providertest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		defer close(upstreamDone)
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, `data: {"choices":[{"delta":{"content":"partial"}}],"usage":{"prompt_tokens":7,"completion_tokens":2,"total_tokens":9}}`+"\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	f := serve(t, config(up.URL))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, err := f.Client.Do(f.Request(t, providertest.Chat("m", true), nil).WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	cancel()
	resp.Body.Close()
	o := f.Wait(t)
	select {
	case <-upstreamDone:
	case <-time.After(2 * time.Second):
		t.Fatal("the upstream request was not cancelled")
	}
	if !o.LLM.UsageKnown || o.LLM.PromptTokens != 7 || o.LLM.CompletionTokens != 2 || o.Cause != phases.CauseClientClosed {
		t.Errorf("cause %s, LLMInfo %+v", o.Cause, o.LLM)
	}
	k := key("m", metrics.RequestTypeStream)
	if p, c := f.counts(t, namePrompt)[k], f.counts(t, nameCompletion)[k]; p != 7 || c != 2 {
		t.Errorf("tokens %v %v", p, c)
	}
	if v := f.counts(t, nameTTFT)[providertest.Labels(aiproxy.Name, "m", providertest.Route)]; v != 1 {
		t.Errorf("TTFT observations %v", v)
	}
	providertest.AssertNoneActive(t, f.reg)
}

// A Chat upstream that stalls after its first chunk, on the Messages and
// Responses doors: the client's stream ends well formed in its protocol,
// with nothing it was sent repeated, whether the chunk carried text or
// only the role (whose translation ends with a group of two events).
func TestStreamStallOnTheDoors(t *testing.T) {
	for _, first := range []string{`{"choices":[{"delta":{"role":"assistant"}}]}`, `{"choices":[{"delta":{"content":"a"}}]}`} {
		up := providertest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: "+first+"\n\n")
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		})
		cfg := config(up.URL)
		cfg.Timeout = 100 * time.Millisecond
		f := serve(t, cfg)
		for _, d := range providertest.Doors[1:] {
			req := f.Request(t, d.Body("m", true), nil)
			req.URL.Path = d.Path
			resp := f.Do(t, req)
			o := f.Wait(t)
			if err := llmtest.WellFormed(d.Protocol, resp.Body); err != nil || resp.Status != 200 || o.Cause != phases.CauseTimeout {
				t.Errorf("%s after %s: %d, cause %s: %v\n%s", d.Protocol, first, resp.Status, o.Cause, err, resp.Body)
			}
			providertest.AssertNoneActive(t, f.reg)
		}
	}
}
