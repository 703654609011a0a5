package openai_test

import (
	"bytes"
	"encoding/json"
	"io"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/phasegate/phasegate/internal/openai"
	"github.com/phasegate/phasegate/internal/sse"
)

const (
	chunkWithUsage = `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":30,"total_tokens":42,"prompt_tokens_details":{"cached_tokens":8,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":5}}}`
	textChunk      = `{"id":"chatcmpl-AbCdEfGhIjKlMnOpQrStUvWxYz012","object":"chat.completion.chunk","created":1731000000,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_0ba0d124f1","choices":[{"index":0,"delta":{"content":" token"},"logprobs":null,"finish_reason":null}],"usage":null}`
	completion     = `{"id":"chatcmpl-2","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"Hello \"world\"\n"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}`
)

var usageCases = []struct {
	name string
	in   string
	want openai.Usage
	ok   bool
}{
	{"chunk with usage", chunkWithUsage, openai.Usage{PromptTokens: 12, CompletionTokens: 30, TotalTokens: 42, CachedTokens: 8, ReasoningTokens: 5, Known: true}, true},
	{"completion", completion, openai.Usage{PromptTokens: 3, CompletionTokens: 4, TotalTokens: 7, Known: true}, true},
	{"null usage", textChunk, openai.Usage{}, false},
	{"absent usage", `{"choices":[]}`, openai.Usage{}, false},
	{"empty usage", `{"usage":{}}`, openai.Usage{Known: true}, true},
	{"usage not object", `{"usage":5}`, openai.Usage{}, false},
	{"null details", `{"usage":{"prompt_tokens":1,"prompt_tokens_details":null,"completion_tokens_details":null}}`, openai.Usage{PromptTokens: 1, Known: true}, true},
	{"non-integers", `{"usage":{"prompt_tokens":1.5,"completion_tokens":"2","total_tokens":1e2}}`, openai.Usage{Known: true}, true},
	{"duplicate usage", `{"usage":{"prompt_tokens":1},"usage":{"prompt_tokens":2}}`, openai.Usage{PromptTokens: 2, Known: true}, true},
	{"duplicate details", `{"usage":{"prompt_tokens_details":{"cached_tokens":3},"prompt_tokens_details":{}}}`, openai.Usage{Known: true}, true},
	{"case-sensitive", `{"Usage":{"prompt_tokens":1}}`, openai.Usage{}, false},
	{"invalid JSON", `{"usage":{"prompt_tokens":1}`, openai.Usage{}, false},
	{"trailing garbage", `{"usage":{"prompt_tokens":1}}]`, openai.Usage{}, false},
	{"not an object", `[{"usage":{}}]`, openai.Usage{}, false},
	{"done sentinel", `[DONE]`, openai.Usage{}, false},
	{"empty", ``, openai.Usage{}, false},
}

func TestParseUsage(t *testing.T) {
	for _, tc := range usageCases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := openai.ParseUsage([]byte(tc.in))
			if got != tc.want || ok != tc.ok {
				t.Fatalf("got %+v, %v; want %+v, %v", got, ok, tc.want, tc.ok)
			}
			checkUsageRef(t, []byte(tc.in))
		})
	}
}

// refUsage decodes usage with encoding/json (into maps, which match keys
// case-sensitively, like the upstream).
func refUsage(in []byte) (openai.Usage, bool) {
	var top map[string]json.RawMessage
	if json.Unmarshal(in, &top) != nil {
		return openai.Usage{}, false
	}
	var u map[string]json.RawMessage
	if json.Unmarshal(top["usage"], &u) != nil || u == nil {
		return openai.Usage{}, false
	}
	num := func(m map[string]json.RawMessage, k string) int {
		var n int
		if json.Unmarshal(m[k], &n) != nil {
			return 0
		}
		return n
	}
	details := func(k, field string) int {
		var d map[string]json.RawMessage
		if json.Unmarshal(u[k], &d) != nil {
			return 0
		}
		return num(d, field)
	}
	return openai.Usage{
		PromptTokens:     num(u, "prompt_tokens"),
		CompletionTokens: num(u, "completion_tokens"),
		TotalTokens:      num(u, "total_tokens"),
		CachedTokens:     details("prompt_tokens_details", "cached_tokens"),
		ReasoningTokens:  details("completion_tokens_details", "reasoning_tokens"),
		Known:            true,
	}, true
}

func checkUsageRef(t *testing.T, in []byte) {
	t.Helper()
	got, ok := openai.ParseUsage(in)
	want, wok := refUsage(in)
	if got != want || ok != wok || got.Known != ok {
		t.Fatalf("ParseUsage(%q) = %+v, %v; encoding/json: %+v, %v", in, got, ok, want, wok)
	}
}

func FuzzParseUsage(f *testing.F) {
	for _, tc := range usageCases {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		checkUsageRef(t, in)
	})
}

var textCases = []struct {
	name  string
	in    string
	delta string // ChunkDeltaText
	msg   string // CompletionText
}{
	{"text chunk", textChunk, " token", ""},
	{"completion", completion, "", "Hello \"world\"\n"},
	{"usage chunk", chunkWithUsage, "", ""},
	{"role chunk", `{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}`, "", ""},
	{"several choices", `{"choices":[{"delta":{"content":"a"}},{"delta":{"content":"b"}},{"delta":{}},{"delta":{"content":null}},{"delta":{"content":"c"}}]}`, "abc", ""},
	{"tool call delta", `{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"a\""}}]}}]}`, "", ""},
	{"escapes", `{"choices":[{"delta":{"content":"line\n\u00e9\ud83d\ude00\\"}}]}`, "line\né😀\\", ""},
	{"duplicates", `{"choices":[{"delta":{"content":"a","content":"b"}}],"choices":[{"delta":{"content":"c"},"delta":{"content":"d"}}]}`, "d", ""},
	{"wrong types", `{"choices":[1,"x",null,{"delta":"s"},{"delta":{"content":5}},{"message":{"content":["x"]}}]}`, "", ""},
	{"choices not array", `{"choices":{"delta":{"content":"a"}}}`, "", ""},
	{"invalid JSON", `{"choices":[{"delta":{"content":"a"}}]`, "", ""},
	{"both", `{"choices":[{"delta":{"content":"d"},"message":{"content":"m"}}]}`, "d", "m"},
	{"done", `[DONE]`, "", ""},
}

// refText extracts choices[*].<field>.content with encoding/json.
func refText(in []byte, field string) string {
	var top map[string]json.RawMessage
	if json.Unmarshal(in, &top) != nil {
		return ""
	}
	var choices []json.RawMessage
	if json.Unmarshal(top["choices"], &choices) != nil {
		return ""
	}
	var sb strings.Builder
	for _, c := range choices {
		var choice, inner map[string]json.RawMessage
		if json.Unmarshal(c, &choice) != nil || json.Unmarshal(choice[field], &inner) != nil {
			continue
		}
		var s string
		if json.Unmarshal(inner["content"], &s) == nil {
			sb.WriteString(s)
		}
	}
	return sb.String()
}

func TestChunkAndCompletionText(t *testing.T) {
	for _, tc := range textCases {
		t.Run(tc.name, func(t *testing.T) {
			checkText(t, []byte(tc.in))
			if got := openai.ChunkDeltaText([]byte(tc.in)); got != tc.delta {
				t.Errorf("ChunkDeltaText = %q, want %q", got, tc.delta)
			}
			if got := openai.CompletionText([]byte(tc.in)); got != tc.msg {
				t.Errorf("CompletionText = %q, want %q", got, tc.msg)
			}
			if got := openai.AppendChunkDeltaText([]byte("x"), []byte(tc.in)); string(got) != "x"+tc.delta {
				t.Errorf("AppendChunkDeltaText = %q, want %q", got, "x"+tc.delta)
			}
		})
	}
}

func checkText(t *testing.T, in []byte) {
	t.Helper()
	if got, want := openai.ChunkDeltaText(in), refText(in, "delta"); got != want {
		t.Fatalf("ChunkDeltaText(%q) = %q; encoding/json: %q", in, got, want)
	}
	if got, want := openai.CompletionText(in), refText(in, "message"); got != want {
		t.Fatalf("CompletionText(%q) = %q; encoding/json: %q", in, got, want)
	}
}

func FuzzChunkDeltaText(f *testing.F) {
	for _, tc := range textCases {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		checkText(t, in)
	})
}

var idPattern = regexp.MustCompile(`^chatcmpl-phasegate-[0-9a-f]{24}$`)

// completionShape is what an OpenAI client reads from a refusal.
type completionShape struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	Model   string `json:"model"`
	Choices []struct {
		Index        int     `json:"index"`
		Message      *msg    `json:"message"`
		Delta        *msg    `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens int `json:"prompt_tokens"`
	} `json:"usage"`
}

type msg struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

var refusalCases = []struct {
	name, model, message string
	usage                openai.Usage
}{
	{"plain", "gpt-4o", "I can't help with that.", openai.Usage{}},
	{"with usage", "gpt-4o-mini", "Blocked by policy.", openai.Usage{PromptTokens: 10, CompletionTokens: 0, TotalTokens: 10, CachedTokens: 2, ReasoningTokens: 1, Known: true}},
	{"hostile text", "m\"odel\n", "quote \" backslash \\ newline \n nul \x00 bad \xff utf8 \u2028 </script>", openai.Usage{}},
	{"empty", "", "", openai.Usage{Known: true}},
}

func checkRefusal(t *testing.T, model, message string, usage openai.Usage) {
	t.Helper()
	wantMessage := fixUTF8(message)
	wantModel := fixUTF8(model)
	check := func(body []byte, object string) *completionShape {
		t.Helper()
		var c completionShape
		if err := json.Unmarshal(body, &c); err != nil {
			t.Fatalf("invalid JSON %q: %v", body, err)
		}
		if !idPattern.MatchString(c.ID) || c.Object != object || c.Created == 0 || c.Model != wantModel {
			t.Fatalf("bad header: %s", body)
		}
		if len(c.Choices) != 1 || c.Choices[0].FinishReason == nil || *c.Choices[0].FinishReason != openai.RefusalFinishReason {
			t.Fatalf("bad choices: %s", body)
		}
		if (c.Usage != nil) != usage.Known {
			t.Fatalf("usage present = %v, want %v", c.Usage != nil, usage.Known)
		}
		got, ok := openai.ParseUsage(body)
		if ok != usage.Known || got != usage {
			t.Fatalf("ParseUsage = %+v, %v; want %+v", got, ok, usage)
		}
		return &c
	}

	c := check(openai.RefusalCompletion(model, message, usage), "chat.completion")
	if m := c.Choices[0].Message; m == nil || m.Role != "assistant" || m.Content != wantMessage {
		t.Fatalf("bad message %+v", m)
	}
	if got := openai.CompletionText(openai.RefusalCompletion(model, message, usage)); got != wantMessage {
		t.Fatalf("CompletionText = %q", got)
	}

	chunk := openai.RefusalChunk(model, message, usage)
	c = check(chunk, "chat.completion.chunk")
	if d := c.Choices[0].Delta; d == nil || d.Role != "assistant" || d.Content != wantMessage {
		t.Fatalf("bad delta %+v", d)
	}
	if got := openai.ChunkDeltaText(chunk); got != wantMessage {
		t.Fatalf("ChunkDeltaText = %q", got)
	}

	// The stream is one chunk event, then [DONE].
	rd := sse.NewReader(bytes.NewReader(openai.RefusalStream(model, message, usage)), 0)
	e, err := rd.Next()
	if err != nil {
		t.Fatal(err)
	}
	check(e.Data, "chat.completion.chunk")
	if e, err = rd.Next(); err != nil || !sse.IsDone(e) {
		t.Fatalf("second event %q, %v; want [DONE]", e.Raw, err)
	}
	if _, err = rd.Next(); err != io.EOF {
		t.Fatalf("trailing data: %v", err)
	}
}

func TestRefusal(t *testing.T) {
	for _, tc := range refusalCases {
		t.Run(tc.name, func(t *testing.T) {
			checkRefusal(t, tc.model, tc.message, tc.usage)
		})
	}
	a, b := openai.RefusalChunk("m", "x", openai.Usage{}), openai.RefusalChunk("m", "x", openai.Usage{})
	if bytes.Equal(a[:60], b[:60]) {
		t.Error("refusal IDs are not random")
	}
}

func FuzzRefusal(f *testing.F) {
	for _, tc := range refusalCases {
		f.Add(tc.model, tc.message, tc.usage.PromptTokens, tc.usage.Known)
	}
	f.Fuzz(func(t *testing.T, model, message string, prompt int, known bool) {
		u := openai.Usage{PromptTokens: prompt, TotalTokens: prompt, Known: known}
		if !known {
			u = openai.Usage{}
		}
		checkRefusal(t, model, message, u)
	})
}

var errorCases = []struct {
	name, message, typ string
	code               any
	want               string
}{
	{"nil code", "bad request", "invalid_request_error", nil, `{"error":{"message":"bad request","type":"invalid_request_error","code":null}}`},
	{"string code", "slow down", "rate_limit_error", "rate_limit_exceeded", `{"error":{"message":"slow down","type":"rate_limit_error","code":"rate_limit_exceeded"}}`},
	{"int code", "x", "t", 400, `{"error":{"message":"x","type":"t","code":400}}`},
	{"int64 code", "x", "t", int64(-1), `{"error":{"message":"x","type":"t","code":-1}}`},
	{"uint code", "x", "t", uint(7), `{"error":{"message":"x","type":"t","code":7}}`},
	{"other code", "x", "t", 1.5, `{"error":{"message":"x","type":"t","code":1.5}}`},
	{"unencodable code", "x", "t", make(chan int), `{"error":{"message":"x","type":"t","code":null}}`},
	{"hostile message", "\"}\n\x00\xff\u2029", "a\\b", int8(3), `{"error":{"message":"\"}\n\u0000\ufffd\u2029","type":"a\\b","code":3}}`},
}

func TestErrorBody(t *testing.T) {
	for _, tc := range errorCases {
		t.Run(tc.name, func(t *testing.T) {
			got := openai.ErrorBody(tc.message, tc.typ, tc.code)
			if string(got) != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
			checkErrorBody(t, tc.message, tc.typ, got)
		})
	}
}

func checkErrorBody(t *testing.T, message, typ string, body []byte) {
	t.Helper()
	var e struct {
		Error struct {
			Message string `json:"message"`
			Type    string `json:"type"`
			Code    any    `json:"code"`
		} `json:"error"`
	}
	if !utf8.Valid(body) || json.Unmarshal(body, &e) != nil {
		t.Fatalf("invalid JSON: %q", body)
	}
	if e.Error.Message != fixUTF8(message) || e.Error.Type != fixUTF8(typ) {
		t.Fatalf("ErrorBody(%q, %q) = %s", message, typ, body)
	}
}

func FuzzErrorBody(f *testing.F) {
	for _, tc := range errorCases {
		if s, ok := tc.code.(string); ok {
			f.Add(tc.message, tc.typ, s)
		} else {
			f.Add(tc.message, tc.typ, "")
		}
	}
	f.Fuzz(func(t *testing.T, message, typ, code string) {
		body := openai.ErrorBody(message, typ, code)
		checkErrorBody(t, message, typ, body)
		var e struct {
			Error struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		if json.Unmarshal(body, &e) != nil || e.Error.Code != fixUTF8(code) {
			t.Fatalf("code %q encoded as %s", code, body)
		}
	})
}

func BenchmarkParseUsage(b *testing.B) {
	for _, bc := range []struct{ name, in string }{{"with usage", chunkWithUsage}, {"text chunk", textChunk}} {
		b.Run(bc.name, func(b *testing.B) {
			in := []byte(bc.in)
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				openai.ParseUsage(in)
			}
		})
	}
}

func BenchmarkChunkDeltaText(b *testing.B) {
	in := []byte(textChunk)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if openai.ChunkDeltaText(in) == "" {
			b.Fatal("no text")
		}
	}
}

func BenchmarkAppendChunkDeltaText(b *testing.B) {
	in := []byte(textChunk)
	buf := make([]byte, 0, 64)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		buf = openai.AppendChunkDeltaText(buf[:0], in)
	}
}

func BenchmarkCompletionText(b *testing.B) {
	in := []byte(completion)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		openai.CompletionText(in)
	}
}

func BenchmarkRefusalChunk(b *testing.B) {
	u := openai.Usage{PromptTokens: 10, TotalTokens: 10, Known: true}
	b.ReportAllocs()
	for b.Loop() {
		openai.RefusalChunk("gpt-4o", "Blocked by policy.", u)
	}
}

func BenchmarkErrorBody(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		openai.ErrorBody("messages: must be an array", "invalid_request_error", nil)
	}
}

// fixUTF8 replaces each byte of invalid UTF-8 with U+FFFD, as encoding/json
// does.
func fixUTF8(s string) string {
	return string([]rune(s))
}
