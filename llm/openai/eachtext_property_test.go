package openai_test

import (
	"reflect"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/phasegate/phasegate/llm/openai"
)

// collect runs walk on in and returns what it emits and whether it found
// the response ambiguous.
func collect(walk func([]byte, []byte, func(openai.ResponseText)) ([]byte, bool), in []byte) ([]text, bool) {
	var out []text
	_, amb := walk(in, nil, func(t openai.ResponseText) {
		out = append(out, text{t.Choice, t.Kind, t.Tool, string(t.Text)})
	})
	return out, amb
}

// checkFastAgrees fails unless EachText, fast path included, emits exactly
// what the strict walk does on in, and reports the same ambiguity.
func checkFastAgrees(t interface {
	Helper()
	Fatalf(string, ...any)
}, in []byte) {
	t.Helper()
	fast, fastAmb := collect(openai.EachText, in)
	strict, strictAmb := collect(openai.EachTextStrict, in)
	if !reflect.DeepEqual(fast, strict) || fastAmb != strictAmb {
		t.Fatalf("EachText(%s)\nfast   %+v, ambiguous %v\nstrict %+v, ambiguous %v", in, fast, fastAmb, strict, strictAmb)
	}
}

// The chunks an OpenAI-compatible upstream streams: the fast path reads
// each of them itself.
var commonChunks = []string{
	`[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]`,
	`[{"index":0,"delta":{"content":" token"},"logprobs":null,"finish_reason":null}]`,
	`[{"index":0,"delta":{"content":"a \"quoted\"\nline \u00e9"},"finish_reason":null}]`,
	`[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]`,
	`[]`,
	` [ { "delta" : { "content" : "x" } , "index" : 2 } ] `,
}

func TestEachTextFastPathTakesCommonChunks(t *testing.T) {
	for _, c := range commonChunks {
		if !openai.ChunkChoicesFast([]byte(strings.TrimSpace(c))) {
			t.Errorf("the fast path leaves %s to the strict walk", c)
		}
		checkFastAgrees(t, []byte(`{"id":"x","choices":`+c+`}`))
	}
	// Shapes it must leave to the strict walk, which alone reads them.
	for _, c := range []string{
		`[{"index":0,"delta":{"content":"a"}},{"index":1,"delta":{"content":"b"}}]`,
		`[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]}}]`,
		`[{"Index":0,"delta":{"content":"a"}}]`,
		`[{"index":0,"delta":{"Content":"a"}}]`,
		`[{"index":0,"delta":{"con\u0074ent":"a"}}]`,
		`[{"index":0,"delta":{"content":"a","content":"b"}}]`,
		`[{"index":0,"index":1,"delta":{"content":"a"}}]`,
		`[{"index":0,"message":{"content":"a"}}]`,
		`[{"delta":{"content":"a"},"delta":{"content":"b"}}]`,
		`[{"delta":{"reasoning_content":"a"}}]`,
		`[{"delta":null}]`,
		`[1]`,
	} {
		if openai.ChunkChoicesFast([]byte(c)) {
			t.Errorf("the fast path reads %s, which it must leave to the strict walk", c)
		}
		checkFastAgrees(t, []byte(`{"choices":`+c+`}`))
	}
}

// genJSONish draws a chunk-like body from pieces that hit both walks:
// the common shape, loose and escaped keys, duplicates, other fields and
// types, odd white space, and truncation.
func genJSONish(t *rapid.T) []byte {
	ws := rapid.SampledFrom([]string{"", "", "", " ", "\n\t", "\r "})
	str := rapid.SampledFrom([]string{`""`, `"a"`, `" token"`, `"a\nb\"c\\"`, `"\u00e9\ud83d\ude00"`, `"é"`, "\"\xff\"", `"x\/y"`})
	scalar := rapid.SampledFrom([]string{`null`, `0`, `1`, `-1`, `1.5`, `2e3`, `"0"`, `true`, `99999999999999999999`, `{}`, `[]`, `{"a":[1]}`})
	obj := func(keys []string, value func(string) string) string {
		var b strings.Builder
		b.WriteString("{" + ws.Draw(t, "ws"))
		for i := range rapid.IntRange(0, 5).Draw(t, "members") {
			if i > 0 {
				b.WriteString(ws.Draw(t, "ws") + "," + ws.Draw(t, "ws"))
			}
			k := rapid.SampledFrom(keys).Draw(t, "key")
			b.WriteString(`"` + k + `"` + ws.Draw(t, "ws") + ":" + ws.Draw(t, "ws") + value(k))
		}
		return b.String() + ws.Draw(t, "ws") + "}"
	}
	deltaKeys := []string{"content", "content", "content", "role", "Content", `con\u0074ent`, "refusal", "reasoning_content", "x"}
	delta := func() string {
		switch rapid.IntRange(0, 5).Draw(t, "delta kind") {
		case 0:
			return scalar.Draw(t, "delta scalar")
		case 1:
			return `{"tool_calls":[{"index":1,"function":{"arguments":` + str.Draw(t, "args") + `}}]}`
		}
		return obj(deltaKeys, func(string) string {
			if rapid.IntRange(0, 3).Draw(t, "string?") > 0 {
				return str.Draw(t, "text")
			}
			return scalar.Draw(t, "value")
		})
	}
	choiceKeys := []string{"index", "delta", "delta", "logprobs", "finish_reason", "message", "Index", `ind\u0065x`, "x"}
	choice := func() string {
		return obj(choiceKeys, func(k string) string {
			switch k {
			case "delta", "message":
				return delta()
			case "finish_reason":
				return rapid.SampledFrom([]string{`null`, `"stop"`, `{}`}).Draw(t, "finish")
			}
			return scalar.Draw(t, "value")
		})
	}
	topKeys := []string{"choices", "choices", "choices", "id", "object", "created", "system_fingerprint", "usage", "Choices", "x"}
	body := obj(topKeys, func(k string) string {
		if !strings.EqualFold(k, "choices") || rapid.IntRange(0, 5).Draw(t, "array?") == 0 {
			return scalar.Draw(t, "value")
		}
		var a strings.Builder
		a.WriteString("[" + ws.Draw(t, "ws"))
		for i := range rapid.IntRange(0, 2).Draw(t, "choices") {
			if i > 0 {
				a.WriteString("," + ws.Draw(t, "ws"))
			}
			a.WriteString(choice())
		}
		return a.String() + ws.Draw(t, "ws") + "]"
	})
	out := []byte(body)
	if rapid.IntRange(0, 9).Draw(t, "truncate?") == 0 {
		out = out[:rapid.IntRange(0, len(out)).Draw(t, "at")]
	}
	return out
}

// The fast path for the common chunk shape emits exactly what the strict
// walk emits, on every body, well formed or not.
func TestEachTextFastPathAgreesWithStrictWalk(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		checkFastAgrees(t, genJSONish(t))
	})
}

func FuzzEachTextFastPath(f *testing.F) {
	for _, c := range commonChunks {
		f.Add([]byte(`{"choices":` + c + `}`))
	}
	for _, tc := range eachTextCases {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		checkFastAgrees(t, in)
	})
}
