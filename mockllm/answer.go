package mockllm

import (
	"strconv"
	"strings"

	"github.com/phasegate/phasegate/llm"
)

// toolOffer is what a request says about tools, read by each door from its
// own wire format.
type toolOffer struct {
	names    []string // the function tools offered, in order
	mode     llm.ToolChoiceMode
	forced   string // the tool tool_choice names, with ToolChoiceTool
	answered bool   // the last message carries tool results
}

// call returns the tool the mock calls: none when no tool is offered, tool
// choice is none, or the request answers an earlier call (so that a
// client's tool loop ends); else the tool the choice names, or the first.
func (o *toolOffer) call() (string, bool) {
	switch {
	case len(o.names) == 0, o.mode == llm.ToolChoiceNone, o.answered:
		return "", false
	case o.mode == llm.ToolChoiceTool && o.forced != "":
		return o.forced, true
	}
	return o.names[0], true
}

// reply is the mock's answer to one request, whichever door it came in by.
type reply struct {
	text    string
	hasText bool         // a text block, possibly empty, precedes any call
	tool    llm.ToolCall // Name == "": no call
	stop    llm.StopReason
	usage   llm.Usage
	details bool // the usage breaks down cache reads and reasoning
}

// answer makes the reply to a request with prompt input tokens and offer,
// shaped by the behaviour headers. toolPrefix starts the ids of tool calls
// ("call_", "toolu_"), which the mock numbers in sequence.
func (m *Mock) answer(b *behaviour, prompt int64, offer *toolOffer, toolPrefix string) reply {
	rp := reply{text: m.content, hasText: true, stop: llm.StopEnd, details: b.usageDetails}
	if b.hasContent {
		rp.text = b.content
	}
	if name, ok := offer.call(); ok {
		rp.hasText = b.hasContent && b.content != ""
		if !rp.hasText {
			rp.text = ""
		}
		rp.tool = llm.ToolCall{
			ID:        toolPrefix + "mock_" + strconv.FormatUint(m.toolSeq.Add(1), 10),
			Name:      name,
			Arguments: b.toolArguments,
		}
		rp.stop = llm.StopToolCalls
	}
	u := llm.Usage{InputTokens: prompt, OutputTokens: int64(countWords(rp.text) + countWords(rp.tool.Arguments))}
	if b.hasPromptTokens {
		u.InputTokens = b.promptTokens
	}
	if b.hasCompletion {
		u.OutputTokens = b.completionTokens
	}
	if b.usageDetails {
		u.CacheReadTokens = min(2, u.InputTokens)
		u.ReasoningTokens = min(3, u.OutputTokens)
	}
	rp.usage = u
	return rp
}

// parts returns the reply's content as neutral parts.
func (rp *reply) parts() []llm.Part {
	var parts []llm.Part
	if rp.hasText {
		parts = append(parts, llm.Part{Kind: llm.PartText, Text: rp.text})
	}
	if rp.tool.Name != "" {
		parts = append(parts, llm.Part{Kind: llm.PartToolCall, ToolCall: rp.tool})
	}
	return parts
}

// events returns the reply as the neutral events of a stream in which the
// text and a tool call's arguments each come in chunks pieces (see
// splitContent). A first usage event carries the input counts, which
// Messages reports in message_start; the full usage follows the stop.
func (rp *reply) events(id, model string, created int64, chunks int) []llm.Event {
	start := rp.usage
	start.OutputTokens, start.ReasoningTokens = 0, 0
	evs := []llm.Event{
		{Kind: llm.EventUsage, Usage: start},
		{Kind: llm.EventStart, ID: id, Model: model, Created: created},
		{Kind: llm.EventPing},
	}
	index := 0
	block := func(kind llm.BlockKind, id, name, content string) {
		evs = append(evs, llm.Event{Kind: llm.EventBlockStart, Index: index, Block: kind, ID: id, Name: name})
		for _, piece := range splitContent(content, chunks) {
			evs = append(evs, llm.Event{Kind: llm.EventBlockDelta, Index: index, Delta: []byte(piece)})
		}
		evs = append(evs, llm.Event{Kind: llm.EventBlockStop, Index: index})
		index++
	}
	if rp.hasText {
		block(llm.BlockText, "", "", rp.text)
	}
	if rp.tool.Name != "" {
		block(llm.BlockToolCall, rp.tool.ID, rp.tool.Name, rp.tool.Arguments)
	}
	return append(evs,
		llm.Event{Kind: llm.EventStop, Stop: rp.stop},
		llm.Event{Kind: llm.EventUsage, Usage: rp.usage},
		llm.Event{Kind: llm.EventEnd},
	)
}

// requestWords counts the prompt tokens of a neutral request the way the
// Chat door counts them: the words of every text the model reads as
// conversation (system prompt, message text, tool results), not tool call
// arguments, tool definitions or images.
func requestWords(r *llm.Request) int64 {
	var n int64
	var walk func(parts []llm.Part)
	walk = func(parts []llm.Part) {
		for i := range parts {
			switch p := &parts[i]; p.Kind {
			case llm.PartText:
				n += int64(countWords(p.Text))
			case llm.PartToolResult:
				walk(p.ToolResult.Content)
			}
		}
	}
	walk(r.System)
	for i := range r.Messages {
		walk(r.Messages[i].Parts)
	}
	return n
}

// countWords returns the number of whitespace-separated words in s.
func countWords(s string) int {
	n := 0
	for range strings.FieldsSeq(s) {
		n++
	}
	return n
}
