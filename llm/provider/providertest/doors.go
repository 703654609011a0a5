package providertest

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/phasegate/phasegate/httpx"
	"github.com/phasegate/phasegate/llm"
	"github.com/phasegate/phasegate/llm/llmtest"
	"github.com/phasegate/phasegate/llm/provider"
	"github.com/phasegate/phasegate/mockllm"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/phases/phasetest"
)

// Door is a client protocol as tests drive it: its path, a request body
// and how a stream of it ends.
type Door struct {
	Protocol llm.Protocol
	Path     string
}

// Doors lists every door.
var Doors = []Door{
	{llm.OpenAIChat, mockllm.PathChatCompletions},
	{llm.AnthropicMessages, mockllm.PathMessages},
	{llm.OpenAIResponses, "/v1/responses"},
}

// Body is a request of the door for model, streamed when stream is set.
func (d Door) Body(model string, stream bool) string {
	switch d.Protocol {
	case llm.AnthropicMessages:
		return fmt.Sprintf(`{"model":%q,"max_tokens":64,"messages":[{"role":"user","content":"say hello to the gateway"}],"stream":%t}`, model, stream)
	case llm.OpenAIResponses:
		return fmt.Sprintf(`{"model":%q,"input":"say hello to the gateway","stream":%t}`, model, stream)
	}
	return Chat(model, stream)
}

// Providers lists the providers the mock speaks.
var Providers = []string{provider.ProviderOpenAICompatible, provider.ProviderAnthropic}

// Endpoint is the mock's endpoint for provider.
func Endpoint(m *mockllm.Server, provider string) string {
	if provider == "anthropic" {
		return m.URL() + mockllm.PathMessages
	}
	return m.URL() + mockllm.PathChatCompletions
}

// Ended reports whether a stream body of the door ends well formed: Chat
// with data: [DONE]; Messages with message_stop, or an error event when
// it may have failed; Responses with response.completed, or
// response.incomplete or response.failed when it may have been cut.
func (d Door) Ended(body []byte, completed bool) bool {
	if d.Protocol == llm.OpenAIChat {
		return bytes.HasSuffix(body, []byte("data: [DONE]\n\n"))
	}
	if !bytes.HasSuffix(body, []byte("\n\n")) {
		return false
	}
	last := body[:len(body)-2]
	if i := bytes.LastIndex(last, []byte("\n\n")); i >= 0 {
		last = last[i+2:]
	}
	name, _, _ := bytes.Cut(bytes.TrimPrefix(last, []byte("event: ")), []byte("\n"))
	if !bytes.HasPrefix(last, []byte("event: ")) {
		return false
	}
	ends := []string{"message_stop", "error"}
	if d.Protocol == llm.OpenAIResponses {
		ends = []string{"response.completed", "response.incomplete", "response.failed"}
	}
	if completed {
		ends = ends[:1]
	}
	return slices.Contains(ends, string(name))
}

// CheckStream fails t when a streamed answer on the door, which no
// scripted plugin altered and whose client stayed, breaks its protocol's
// rules (llmtest.WellFormed) however it ended: completed, exited, failed
// upstream or timed out.
func (d Door) CheckStream(t phasetest.TB, r *phasetest.Result, what string) {
	ended := slices.Contains([]phases.Cause{phases.CauseCompleted, phases.CauseExit, phases.CauseUpstreamError, phases.CauseTimeout}, r.Summary.Cause)
	if !ended || r.BodyAltered || r.Aborted || r.FrameworkFailed || !httpx.IsSSE(r.Header) {
		return
	}
	if err := llmtest.WellFormed(d.Protocol, r.Body); err != nil {
		t.Fatalf("the %s stream (%s) is not well formed: %v\n%s\n%s", d.Protocol, what, err, r.Body, strings.Join(r.Journal, "\n"))
	}
}
