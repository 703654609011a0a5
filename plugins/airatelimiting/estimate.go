package airatelimiting

import (
	"math"

	"github.com/phasegate/phasegate/llm"
)

// The upper bound's overheads. A byte-level BPE tokenizer (OpenAI's, and
// the open models') never makes more tokens than the text has bytes; the
// chat template adds a few tokens per message and to prime the reply, and
// tools a preamble and their framing.
const (
	boundMessageOverhead = 8    // role, name and framing of each message
	boundReplyOverhead   = 8    // priming of the reply
	boundImageTokens     = 1600 // above OpenAI's largest high-detail figure (1445) and Anthropic's
	boundToolsPrompt     = 400  // the tools preamble
	boundToolOverhead    = 16   // framing of each tool definition
)

// promptUpperBound is the upper_bound estimate of r's prompt tokens.
func promptUpperBound(r *llm.Request) int64 {
	n := int64(boundReplyOverhead + boundMessageOverhead*len(r.Messages))
	for _, text := range r.Texts() {
		n += int64(len(text))
	}
	for i := range r.Messages {
		n += int64(len(r.Messages[i].Name)) + boundImageTokens*images(r.Messages[i].Parts)
	}
	n += boundImageTokens * images(r.System)
	if len(r.Tools) > 0 {
		n += boundToolsPrompt
	}
	for i := range r.Tools {
		n += boundToolOverhead + int64(len(r.Tools[i].Parameters))
	}
	return n
}

// images counts the image parts of parts, tool results included.
func images(parts []llm.Part) int64 {
	var n int64
	for i := range parts {
		switch parts[i].Kind {
		case llm.PartImage:
			n++
		case llm.PartToolResult:
			n += images(parts[i].ToolResult.Content)
		}
	}
	return n
}

// approxOverhead is what llm.EstimateInputTokens adds to the text of a
// request with one message: subtracted to estimate a completion's text.
var approxOverhead = llm.EstimateInputTokens(&llm.Request{Messages: []llm.Message{{}}})

// textTokens estimates the tokens of a completion's text the way the
// prompt is estimated.
func textTokens(mode string, text []byte) int64 {
	if len(text) == 0 {
		return 0
	}
	if mode == EstimateUpperBound {
		return int64(len(text))
	}
	r := llm.Request{Messages: []llm.Message{{Parts: []llm.Part{{Kind: llm.PartText, Text: string(text)}}}}}
	return llm.EstimateInputTokens(&r) - approxOverhead
}

// rawTokens estimates the tokens of a body that is not a chat request.
func rawTokens(mode string, body []byte) int64 {
	if mode == EstimateUpperBound {
		return int64(len(body))
	}
	return int64((len(body) + 3) / 4)
}

// microDollars is the cost of prompt and completion tokens at p, rounded
// up: a price per million tokens is a price in micro-dollars per token.
func (p Price) microDollars(prompt, completion int64) int64 {
	c := math.Ceil(p.Prompt*float64(prompt) + p.Completion*float64(completion))
	if c > maxAmount {
		return maxAmount
	}
	return int64(c)
}
