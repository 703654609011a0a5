package openai

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"testing"
)

var jsonCases = []string{
	``, ` `, `{}`, `[]`, `null`, `true`, `false`, `nul`, `truex`, `0`, `-0`, `01`, `-`, `1.`, `1.5`, `1e`, `1e+`,
	`1E-7`, `-12.5e+3`, `""`, `"a"`, `"\"`, `"\u12"`, `"\u12G4"`, `"\ud83d\ude00"`, `"\ud83d"`, `"\x"`,
	"\"\x01\"", "\"\xff\"", `"\/\b\f\n\r\t\\"`, `{"a":1,}`, `{"a" 1}`, `{"a":1 "b":2}`, `{,}`, `[1,]`,
	`[1 2]`, `[,1]`, `{"a":[1,{"b":null}],"c":"d"}`, ` {"a" : [ 1 , 2 ] } `, `{"a":1}x`, `{"a":1}}`,
	`{1:2}`, `[[[[]]]]`, `{"a":{"b":{"c":{}}}}`, "\t\n\r{}\t\n\r", "\v{}",
}

// deepJSONCases probe the nesting limit. They are kept out of the fuzz
// corpus, where minimising such large inputs stalls the fuzzer.
var deepJSONCases = []string{
	strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth),
	strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1),
	strings.Repeat(`{"a":`, maxDepth) + "1" + strings.Repeat("}", maxDepth),
	strings.Repeat(`{"a":`, maxDepth+1) + "1" + strings.Repeat("}", maxDepth+1),
}

func TestValidJSON(t *testing.T) {
	for _, in := range append(jsonCases[:len(jsonCases):len(jsonCases)], deepJSONCases...) {
		if got, want := validJSON([]byte(in)), json.Valid([]byte(in)); got != want {
			t.Errorf("validJSON(%.40q) = %v, encoding/json says %v", in, got, want)
		}
	}
}

func FuzzJSONScanner(f *testing.F) {
	for _, in := range jsonCases {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		valid := validJSON(in)
		if want := json.Valid(in); valid != want {
			t.Fatalf("validJSON(%q) = %v, encoding/json says %v", in, valid, want)
		}
		if !valid {
			return
		}
		i := skipSpace(in, 0)
		switch in[i] {
		case '"':
			// Strings decode as with encoding/json.
			end := skipString(in, i)
			var want string
			if err := json.Unmarshal(in, &want); err != nil {
				t.Fatal(err)
			}
			got, ok := decodeString(in[i:end])
			if !ok || got != want {
				t.Fatalf("decodeString(%q) = %q, %v; want %q", in, got, ok, want)
			}
			if !keyIs(in[i:end], want) && !strings.ContainsAny(want, "\"\\") && len(want) <= 20 && isPlainASCII([]byte(want)) {
				t.Fatalf("keyIs(%q, %q) = false", in[i:end], want)
			}
			// And re-encode to valid JSON with the same value.
			q := appendQuoted(nil, want)
			var back string
			if err := json.Unmarshal(q, &back); err != nil || back != want {
				t.Fatalf("appendQuoted(%q) = %q: %v", want, q, err)
			}
		case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			// Integers decode as with encoding/json into an int.
			var want int
			werr := json.Unmarshal(in, &want)
			got, ok := decodeInt(in[i:skipNumber(in, i)])
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
		if !validJSON(in) {
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
		if got := string(appendQuoted(nil, tc.in)); got != tc.want {
			t.Errorf("appendQuoted(%q) = %s, want %s", tc.in, got, tc.want)
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
		if got := keyIs([]byte(tc.raw), tc.name); got != tc.want {
			t.Errorf("keyIs(%s, %q) = %v", tc.raw, tc.name, got)
		}
	}
}
