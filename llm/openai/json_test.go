package openai

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/phasegate/phasegate/llm/internal/wire"
)

var jsonCases = []string{
	`{"a":1,"a":2}`, `{"a":{"b":1,"b":2}}`, `[{"a":1},{"a":1,"b":{"a":1},"a":2}]`, `{"a":1,"\u0061":2}`, `{"A":1,"a":2}`,
	`{"a":{"x":[{"y":1,"y":[]}]}}`, `{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k0":9}`,
	"{\"\xff\":1,\"\xfe\":2}", `{"\ud800":1,"\udc00":2}`, `{"Messages":[],"messages":[]}`, `{"":0,"":0}`, `[1e700]`,
	``, ` `, `{}`, `[]`, `null`, `true`, `false`, `nul`, `truex`, `0`, `-0`, `01`, `-`, `1.`, `1.5`, `1e`, `1e+`,
	`1E-7`, `-12.5e+3`, `""`, `"a"`, `"\"`, `"\u12"`, `"\u12G4"`, `"\ud83d\ude00"`, `"\ud83d"`, `"\x"`,
	"\"\x01\"", "\"\xff\"", `"\/\b\f\n\r\t\\"`, `{"a":1,}`, `{"a" 1}`, `{"a":1 "b":2}`, `{,}`, `[1,]`,
	`[1 2]`, `[,1]`, `{"a":[1,{"b":null}],"c":"d"}`, ` {"a" : [ 1 , 2 ] } `, `{"a":1}x`, `{"a":1}}`,
	`{1:2}`, `[[[[]]]]`, `{"a":{"b":{"c":{}}}}`, "\t\n\r{}\t\n\r", "\v{}",
}

// deepJSONCases probe the nesting limit. They are kept out of the fuzz
// corpus, where minimising such large inputs stalls the fuzzer.
var deepJSONCases = []string{
	strings.Repeat("[", wire.MaxDepth) + strings.Repeat("]", wire.MaxDepth),
	strings.Repeat("[", wire.MaxDepth+1) + strings.Repeat("]", wire.MaxDepth+1),
	strings.Repeat(`{"a":`, wire.MaxDepth) + "1" + strings.Repeat("}", wire.MaxDepth),
	strings.Repeat(`{"a":`, wire.MaxDepth+1) + "1" + strings.Repeat("}", wire.MaxDepth+1),
}

func TestValidJSON(t *testing.T) {
	for _, in := range append(jsonCases[:len(jsonCases):len(jsonCases)], deepJSONCases...) {
		if got, want := wire.Valid([]byte(in)), json.Valid([]byte(in)); got != want {
			t.Errorf("wire.Valid(%.40q) = %v, encoding/json says %v", in, got, want)
		}
	}
}

func FuzzJSONScanner(f *testing.F) {
	for _, in := range jsonCases {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		valid := wire.Valid(in)
		if want := json.Valid(in); valid != want {
			t.Fatalf("wire.Valid(%q) = %v, encoding/json says %v", in, valid, want)
		}
		if !valid {
			return
		}
		if got, want := hasDuplicateKey(in), refDuplicateKey(t, in); got != want {
			t.Fatalf("keyCheck finds a duplicate key in %q: %v; reference: %v", in, got, want)
		}
		i := len(in) - len(bytes.TrimLeft(in, " \t\n\r"))
		switch in[i] {
		case '"':
			// Strings decode as with encoding/json.
			end := wire.StringEnd(in, i)
			var want string
			if err := json.Unmarshal(in, &want); err != nil {
				t.Fatal(err)
			}
			got, ok := wire.StringOf(in[i:end])
			if !ok || got != want {
				t.Fatalf("wire.StringOf(%q) = %q, %v; want %q", in, got, ok, want)
			}
			if !wire.KeyIs(in[i:end], want) && !strings.ContainsAny(want, "\"\\") && len(want) <= 20 && isPlainASCII([]byte(want)) {
				t.Fatalf("wire.KeyIs(%q, %q) = false", in[i:end], want)
			}
			// And re-encode to valid JSON with the same value.
			q := wire.AppendString(nil, want)
			var back string
			if err := json.Unmarshal(q, &back); err != nil || back != want {
				t.Fatalf("wire.AppendString(%q) = %q: %v", want, q, err)
			}
		case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			// Integers decode as with encoding/json into an int.
			var want int
			werr := json.Unmarshal(in, &want)
			got, ok := decodeInt(bytes.TrimRight(in[i:], " \t\n\r"))
			if ok != (werr == nil) || got != want {
				t.Fatalf("decodeInt(%q) = %d, %v; encoding/json: %d, %v", in, got, ok, want, werr)
			}
		}
	})
}

func BenchmarkValidJSONDeep(b *testing.B) {
	in := []byte(deepJSONCases[2])
	b.ReportAllocs()
	for b.Loop() {
		if !wire.Valid(in) {
			b.Fatal("invalid")
		}
	}
}

func TestDecodeInt(t *testing.T) {
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"0", 0, true},
		{"-0", 0, true},
		{"12", 12, true},
		{"-12", -12, true},
		{strconv.Itoa(math.MaxInt), math.MaxInt, true},
		{strconv.Itoa(math.MinInt), math.MinInt, true},
		{"9223372036854775808", 0, false},
		{"-9223372036854775809", 0, false},
		{"99999999999999999999", 0, false},
		{"1.0", 0, false},
		{"1e3", 0, false},
		{"-", 0, false},
		{"", 0, false},
		{"null", 0, false},
	}
	for _, tc := range tests {
		got, ok := decodeInt([]byte(tc.in))
		if got != tc.want || ok != tc.ok {
			t.Errorf("decodeInt(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestAppendQuoted(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `""`},
		{"plain", `"plain"`},
		{"a\"b\\c", `"a\"b\\c"`},
		{"\n\r\t\x00\x1f", `"\n\r\t\u0000\u001f"`},
		{"héllo ✓ 😀", `"héllo ✓ 😀"`},
		{"bad \xff utf8", `"bad \ufffd utf8"`},
		{"\u2028\u2029", `"\u2028\u2029"`},
		{"<script>&", `"<script>&"`},
	}
	for _, tc := range tests {
		if got := string(wire.AppendString(nil, tc.in)); got != tc.want {
			t.Errorf("wire.AppendString(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestKeyIs(t *testing.T) {
	tests := []struct {
		raw, name string
		want      bool
	}{
		{`"model"`, "model", true},
		{`"Model"`, "model", false},
		{`"mod\u0065l"`, "model", true},
		{`"mod\u0065"`, "model", false},
		{`"model "`, "model", false},
		{`"\u006d\u006f\u0064\u0065\u006c"`, "model", true},
		{`""`, "", true},
		{``, "text", false},
	}
	for _, tc := range tests {
		if got := wire.KeyIs([]byte(tc.raw), tc.name); got != tc.want {
			t.Errorf("wire.KeyIs(%s, %q) = %v", tc.raw, tc.name, got)
		}
	}
}

// hasDuplicateKey walks the valid JSON in with a keyCheck.
func hasDuplicateKey(in []byte) bool {
	kc := newKeyCheck(in)
	defer kc.release()
	if !wire.ValidKeys(in, kc) {
		panic("invalid JSON")
	}
	return kc.dup != nil
}

// RefDuplicateKey returns a key that appears twice in one object of the
// JSON in, and whether there is one, using encoding/json's tokenizer as the
// reference.
func RefDuplicateKey(in []byte) (key string, found bool, err error) {
	type frame struct {
		keys    map[string]bool
		wantKey bool
	}
	var stack []*frame
	dec := json.NewDecoder(bytes.NewReader(in))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return "", false, nil
		}
		if err != nil {
			return "", false, err
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.keys != nil && top.wantKey {
			if k, ok := tok.(string); ok {
				if top.keys[k] {
					return k, true, nil
				}
				top.keys[k], top.wantKey = true, false
				continue
			}
		} else if top != nil && top.keys != nil {
			top.wantKey = true
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{keys: map[string]bool{}, wantKey: true})
		case json.Delim('['):
			stack = append(stack, &frame{})
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
	}
}

func refDuplicateKey(t *testing.T, in []byte) bool {
	t.Helper()
	_, found, err := RefDuplicateKey(in)
	if err != nil {
		t.Fatalf("tokenizing %q: %v", in, err)
	}
	return found
}

func TestKeyCheck(t *testing.T) {
	for _, in := range append(jsonCases[:len(jsonCases):len(jsonCases)], deepJSONCases[0], deepJSONCases[2]) {
		if !json.Valid([]byte(in)) {
			continue
		}
		if got, want := hasDuplicateKey([]byte(in)), refDuplicateKey(t, []byte(in)); got != want {
			t.Errorf("keyCheck finds a duplicate key in %.60q: %v; reference: %v", in, got, want)
		}
	}
	deep := strings.Repeat(`{"a":`, wire.MaxDepth-1) + `{"b":1,"b":2}` + strings.Repeat("}", wire.MaxDepth-1)
	if !hasDuplicateKey([]byte(deep)) {
		t.Error("no duplicate found at the nesting limit")
	}
}

func TestFoldKey(t *testing.T) {
	tests := []struct {
		raw, want string
		ok        bool
	}{
		{`"model"`, "model", true},
		{`"MoDeL"`, "model", true},
		{`"max_completion-tokens"`, "maxcompletiontokens", true},
		{`"__m_o_d_e_l__"`, "model", true},
		{`"\u004d\u006fdel"`, "model", true},
		{"\"\u212a\u017f\"", "ks", true},
		{`"\u212a\u017f"`, "ks", true},
		{`"caf\u00e9"`, "", false},
		{"\"\xff\"", "", false},
		{`"` + strings.Repeat("a", maxFolded) + `"`, strings.Repeat("a", maxFolded), true},
		{`"` + strings.Repeat("a", maxFolded+1) + `"`, "", false},
		{`"` + strings.Repeat("_", 1000) + `n"`, "n", true},
	}
	for _, tc := range tests {
		got, ok := foldKey(nil, []byte(tc.raw))
		if ok != tc.ok || (ok && string(got) != tc.want) {
			t.Errorf("foldKey(%s) = %q, %v; want %q, %v", tc.raw, got, ok, tc.want, tc.ok)
		}
	}
}

func TestRequestFieldIndices(t *testing.T) {
	if len(requestFields.names) != nRequestFields {
		t.Fatalf("requestFields has %d names, nRequestFields is %d", len(requestFields.names), nRequestFields)
	}
	for i, name := range map[int]string{fModel: "model", fStream: "stream", fStreamOptions: "stream_options", fMessages: "messages",
		fTools: "tools", fFunctions: "functions", fResponseFormat: "response_format"} {
		if requestFields.names[i] != name {
			t.Errorf("requestFields.names[%d] = %q, want %q", i, requestFields.names[i], name)
		}
	}
	for i, name := range map[int]string{fRole: "role", fContent: "content", fName: "name", fRefusal: "refusal", fToolCalls: "tool_calls", fFunctionCall: "function_call"} {
		if messageFields.names[i] != name {
			t.Errorf("messageFields.names[%d] = %q, want %q", i, messageFields.names[i], name)
		}
	}
	for i, name := range map[int]string{fType: "type", fText: "text", fPart: "refusal"} {
		if partFields.names[i] != name {
			t.Errorf("partFields.names[%d] = %q, want %q", i, partFields.names[i], name)
		}
	}
}

// Every name a fieldSet holds is plain ASCII: foldKey relies on it.
func TestFieldNamesFold(t *testing.T) {
	for _, fs := range []*fieldSet{&requestFields, &streamOptionsFields, &messageFields, &partFields, &toolFields, &functionFields} {
		for i, n := range fs.names {
			if fs.folded[i] == "" || !isPlainASCII([]byte(n)) {
				t.Errorf("field %q folds to %q", n, fs.folded[i])
			}
		}
	}
}
