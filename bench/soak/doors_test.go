package soak

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/phasegate/phasegate/bench/harness"
)

// readStream reads a stream of testdata/doors (see its README).
func readStream(t *testing.T, name string) []harness.Event {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "doors", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	evs, err := harness.ReadNamedEvents(f)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func TestDoorStreams(t *testing.T) {
	ok := doorReply{texts: []string{"hi there friend"}}
	for _, c := range []struct {
		file string
		p    *protocol
		want doorReply
	}{
		{"messages-ok.sse", messagesProtocol, ok},
		{"messages-translated-ok.sse", messagesProtocol, ok},
		{"responses-ok.sse", responsesProtocol, ok},
		{"messages-cut.sse", messagesProtocol, doorReply{texts: []string{"alpha bravo charlie delta echo foxtrot golf hotel ", denyMessages[0]}}},
		{"responses-cut.sse", responsesProtocol, doorReply{texts: []string{"alpha bravo charlie delta echo foxtrot golf hotel ", denyMessages[0]}}},
		{"messages-timeout.sse", messagesProtocol, doorReply{err: &apiError{"timeout_error", "upstream timed out"}}},
		{"responses-timeout.sse", responsesProtocol, doorReply{stop: "failed", err: &apiError{"server_error", "upstream timed out"}}},
	} {
		r, err := c.p.stream(readStream(t, c.file))
		if err != nil {
			t.Errorf("%s: %v", c.file, err)
			continue
		}
		want := c.want
		if want.err == nil && want.stop == "" {
			want.stop = c.p.ended
			if strings.Contains(c.file, "cut") {
				want.stop = c.p.refused
			}
		}
		if !slices.Equal(r.texts, want.texts) || r.stop != want.stop || (r.err == nil) != (want.err == nil) || r.err != nil && *r.err != *want.err {
			t.Errorf("%s: %+v (error %v), want %+v (error %v)", c.file, r, r.err, want, want.err)
		}
		if strings.Contains(c.file, "cut") {
			if err := checkDoorRefusal(&door{wire: c.p}, r); err != nil {
				t.Errorf("%s: %v", c.file, err)
			}
		}
	}
}

// TestDoorStreamsRefused breaks well-formed streams one way each: every
// one must fail its protocol's check.
func TestDoorStreamsRefused(t *testing.T) {
	// edit applies f to the events of file.
	edit := func(file string, f func([]harness.Event) []harness.Event) func(*testing.T) []harness.Event {
		return func(t *testing.T) []harness.Event { return f(readStream(t, file)) }
	}
	drop := func(name string) func([]harness.Event) []harness.Event {
		return func(evs []harness.Event) []harness.Event {
			return slices.DeleteFunc(evs, func(e harness.Event) bool { return e.Name == name })
		}
	}
	// dropRenumbered drops the events named name from a Responses stream
	// and numbers the rest from 0 again.
	dropRenumbered := func(name string) func([]harness.Event) []harness.Event {
		seq := regexp.MustCompile(`"sequence_number":\d+`)
		return func(evs []harness.Event) []harness.Event {
			evs = drop(name)(evs)
			for i := range evs {
				evs[i].Data = seq.ReplaceAllString(evs[i].Data, fmt.Sprintf(`"sequence_number":%d`, i))
			}
			return evs
		}
	}
	appendEv := func(e harness.Event) func([]harness.Event) []harness.Event {
		return func(evs []harness.Event) []harness.Event { return append(evs, e) }
	}
	replace := func(old, new string) func([]harness.Event) []harness.Event {
		return func(evs []harness.Event) []harness.Event {
			for i := range evs {
				evs[i].Data = strings.ReplaceAll(evs[i].Data, old, new)
			}
			return evs
		}
	}
	done := harness.Event{Data: harness.Done}
	for _, c := range []struct {
		name string
		p    *protocol
		evs  func(*testing.T) []harness.Event
	}{
		{"messages: the gateway's block opened inside another", messagesProtocol, edit("messages-cut-interleaved.sse", slices.Clip)},
		{"responses: the final output out of the items' order", responsesProtocol, edit("responses-cut-out-of-order.sse", slices.Clip)},
		{"messages: a Chat stream", messagesProtocol, edit("chat-ok.sse", slices.Clip)},
		{"responses: a Chat stream", responsesProtocol, edit("chat-ok.sse", slices.Clip)},
		{"messages: [DONE] after message_stop", messagesProtocol, edit("messages-ok.sse", appendEv(done))},
		{"responses: [DONE] after response.completed", responsesProtocol, edit("responses-ok.sse", appendEv(done))},
		{"messages: no message_stop", messagesProtocol, edit("messages-ok.sse", drop("message_stop"))},
		{"messages: no message_delta", messagesProtocol, edit("messages-ok.sse", drop("message_delta"))},
		{"messages: a block never closed", messagesProtocol, edit("messages-ok.sse", drop("content_block_stop"))},
		{"messages: no message_start", messagesProtocol, edit("messages-ok.sse", drop("message_start"))},
		{"messages: a block numbered 1 first", messagesProtocol, edit("messages-ok.sse", replace(`"index":0`, `"index":1`))},
		{"messages: an event named unlike its type", messagesProtocol, edit("messages-ok.sse", func(evs []harness.Event) []harness.Event {
			evs[0].Name = "message"
			return evs
		})},
		{"messages: an unknown event", messagesProtocol, edit("messages-ok.sse", appendEv(harness.Event{Name: "surprise", Data: `{"type":"surprise"}`}))},
		{"messages: a Chat chunk inside", messagesProtocol, edit("messages-ok.sse", func(evs []harness.Event) []harness.Event {
			return slices.Insert(evs, 2, harness.Event{Name: "ping", Data: `{"type":"ping","object":"chat.completion.chunk","choices":[]}`})
		})},
		{"messages: error with a block open", messagesProtocol, edit("messages-ok.sse", func(evs []harness.Event) []harness.Event {
			return append(evs[:4], harness.Event{Name: "error", Data: `{"type":"error","error":{"type":"api_error","message":"m"}}`})
		})},
		{"responses: the final output reordered", responsesProtocol, edit("responses-cut.sse", func(evs []harness.Event) []harness.Event {
			last := &evs[len(evs)-1]
			var e map[string]any
			if err := json.Unmarshal([]byte(last.Data), &e); err != nil {
				t.Fatal(err)
			}
			out := e["response"].(map[string]any)["output"].([]any)
			slices.Reverse(out)
			last.Data = string(marshal(e))
			return evs
		})},
		{"responses: no terminal event", responsesProtocol, edit("responses-ok.sse", drop("response.completed"))},
		{"responses: an item never done", responsesProtocol, edit("responses-ok.sse", dropRenumbered("response.output_item.done"))},
		{"responses: no response.created", responsesProtocol, edit("responses-ok.sse", dropRenumbered("response.created"))},
		{"responses: a sequence number skipped", responsesProtocol, edit("responses-ok.sse", drop("response.in_progress"))},
		{"responses: done text unlike the deltas", responsesProtocol, edit("responses-ok.sse", replace(`"text":"hi there friend"}`, `"text":"hi there"}`))},
		{"responses: completed with a failed status", responsesProtocol, edit("responses-ok.sse", replace(`"status":"completed","background"`, `"status":"failed","background"`))},
		{"empty", messagesProtocol, func(*testing.T) []harness.Event { return nil }},
		{"empty", responsesProtocol, func(*testing.T) []harness.Event { return nil }},
	} {
		r, err := c.p.stream(c.evs(t))
		if err == nil {
			t.Errorf("%s: accepted, read as %+v", c.name, r)
			continue
		}
		t.Logf("%s: %v", c.name, err)
	}
}

func TestDoorReplies(t *testing.T) {
	for _, c := range []struct {
		p          *protocol
		body, want string // want: texts joined by |, then the stop after a space
	}{
		{messagesProtocol, `{"type":"message","content":[{"type":"text","text":"a"},{"type":"tool_use","id":"t"},{"type":"text","text":"b"}],"stop_reason":"end_turn"}`, "a|b end_turn"},
		{messagesProtocol, `{"type":"message","content":[{"type":"text","text":"no"}],"stop_reason":"refusal"}`, "no refusal"},
		{responsesProtocol, `{"object":"response","status":"completed","output":[{"type":"message","content":[{"type":"output_text","text":"a"},{"type":"output_text","text":"b"}]},{"type":"function_call"}]}`, "ab completed"},
		{responsesProtocol, `{"object":"response","status":"incomplete","incomplete_details":{"reason":"content_filter"},"output":[{"type":"message","content":[{"type":"output_text","text":"no"}]}]}`, "no incomplete/content_filter"},
	} {
		r, err := c.p.reply([]byte(c.body))
		if got := strings.Join(r.texts, "|") + " " + r.stop; err != nil || got != c.want {
			t.Errorf("%s reply %s = %q, %v; want %q", c.p.name, c.body, got, err, c.want)
		}
	}
	chat := `{"object":"chat.completion","choices":[{"message":{"content":"hi"}}]}`
	for _, p := range []*protocol{messagesProtocol, responsesProtocol} {
		for _, body := range []string{chat, `{"type":"message","object":"response","choices":[],"status":"completed","stop_reason":"end_turn"}`, "nope", `{}`} {
			if r, err := p.reply([]byte(body)); err == nil {
				t.Errorf("%s accepted %s as a reply: %+v", p.name, body, r)
			}
		}
	}
}

func TestDoorErrors(t *testing.T) {
	want := apiError{"rate_limit_error", "soak 429 for soak-1"}
	for _, p := range []*protocol{messagesProtocol, responsesProtocol} {
		got, err := p.apiError([]byte(p.errorBody(want.Type, want.Message)))
		if err != nil || got != want {
			t.Errorf("%s: the error body it writes reads as %+v, %v", p.name, got, err)
		}
	}
	if _, err := messagesProtocol.apiError([]byte(chatErrorBody("x", "y"))); err == nil {
		t.Error("Messages read an OpenAI error")
	}
	if _, err := responsesProtocol.apiError([]byte(messagesProtocol.errorBody("x", "y"))); err == nil {
		t.Error("Responses read a Messages error")
	}
}

func TestDoorScenarios(t *testing.T) {
	names := map[string]bool{}
	for _, d := range doors {
		n := 0
		for _, sc := range doorScenarios {
			if sc.route != d.route {
				continue
			}
			n++
			names[sc.name] = true
			if sc.want.client != d.wire.name || (sc.want.provider != d.provider) == !sc.want.noUpstream {
				t.Errorf("%s expects client_protocol %q, provider_protocol %q (no upstream %t)", sc.name, sc.want.client, sc.want.provider, sc.want.noUpstream)
			}
		}
		if n == 0 {
			t.Errorf("no scenario on %s", d.route)
		}
	}
	if len(names) != len(doorScenarios) {
		t.Errorf("%d door scenarios, %d names", len(doorScenarios), len(names))
	}
	if doors[0].translated() || !doors[1].translated() || !doors[2].translated() {
		t.Error("translated() is wrong")
	}
}

func TestCheckProtocols(t *testing.T) {
	line := func(id, route, client, provider string) string {
		return fmt.Sprintf(`{"level":"info","request_id":%q,"route":%q,"status":200,"cause":"completed","client_protocol":%q,"provider_protocol":%q,"message":"access"}`,
			id, route, client, provider)
	}
	log := strings.Join([]string{
		line("a", routeChat, protoChat, protoChat),
		line("b", routeMessages, protoMessages, protoMessages),
		line("c", routeMessages, protoMessages, ""), // refused before any upstream call: not served
		line("d", routeMessagesChat, protoMessages, protoChat),
		line("e", routeResponses, protoResponses, protoChat),
		line("f", routeResponses, protoResponses, protoChat),
	}, "\n")
	al, err := parseLog(strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	series := func(route, client, provider string, n int) string {
		return fmt.Sprintf("%s{client_protocol=%q,instance=\"ai-proxy\",provider_protocol=%q,route=%q} %d\n", metricLLMRequests, client, provider, route, n)
	}
	check := func(text string) Check {
		m, err := harness.ParseMetrics(strings.NewReader(text))
		if err != nil {
			t.Fatal(err)
		}
		return checkProtocols(endState{final: m, log: al})
	}
	equal := series(routeChat, protoChat, protoChat, 1) + series(routeMessages, protoMessages, protoMessages, 1) +
		series(routeMessagesChat, protoMessages, protoChat, 1) + series(routeResponses, protoResponses, protoChat, 2)
	if c := check(equal); !c.OK || !strings.Contains(c.Detail, "messages 1, messages_chat 1, responses 2") {
		t.Errorf("equal counts: %+v", c)
	}
	for name, c := range map[string]struct{ metrics, want string }{
		"a count differs":               {strings.Replace(equal, "} 2", "} 3", 1), `{Route:responses Client:openai-responses Provider:openai-chat}: metric 3, access log 2`},
		"a door in the wrong protocols": {equal + series(routeResponses, protoResponses, protoMessages, 0), `{Route:responses Client:openai-responses Provider:anthropic-messages} on a door of openai-responses to openai-chat`},
	} {
		if got := check(c.metrics); got.OK || !strings.Contains(got.Detail, c.want) {
			t.Errorf("%s: %+v lacks %q", name, got, c.want)
		}
	}
	// A door never served fails too.
	al.served = map[doorKey]int{{routeMessages, protoMessages, protoMessages}: 1}
	if c := check(series(routeMessages, protoMessages, protoMessages, 1)); c.OK || !strings.Contains(c.Detail, "never served") {
		t.Errorf("doors never served: %+v", c)
	}
}
