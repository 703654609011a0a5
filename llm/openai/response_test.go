package openai_test

import (
	"bytes"
	"encoding/json"
	"io"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/phasegate/phasegate/llm/openai"
	"github.com/phasegate/phasegate/sse"
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
	delta string // AppendChunkDeltaText
}{
	{"text chunk", textChunk, " token"},
	{"completion", completion, ""},
	{"usage chunk", chunkWithUsage, ""},
	{"role chunk", `{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}`, ""},
	{"several choices", `{"choices":[{"delta":{"content":"a"}},{"delta":{"content":"b"}},{"delta":{}},{"delta":{"content":null}},{"delta":{"content":"c"}}]}`, "abc"},
	{"tool call delta", `{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"a\""}}]}}]}`, ""},
	{"escapes", `{"choices":[{"delta":{"content":"line\n\u00e9\ud83d\ude00\\"}}]}`, "line\né😀\\"},
	{"duplicates", `{"choices":[{"delta":{"content":"a","content":"b"}}],"choices":[{"delta":{"content":"c"},"delta":{"content":"d"}}]}`, "d"},
	{"wrong types", `{"choices":[1,"x",null,{"delta":"s"},{"delta":{"content":5}},{"message":{"content":["x"]}}]}`, ""},
	{"choices not array", `{"choices":{"delta":{"content":"a"}}}`, ""},
	{"invalid JSON", `{"choices":[{"delta":{"content":"a"}}]`, ""},
	{"both", `{"choices":[{"delta":{"content":"d"},"message":{"content":"m"}}]}`, "d"},
	{"done", `[DONE]`, ""},
}

// refText extracts choices[*].delta.content with encoding/json.
func refText(in []byte) string {
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
		if json.Unmarshal(c, &choice) != nil || json.Unmarshal(choice["delta"], &inner) != nil {
			continue
		}
		var s string
		if json.Unmarshal(inner["content"], &s) == nil {
			sb.WriteString(s)
		}
	}
	return sb.String()
}

func TestAppendChunkDeltaText(t *testing.T) {
	for _, tc := range textCases {
		t.Run(tc.name, func(t *testing.T) {
			checkText(t, []byte(tc.in))
			if got := openai.AppendChunkDeltaText([]byte("x"), []byte(tc.in)); string(got) != "x"+tc.delta {
				t.Errorf("AppendChunkDeltaText = %q, want %q", got, "x"+tc.delta)
			}
		})
	}
}

func checkText(t *testing.T, in []byte) {
	t.Helper()
	if got, want := string(openai.AppendChunkDeltaText(nil, in)), refText(in); got != want {
		t.Fatalf("AppendChunkDeltaText(%q) = %q; encoding/json: %q", in, got, want)
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
	if got := eachText(openai.RefusalCompletion(model, message, usage)); wantMessage != "" && (len(got) != 1 || got[0].text != wantMessage) {
		t.Fatalf("EachText = %+v", got)
	}

	chunk := openai.RefusalChunk(model, message, usage)
	c = check(chunk, "chat.completion.chunk")
	if d := c.Choices[0].Delta; d == nil || d.Role != "assistant" || d.Content != wantMessage {
		t.Fatalf("bad delta %+v", d)
	}
	if got := string(openai.AppendChunkDeltaText(nil, chunk)); got != wantMessage {
		t.Fatalf("AppendChunkDeltaText = %q", got)
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

func BenchmarkAppendChunkDeltaText(b *testing.B) {
	in := []byte(textChunk)
	buf := make([]byte, 0, 64)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		buf = openai.AppendChunkDeltaText(buf[:0], in)
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

type text struct {
	choice int
	kind   openai.TextKind
	tool   int
	text   string
}

func eachText(in []byte) []text {
	out, _ := eachTextAmbiguous(in)
	return out
}

func eachTextAmbiguous(in []byte) ([]text, bool) {
	var out []text
	_, amb := openai.EachText(in, nil, func(t openai.ResponseText) {
		out = append(out, text{t.Choice, t.Kind, t.Tool, string(t.Text)})
	})
	return out, amb
}

var eachTextCases = []struct {
	name      string
	in        string
	want      []text
	ambiguous bool
}{
	{"text chunk", textChunk, []text{{0, openai.TextContent, 0, " token"}}, false},
	{"completion", completion, []text{{0, openai.TextContent, 0, "Hello \"world\"\n"}}, false},
	{"usage chunk", chunkWithUsage, nil, false},
	{"empty content", `{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}`, nil, false},
	{"choices by index", `{"choices":[{"index":1,"delta":{"content":"b"}},{"index":0,"delta":{"content":"a"}},{"delta":{"content":"c"}}]}`,
		[]text{{1, openai.TextContent, 0, "b"}, {0, openai.TextContent, 0, "a"}, {2, openai.TextContent, 0, "c"}}, false},
	{"every field", `{"choices":[{"index":3,"message":{"role":"assistant","content":"c","refusal":"r","reasoning_content":"rc","reasoning":"rs",` +
		`"tool_calls":[{"id":"x","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}},{"function":{"arguments":"{}"}}],"function_call":{"name":"g","arguments":"ga"}}}]}`,
		[]text{{3, openai.TextContent, 0, "c"}, {3, openai.TextRefusal, 0, "r"}, {3, openai.TextReasoning, 0, "rc"}, {3, openai.TextReasoning, 0, "rs"},
			{3, openai.TextToolArguments, 0, `{"a":1}`}, {3, openai.TextToolArguments, 1, "{}"}, {3, openai.TextFunctionArguments, 0, "ga"}}, false},
	{"streamed tool call deltas", `{"choices":[{"index":0,"delta":{"tool_calls":[{"index":2,"function":{"arguments":"{\"q\":"}}]}}]}`,
		[]text{{0, openai.TextToolArguments, 2, `{"q":`}}, false},
	{"content parts", `{"choices":[{"message":{"content":[{"type":"text","text":"a"},{"type":"image"},{"type":"text","text":"b"}]}}]}`,
		[]text{{0, openai.TextContent, 0, "a"}, {0, openai.TextContent, 0, "b"}}, false},
	{"loose keys and duplicates are all read", `{"Choices":[{"Index":1,"Delta":{"content":"a","Content":"b","content":"c","Refusal":"r","TOOL_CALLS":[{"Function":{"Arguments":"x"}}]}}]}`,
		[]text{{1, openai.TextContent, 0, "a"}, {1, openai.TextContent, 0, "b"}, {1, openai.TextContent, 0, "c"}, {1, openai.TextRefusal, 0, "r"}, {1, openai.TextToolArguments, 0, "x"}}, true},
	{"duplicate content", `{"choices":[{"delta":{"content":"a","content":"b"}}]}`, []text{{0, openai.TextContent, 0, "a"}, {0, openai.TextContent, 0, "b"}}, true},
	{"duplicate index", `{"choices":[{"index":0,"index":1,"delta":{"content":"a"}}]}`, []text{{1, openai.TextContent, 0, "a"}}, true},
	{"duplicate arguments", `{"choices":[{"delta":{"tool_calls":[{"function":{"arguments":"a","arguments":"b"}}]}}]}`,
		[]text{{0, openai.TextToolArguments, 0, "a"}, {0, openai.TextToolArguments, 0, "b"}}, true},
	{"Text of a part", `{"choices":[{"message":{"content":[{"Text":"a"}]}}]}`, []text{{0, openai.TextContent, 0, "a"}}, false},
	{"upper-case keys", `{"CHOICES":[{"INDEX":2,"MESSAGE":{"CONTENT":"a"}}]}`, []text{{2, openai.TextContent, 0, "a"}}, false},
	{"content beside Content", `{"choices":[{"delta":{"content":"a","Con_tent":"b"}}]}`, []text{{0, openai.TextContent, 0, "a"}, {0, openai.TextContent, 0, "b"}}, true},
	{"duplicates of fields not read", `{"id":"a","id":"b","choices":[{"finish_reason":null,"finish_reason":"stop","delta":{"role":"a","role":"b"}}]}`, nil, false},
	{"wrong types", `{"choices":[1,"x",null,{"delta":"s"},{"delta":{"content":5,"tool_calls":{},"function_call":[]}},{"message":{"content":["x"]}}]}`, nil, false},
	{"not an object", `[DONE]`, nil, false},
	{"syntax error after a choice", `{"choices":[{"delta":{"content":"a"}}],"x":}`, []text{{0, openai.TextContent, 0, "a"}}, false},
}

func TestEachText(t *testing.T) {
	for _, tc := range eachTextCases {
		t.Run(tc.name, func(t *testing.T) {
			if got, amb := eachTextAmbiguous([]byte(tc.in)); !reflect.DeepEqual(got, tc.want) || amb != tc.ambiguous {
				t.Fatalf("got  %+v, ambiguous %v\nwant %+v, ambiguous %v", got, amb, tc.want, tc.ambiguous)
			}
			checkEachTextRef(t, []byte(tc.in))
		})
	}
}

// refEachText reads the texts of a valid response with encoding/json, as a
// client matching keys exactly (last duplicate wins) would: kind and text.
func refEachText(in []byte) []text {
	var top map[string]json.RawMessage
	if json.Unmarshal(in, &top) != nil {
		return nil
	}
	var choices []map[string]json.RawMessage
	if json.Unmarshal(top["choices"], &choices) != nil {
		return nil
	}
	str := func(raw json.RawMessage) (string, bool) {
		var s string
		return s, json.Unmarshal(raw, &s) == nil && s != ""
	}
	var out []text
	add := func(kind openai.TextKind, raw json.RawMessage) {
		if s, ok := str(raw); ok {
			out = append(out, text{kind: kind, text: s})
		}
	}
	for _, c := range choices {
		for _, field := range []string{"delta", "message"} {
			var m map[string]json.RawMessage
			if json.Unmarshal(c[field], &m) != nil {
				continue
			}
			add(openai.TextContent, m["content"])
			var parts []map[string]json.RawMessage
			if json.Unmarshal(m["content"], &parts) == nil {
				for _, p := range parts {
					add(openai.TextContent, p["text"])
				}
			}
			add(openai.TextRefusal, m["refusal"])
			add(openai.TextReasoning, m["reasoning_content"])
			add(openai.TextReasoning, m["reasoning"])
			var calls []struct {
				Function map[string]json.RawMessage `json:"function"`
			}
			if json.Unmarshal(m["tool_calls"], &calls) == nil {
				for _, call := range calls {
					add(openai.TextToolArguments, call.Function["arguments"])
				}
			}
			var fc map[string]json.RawMessage
			if json.Unmarshal(m["function_call"], &fc) == nil {
				add(openai.TextFunctionArguments, fc["arguments"])
			}
		}
	}
	return out
}

// checkEachTextRef checks that EachText reads at least every text a client
// matching keys exactly reads.
func checkEachTextRef(t *testing.T, in []byte) {
	t.Helper()
	if !json.Valid(in) {
		return
	}
	got := map[text]int{}
	for _, x := range eachText(in) {
		got[text{kind: x.kind, text: x.text}]++
	}
	for _, x := range refEachText(in) {
		if got[x] == 0 {
			t.Fatalf("EachText(%q) misses %+v, which encoding/json reads", in, x)
		}
		got[x]--
	}
}

func FuzzEachText(f *testing.F) {
	for _, tc := range eachTextCases {
		f.Add([]byte(tc.in))
	}
	for _, tc := range textCases {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		checkEachTextRef(t, in)
	})
}

func BenchmarkEachText(b *testing.B) {
	walks := []struct {
		name string
		f    func(body, scratch []byte, fn func(openai.ResponseText)) ([]byte, bool)
	}{{"fast", openai.EachText}, {"strict", openai.EachTextStrict}}
	for _, w := range walks {
		b.Run(w.name, func(b *testing.B) {
			in := []byte(textChunk)
			var scratch []byte
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				scratch, _ = w.f(in, scratch, func(openai.ResponseText) {})
			}
		})
	}
}
