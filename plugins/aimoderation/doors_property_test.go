package aimoderation_test

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/phasegate/phasegate/llm"
	"github.com/phasegate/phasegate/llm/door"
	"github.com/phasegate/phasegate/llm/provider"
	"github.com/phasegate/phasegate/llm/provider/providertest"
	"github.com/phasegate/phasegate/metrics"
	"github.com/phasegate/phasegate/mockllm"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/phases/phasetest"
	"github.com/phasegate/phasegate/plugins/aimoderation"
	"github.com/phasegate/phasegate/plugins/aiproxy"
	"github.com/phasegate/phasegate/pluginsdk"
)

// replyText is the text a client shows of a body of door d: a whole reply,
// or the text deltas of a stream.
func replyText(d providertest.Door, body []byte, sse bool) string {
	c := door.Codec(d.Protocol)
	var text strings.Builder
	if !sse {
		if r, err := c.DecodeResponse(body); err == nil {
			for _, ch := range r.Choices {
				for _, s := range ch.Texts() {
					text.WriteString(s)
				}
			}
		}
		return text.String()
	}
	dec := c.NewStreamDecoder()
	var evs []llm.Event
	for _, ev := range bytes.Split(body, []byte("\n\n")) {
		var data []byte
		for _, line := range bytes.Split(ev, []byte("\n")) {
			if v, ok := bytes.CutPrefix(line, []byte("data: ")); ok {
				data = v
			}
		}
		if data == nil || string(data) == "[DONE]" {
			continue
		}
		evs, _ = dec.Decode(evs[:0], "", data)
		for _, e := range evs {
			if e.Kind == llm.EventBlockDelta {
				text.Write(e.Delta)
			}
		}
	}
	return text.String()
}

// TestPropertyDoors runs realtime moderation behind ai-proxy on every
// door, against the mock speaking Chat (translated) or Messages, on
// random lifecycle paths: a reply the client gets in full never holds a
// flagged word, a refusal carries the deny message, and a stream an exit
// ends is well formed in the door's protocol.
func TestPropertyDoors(t *testing.T) {
	m := providertest.StartMock(t)
	var content, prov string
	var d providertest.Door
	cacheSize := 1
	phasetest.Check(t, phasetest.Config{
		AttemptScope: provider.AttemptScope,
		StreamEnded:  func(body []byte) bool { return d.Ended(body, false) },
		Plugins: func(env *phasetest.Env) []phases.Plugin {
			if prov == "" {
				prov = provider.ProviderOpenAICompatible // the probe, before the first draw
			}
			set, err := metrics.New(env.Registry)
			if err != nil {
				panic(err)
			}
			pc := aiproxy.DefaultConfig()
			pc.Provider, pc.Endpoint, pc.Timeout = prov, providertest.Endpoint(m, prov), 2*time.Second
			p, err := aiproxy.New(pc, pluginsdk.Env{Route: "r", Metrics: set})
			if err != nil {
				panic(err)
			}
			cfg := responseConfig(aimoderation.ModeRealtime)
			cfg.CheckRequest = false
			cfg.StreamCheckCacheSize = cacheSize
			mod, err := aimoderation.New(cfg, pluginsdk.Env{})
			if err != nil {
				panic(err)
			}
			return []phases.Plugin{p, mod}
		},
		Request: func(rt *rapid.T) *http.Request {
			content = strings.Join(rapid.SliceOfN(rapid.SampledFrom(words), 1, 6).Draw(rt, "content"), " ")
			cacheSize = rapid.IntRange(1, 40).Draw(rt, "cache size")
			prov = rapid.SampledFrom(providertest.Providers).Draw(rt, "provider")
			d = rapid.SampledFrom(providertest.Doors).Draw(rt, "door")
			req, _ := http.NewRequest(http.MethodPost, d.Path, strings.NewReader(d.Body(clientModel, rapid.Bool().Draw(rt, "stream"))))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set(mockllm.HeaderContent, content)
			req.Header.Set(mockllm.HeaderChunks, strconv.Itoa(rapid.IntRange(1, 6).Draw(rt, "chunks")))
			return req
		},
		Check: func(t phasetest.TB, r *phasetest.Result) {
			journal := strings.Join(r.Journal, "\n")
			sse := strings.HasPrefix(r.Header.Get("Content-Type"), "text/event-stream")
			if r.Summary.Cause == phases.CauseCompleted && !r.Aborted && r.Status == 200 && !r.BodyAltered {
				if text := replyText(d, r.Body, sse); flaggedWord.MatchString(text) {
					t.Fatalf("the client got a flagged reply in full on %s: %q\n%s", d.Protocol, r.Body, journal)
				}
			}
			// A stream no scripted plugin cut into obeys its protocol's rules
			// throughout, however it ended (Chat's refusal chunk after the
			// finish chunk is its own convention, checked by the bytes below).
			if d.Protocol != llm.OpenAIChat {
				d.CheckStream(t, r, "moderated")
			}
			if r.Summary.ExitPlugin != aimoderation.Name || r.Aborted || r.Summary.Cause != phases.CauseExit {
				return
			}
			if !flaggedWord.MatchString(content) {
				t.Fatalf("the plugin refused a clean reply %q\n%s", content, journal)
			}
			// Chat's refusal chunk follows the finish chunk, which a decoder
			// takes for the end of the choice: there the bytes are read.
			shown := replyText(d, r.Body, sse)
			if d.Protocol == llm.OpenAIChat {
				shown = string(r.Body)
			}
			if !r.BodyAltered && !strings.Contains(shown, denyMsg) {
				t.Fatalf("the refusal on %s %q lacks the deny message\n%s", d.Protocol, r.Body, journal)
			}
		},
	})
}
