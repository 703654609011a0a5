package aiproxy_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phasegate/phasegate/llm/provider/providertest"
	"github.com/phasegate/phasegate/metrics"
	"github.com/phasegate/phasegate/mockllm"
	"github.com/phasegate/phasegate/phases"
)

// direct sends body straight to the mock.
func direct(t *testing.T, m *mockllm.Server, body string, headers map[string]string) []byte {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, mockURL(m), strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// chunkLog is a body filter that records the chunks it sees.
type chunkLog struct {
	mu     sync.Mutex
	data   []string
	events []string
}

func (*chunkLog) Name() string { return "chunk-log" }

func (c *chunkLog) BodyFilter(ctx context.Context, b *phases.BodyChunk) phases.BodyResult {
	if !b.EOS {
		c.mu.Lock()
		c.data = append(c.data, string(b.Data))
		c.events = append(c.events, string(b.Event))
		c.mu.Unlock()
	}
	return phases.BodyResult{}
}

// A stream reaches the client byte for byte as the mock sends it (ids and
// times aside), one chunk per event, with its usage in LLMInfo and the
// stream's metrics.
func TestStreamByteForByte(t *testing.T) {
	m := providertest.StartMock(t)
	log := &chunkLog{}
	f := serve(t, config(mockURL(m)), log)
	body := `{"model":"gpt-s","messages":[{"role":"user","content":"say hello to the gateway"}],"stream":true,"stream_options":{"include_usage":true}}`
	hdr := map[string]string{mockllm.HeaderChunks: "5"}
	want := direct(t, m, body, hdr)

	resp := f.Post(t, body, hdr)
	o := f.Wait(t)
	if resp.Status != 200 || o.Cause != phases.CauseCompleted {
		t.Fatalf("%d %s (%v)", resp.Status, o.Cause, o.Err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Errorf("Content-Type %q", ct)
	}
	if providertest.Normalize(resp.Body) != providertest.Normalize(want) {
		t.Errorf("the client got\n%s\nthe mock sends\n%s", resp.Body, want)
	}
	events := providertest.Events(resp.Body)
	if len(events) != 9 || strings.Join(log.data, "") != string(resp.Body) {
		t.Errorf("%d events; chunks %q", len(events), log.data)
	}
	for i, d := range log.data {
		if want := strings.TrimSuffix(strings.TrimPrefix(d, "data: "), "\n\n"); log.events[i] != want {
			t.Errorf("chunk %d: event %q, data %q", i, log.events[i], d)
		}
	}
	if !o.LLM.UsageKnown || o.LLM.PromptTokens != 5 || o.LLM.CompletionTokens != 6 || !o.LLM.Stream || o.LLM.TTFT <= 0 {
		t.Errorf("LLMInfo %+v", o.LLM)
	}
	k := key("gpt-s", metrics.RequestTypeStream)
	if v := f.counts(t, nameDuration)[k]; v != 1 {
		t.Errorf("duration observations %v", v)
	}
	if v := f.counts(t, nameTTFT)[providertest.Labels("ai-proxy", "gpt-s", providertest.Route)]; v != 1 {
		t.Errorf("TTFT observations %v (%v)", v, f.counts(t, nameTTFT))
	}
	if p, c := f.counts(t, namePrompt)[k], f.counts(t, nameCompletion)[k]; p != 5 || c != 6 {
		t.Errorf("tokens %v %v", p, c)
	}
	providertest.AssertNoneActive(t, f.reg)
}

// Whatever the framing (comments, CRLF, several data lines, an event
// field, a last event without its blank line), the client gets the exact
// bytes, one chunk per event.
func TestStreamExactBytes(t *testing.T) {
	events := []string{
		": keep-alive\n\n",
		"event: message\r\ndata: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\r\n\r\n",
		"data: line1\ndata: line2\n\n",
		"id: 7\ndata: [DONE]\n",
	}
	up := providertest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
		for _, e := range events {
			io.WriteString(w, e)
			w.(http.Flusher).Flush()
		}
	})
	log := &chunkLog{}
	f := serve(t, config(up.URL), log)
	resp := f.Post(t, providertest.Chat("m", true), nil)
	o := f.Wait(t)
	if want := strings.Join(events, ""); string(resp.Body) != want {
		t.Errorf("got %q, want %q", resp.Body, want)
	}
	if fmt.Sprint(log.data) != fmt.Sprint(events) {
		t.Errorf("chunks %q", log.data)
	}
	if want := []string{"", `{"choices":[{"delta":{"content":"a"}}]}`, "line1\nline2", "[DONE]"}; fmt.Sprint(log.events) != fmt.Sprint(want) {
		t.Errorf("events %q", log.events)
	}
	if o.LLM.TTFT <= 0 || o.LLM.UsageKnown {
		t.Errorf("LLMInfo %+v", o.LLM)
	}
}

// The client gets the first event before the upstream sends the second.
func TestStreamIsNotBuffered(t *testing.T) {
	release := make(chan struct{})
	up := providertest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: {\"choices\":[{\"delta\":{\"content\":\"first\"}}]}\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "data: {\"choices\":[{\"delta\":{\"content\":\"second\"}}]}\n\ndata: [DONE]\n\n")
	})
	f := serve(t, config(up.URL))
	resp, err := f.Client.Do(f.Request(t, providertest.Chat("m", true), nil))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make(chan string, 1)
	rd := bufio.NewReader(resp.Body)
	go func() {
		var b strings.Builder
		for !strings.HasSuffix(b.String(), "\n\n") {
			line, err := rd.ReadString('\n')
			b.WriteString(line)
			if err != nil {
				break
			}
		}
		first <- b.String()
	}()
	select {
	case got := <-first:
		if !strings.Contains(got, "first") {
			t.Errorf("first event %q", got)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the first event did not arrive before the upstream sent the second")
	}
	close(release)
	rest, _ := io.ReadAll(rd)
	if !strings.Contains(string(rest), "second") || !strings.HasSuffix(string(rest), "data: [DONE]\n\n") {
		t.Errorf("rest %q", rest)
	}
	f.Wait(t)
}

// Events the mock writes in two halves reach the client whole, one chunk
// each, and the same as unsplit.
func TestStreamSplitEventsReassembled(t *testing.T) {
	m := providertest.StartMock(t)
	log := &chunkLog{}
	f := serve(t, config(mockURL(m)), log)
	body := `{"model":"m","messages":[{"role":"user","content":"a b c"}],"stream":true,"stream_options":{"include_usage":true}}`
	want := direct(t, m, body, nil)
	resp := f.Post(t, body, map[string]string{mockllm.HeaderSplit: "true"})
	f.Wait(t)
	if providertest.Normalize(resp.Body) != providertest.Normalize(want) {
		t.Errorf("got\n%s\nwant\n%s", resp.Body, want)
	}
	for i, d := range log.data {
		if !strings.HasSuffix(d, "\n\n") || strings.Count(d, "data: ") != 1 {
			t.Errorf("chunk %d is not one whole event: %q", i, d)
		}
		if ev := log.events[i]; ev != "[DONE]" && !json.Valid([]byte(ev)) {
			t.Errorf("chunk %d's event is not whole JSON: %q", i, ev)
		}
	}
	if len(log.data) != len(providertest.Events(want)) {
		t.Errorf("%d chunks, want %d", len(log.data), len(providertest.Events(want)))
	}
}

// A stream request without stream_options gets include_usage: the usage
// chunk the mock then sends reaches LLMInfo and the metrics.
func TestStreamIncludeUsageAdded(t *testing.T) {
	m := providertest.StartMock(t)
	f := serve(t, config(mockURL(m)))
	body := providertest.Chat("m", true)
	if plain := direct(t, m, body, nil); strings.Contains(string(plain), `"usage"`) {
		t.Fatalf("the mock sends usage unasked: %s", plain)
	}
	resp := f.Post(t, body, nil)
	o := f.Wait(t)
	if !strings.Contains(string(resp.Body), `"usage":{"prompt_tokens":5,"completion_tokens":6`) {
		t.Errorf("no usage chunk: %s", resp.Body)
	}
	if !o.LLM.UsageKnown || o.LLM.PromptTokens != 5 || o.LLM.CompletionTokens != 6 {
		t.Errorf("LLMInfo %+v", o.LLM)
	}
	if v := f.counts(t, namePrompt)[key("m", metrics.RequestTypeStream)]; v != 5 {
		t.Errorf("prompt tokens %v", v)
	}
}
