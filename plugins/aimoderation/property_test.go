package aimoderation_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/phasegate/phasegate/fsm"
	"github.com/phasegate/phasegate/internal/plugintest"
	"github.com/phasegate/phasegate/llm"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/phases/phasetest"
	"github.com/phasegate/phasegate/plugins/aimoderation"
	"github.com/phasegate/phasegate/pluginsdk"
)

var flaggedWord = regexp.MustCompile(`(?i)\bkill\b`)

// words are drawn for prompts and completions; "kill" and "KILL" are
// flagged, the others are not.
var words = []string{"hello", "world", "kill", "KILL", "skill", "killer", "ki", "ll"}

// recorder wraps the plugin to record what its access hook saw and did.
type recorder struct {
	*aimoderation.Plugin
	ran, exited, expect bool
	status              int
}

func (r *recorder) Access(ctx context.Context, req *phases.Request) phases.Exit {
	body, _ := req.Body()
	var parsed struct {
		Messages []msg `json:"messages"`
	}
	// The oracle: a malformed body (a scripted plugin may have mutated it)
	// or a last user message with a flagged word.
	r.expect = json.Unmarshal(body, &parsed) != nil
	for i := len(parsed.Messages) - 1; i >= 0; i-- {
		if m := parsed.Messages[i]; m.Role == "user" {
			r.expect = r.expect || flaggedWord.MatchString(m.Content.(string))
			break
		}
	}
	ex := r.Plugin.Access(ctx, req)
	r.ran, r.exited, r.status = true, ex.Exited(), ex.Status()
	return ex
}

func drawPrompt(rt *rapid.T, label string) string {
	return strings.Join(rapid.SliceOfN(rapid.SampledFrom(words), 0, 4).Draw(rt, label), " ")
}

func drawRequest(rt *rapid.T) *http.Request {
	body := plugintest.ChatBody(clientModel, rapid.Bool().Draw(rt, "stream"), msg{Role: "system", Content: "kill"}, user(drawPrompt(rt, "prompt")))
	req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return req
}

// TestPropertyScriptedUpstream runs the plugin on random lifecycle paths
// with the harness's upstream, whose bodies are not OpenAI's: the plugin
// refuses exactly the flagged prompts, and passes every response on
// unchanged.
func TestPropertyScriptedUpstream(t *testing.T) {
	for _, mode := range []string{aimoderation.ModeRealtime, aimoderation.ModeFinalPacket} {
		t.Run(mode, func(t *testing.T) {
			cfg := responseConfig(mode)
			cfg.StreamCheckCacheSize = 2
			var rec *recorder
			phasetest.Check(t, phasetest.Config{
				Plugins: func(*phasetest.Env) []phases.Plugin {
					rec = &recorder{Plugin: plugintest.Must(aimoderation.New(cfg, pluginsdk.Env{}))(t)}
					return []phases.Plugin{fakeProxy{}, rec}
				},
				Request: drawRequest,
				Check: func(t phasetest.TB, r *phasetest.Result) {
					journal := strings.Join(r.Journal, "\n")
					if rec.ran && rec.exited != rec.expect {
						t.Fatalf("the access hook exited: %v, want %v\n%s", rec.exited, rec.expect, journal)
					}
					if rec.exited && rec.status != 400 {
						t.Fatalf("the access hook exited with %d", rec.status)
					}
					if r.Summary.ExitPlugin == aimoderation.Name && r.Summary.ExitPhase == fsm.StateBodyFilter {
						t.Fatalf("the plugin refused a response without text\n%s", journal)
					}
					if r.Summary.Cause != phases.CauseCompleted || r.Aborted || r.BodyAltered {
						return
					}
					var want strings.Builder
					for i := range r.Scenario.Upstream.Chunks {
						if r.Scenario.Upstream.SSE {
							fmt.Fprintf(&want, "data: {\"chunk\":%d}\n\n", i)
						} else {
							fmt.Fprintf(&want, "chunk-%d;", i)
						}
					}
					if string(r.Body) != want.String() {
						t.Fatalf("the client got %q, want the upstream's %q\n%s", r.Body, want.String(), journal)
					}
				},
			})
		})
	}
}

// openaiUpstream answers an OpenAI completion or stream of the content
// drawn for the path.
type openaiUpstream struct {
	content *[]string
	sep     *string
}

func (u openaiUpstream) Name() string { return "openai-upstream" }
func (u openaiUpstream) Upstream(ctx context.Context, r *phases.Request) (*phases.Response, error) {
	info, _ := llm.InfoKey.Get(r.Values)
	if info.Stream {
		var pieces []string
		for _, w := range *u.content {
			pieces = append(pieces, w+*u.sep)
		}
		return (&streamUpstream{events: stream(&usage{1, len(pieces)}, pieces...)}).Upstream(ctx, r)
	}
	return (&completionUpstream{content: strings.Join(*u.content, *u.sep), usage: &usage{1, 2}}).Upstream(ctx, r)
}

// streamText is the content of the chunks of an SSE body, and whether the
// body ends with [DONE].
func streamText(body string) (string, bool) {
	var text strings.Builder
	done := false
	for _, ev := range strings.Split(body, "\n\n") {
		data, ok := strings.CutPrefix(ev, "data: ")
		if !ok {
			continue
		}
		done = data == "[DONE]"
		var c refusal
		if json.Unmarshal([]byte(data), &c) == nil {
			for _, ch := range c.Choices {
				if ch.Delta != nil {
					text.WriteString(ch.Delta.Content)
				}
			}
		}
	}
	return text.String(), done
}

// TestPropertyOpenAIUpstream runs realtime moderation of OpenAI responses
// on random lifecycle paths: a response the client gets in full never
// contains a flagged word, and a refused one ends as docs/configuration.md says.
func TestPropertyOpenAIUpstream(t *testing.T) {
	var content []string
	sep, cacheSize := " ", 1
	phasetest.Check(t, phasetest.Config{
		Plugins: func(*phasetest.Env) []phases.Plugin {
			cfg := responseConfig(aimoderation.ModeRealtime)
			cfg.CheckRequest = false
			cfg.StreamCheckCacheSize = cacheSize
			return []phases.Plugin{fakeProxy{}, plugintest.Must(aimoderation.New(cfg, pluginsdk.Env{}))(t), openaiUpstream{&content, &sep}}
		},
		Request: func(rt *rapid.T) *http.Request {
			content = rapid.SliceOfN(rapid.SampledFrom(words), 0, 6).Draw(rt, "content")
			sep = rapid.SampledFrom([]string{" ", ""}).Draw(rt, "separator")
			cacheSize = rapid.IntRange(1, 40).Draw(rt, "cache size")
			return drawRequest(rt)
		},
		Check: func(t phasetest.TB, r *phasetest.Result) {
			journal := strings.Join(r.Journal, "\n")
			sse := strings.HasPrefix(r.Header.Get("Content-Type"), "text/event-stream")
			body := string(r.Body)
			flagged := flaggedWord.MatchString(strings.Join(content, sep))
			// A scripted transform upper-cases a non-streamed body before
			// the plugin sees it: then it is no chat.completion.
			transformed := !sse && strings.Contains(journal, "transforms")
			// A filter after the plugin that holds a chunk back can join
			// words the plugin saw apart ("KILLer" without "er"): what the
			// client then reads is no longer what was moderated.
			if r.Summary.Cause == phases.CauseCompleted && !r.Aborted && r.Status == 200 && !transformed && !(r.BodyAltered && altersBody(r.Scenario, false)) {
				text := body
				if sse {
					text, _ = streamText(body)
				}
				if flaggedWord.MatchString(text) {
					t.Fatalf("the client got a flagged response in full: %q\n%s", body, journal)
				}
			}
			if r.Summary.ExitPlugin != aimoderation.Name || r.Aborted || r.Summary.Cause != phases.CauseExit {
				return
			}
			// One before it that holds a chunk back can make the text it
			// reads flagged ("killer" held, then "kill").
			if !flagged && !(r.BodyAltered && altersBody(r.Scenario, true)) {
				t.Fatalf("the plugin refused a clean response %q\n%s", content, journal)
			}
			if !strings.Contains(body, denyMsg) {
				t.Fatalf("the refusal %q lacks the deny message\n%s", body, journal)
			}
			if sse {
				if _, done := streamText(body); !done {
					t.Fatalf("the refused stream %q does not end with [DONE]\n%s", body, journal)
				}
			}
			if r.Status != 200 && r.Status != 400 {
				t.Fatalf("the refusal has status %d", r.Status)
			}
		},
	})
}

// altersBody reports whether a scripted plugin of sc that runs before
// (before true) or after ai-content-moderation in the body filters holds
// a chunk back or transforms one (the chain runs higher priorities first,
// ties by name).
func altersBody(sc phasetest.Scenario, before bool) bool {
	for _, p := range sc.Others {
		prio := (*aimoderation.Plugin)(nil).Priority()
		first := p.Priority > prio || (p.Priority == prio && p.Name < aimoderation.Name)
		if first != before {
			continue
		}
		for _, a := range p.Body {
			if a.Kind == phasetest.Hold || a.Kind == phasetest.Transform {
				return true
			}
		}
	}
	return false
}
