package llm

import "unicode/utf8"

// The constants of EstimateInputTokens, described in docs/protocols.md.
const (
	estimateMessageOverhead = 3    // role and framing of each message
	estimateReplyOverhead   = 3    // priming of the reply
	estimateImageTokens     = 1600 // Anthropic's figure for a 1.15-megapixel image, its largest unscaled size
	estimateToolsPrompt     = 346  // Anthropic's system prompt for tool use (auto or none)
	estimateToolOverhead    = 10   // framing of each tool definition
)

// EstimateInputTokens estimates the input tokens of r without a tokenizer,
// for answering Anthropic's count_tokens when the provider cannot. Text
// counts a token per four ASCII characters, per two other characters, and
// per character of the CJK scripts and emoji; each message, image and tool
// adds a fixed overhead. It is an estimate: docs/protocols.md says how
// close it comes.
func EstimateInputTokens(r *Request) int64 {
	var quarters int64 // quarter tokens of text
	add := func(s string) { quarters += textQuarters(s) }
	n := int64(estimateReplyOverhead)
	var walk func(parts []Part)
	walk = func(parts []Part) {
		for i := range parts {
			p := &parts[i]
			switch p.Kind {
			case PartText, PartRefusal:
				add(p.Text)
			case PartImage:
				n += estimateImageTokens
			case PartToolCall:
				add(p.ToolCall.Name)
				add(p.ToolCall.Arguments)
			case PartToolResult:
				walk(p.ToolResult.Content)
			}
		}
	}
	walk(r.System)
	for i := range r.Messages {
		n += estimateMessageOverhead
		walk(r.Messages[i].Parts)
	}
	if len(r.Tools) > 0 {
		n += estimateToolsPrompt
	}
	for i := range r.Tools {
		t := &r.Tools[i]
		n += estimateToolOverhead
		add(t.Name)
		add(t.Description)
		quarters += textQuarters(string(t.Parameters))
	}
	return n + (quarters+3)/4
}

// textQuarters counts the quarter tokens of s.
func textQuarters(s string) int64 {
	var q int64
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			q++
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if wideRune(r) {
			q += 4
		} else {
			q += 2
		}
	}
	return q
}

// wideRune reports the characters that tokenizers mostly spend a token or
// more on: CJK ideographs, kana, hangul, full-width forms and emoji.
func wideRune(r rune) bool {
	switch {
	case 0x2E80 <= r && r <= 0x9FFF, // CJK radicals to unified ideographs, kana
		0xAC00 <= r && r <= 0xD7AF, // hangul
		0xF900 <= r && r <= 0xFAFF, // CJK compatibility ideographs
		0xFF00 <= r && r <= 0xFFEF, // full-width forms
		r >= 0x1F000:               // emoji and symbols, supplementary ideographs
		return true
	}
	return false
}
