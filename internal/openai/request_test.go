package openai_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/phasegate/phasegate/internal/openai"
)

var parseCases = []struct {
	name    string
	body    string
	want    openai.ChatRequest
	wantErr string // Error() text; "" for success
}{
	{
		name: "typical",
		body: `{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}],"temperature":0.2}`,
		want: openai.ChatRequest{Model: "gpt-4o", Stream: true, IncludeUsage: true, Messages: []openai.Message{
			{Role: "system", Content: "Be brief."}, {Role: "user", Content: "Hi"},
		}},
	},
	{
		name: "content parts",
		body: `{"messages":[{"role":"user","content":[{"type":"text","text":"look at"},{"type":"image_url","image_url":{"url":"data:..."}},{"type":"text","text":"this \"image\"\n"}]}]}`,
		want: openai.ChatRequest{Messages: []openai.Message{{Role: "user", Content: "look at\nthis \"image\"\n"}}},
	},
	{
		name: "null and missing content",
		body: `{"messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"x"}]},{"role":"tool"},{"role":"user","content":[]}]}`,
		want: openai.ChatRequest{Messages: []openai.Message{{Role: "assistant"}, {Role: "tool"}, {Role: "user"}}},
	},
	{
		name: "escapes and unicode",
		body: `{"model":"m\u00e9","messages":[{"role":"user","content":"\ud83d\ude00 caf\u00e9 \t tab"}]}`,
		want: openai.ChatRequest{Model: "mé", Messages: []openai.Message{{Role: "user", Content: "😀 café \t tab"}}},
	},
	{name: "empty object", body: `{}`, want: openai.ChatRequest{}},
	{name: "whitespace", body: " \n\t{ \"model\" : \"a\" , \"stream\" : false } \n", want: openai.ChatRequest{Model: "a"}},
	{name: "nulls are absent", body: `{"model":null,"stream":null,"stream_options":null,"messages":null}`, want: openai.ChatRequest{}},
	{name: "empty messages", body: `{"messages":[]}`, want: openai.ChatRequest{Messages: []openai.Message{}}},
	{name: "duplicate keys: last wins", body: `{"model":"a","model":"b","stream":true,"stream":false}`, want: openai.ChatRequest{Model: "b"}},
	{name: "keys are case-sensitive", body: `{"Model":"a","STREAM":true}`, want: openai.ChatRequest{}},
	{name: "escaped key", body: `{"mod\u0065l":"a"}`, want: openai.ChatRequest{Model: "a"}},
	{name: "include_usage false", body: `{"stream":true,"stream_options":{"include_usage":false}}`, want: openai.ChatRequest{Stream: true}},
	{name: "unknown fields ignored", body: `{"tools":[{"type":"function"}],"x":{"y":[1,2,{"z":null}]},"model":"m"}`, want: openai.ChatRequest{Model: "m"}},

	{name: "empty body", body: ``, wantErr: "request body is empty"},
	{name: "blank body", body: " \r\n\t", wantErr: "request body is empty"},
	{name: "malformed", body: `{"model":"a",}`, wantErr: "request body is not valid JSON: invalid character '}' looking for beginning of object key string (at byte 14)"},
	{name: "truncated", body: `{"model":"a"`, wantErr: "request body is not valid JSON: unexpected end of JSON input (at byte 12)"},
	{name: "trailing garbage", body: `{"model":"a"} x`, wantErr: "request body is not valid JSON: invalid character 'x' after top-level value (at byte 15)"},
	{name: "malformed array", body: `[1,`, wantErr: "request body is not valid JSON: unexpected end of JSON input (at byte 3)"},
	{name: "array", body: `[{"model":"a"}]`, wantErr: "request body must be a JSON object"},
	{name: "string", body: `"hello"`, wantErr: "request body must be a JSON object"},
	{name: "null", body: `null`, wantErr: "request body must be a JSON object"},
	{name: "model number", body: `{"model":4}`, wantErr: "model: must be a string"},
	{name: "model object", body: `{"model":{"name":"a"}}`, wantErr: "model: must be a string"},
	{name: "stream string", body: `{"stream":"true"}`, wantErr: "stream: must be a boolean"},
	{name: "stream number", body: `{"stream":1}`, wantErr: "stream: must be a boolean"},
	{name: "stream_options string", body: `{"stream_options":"x"}`, wantErr: "stream_options: must be an object"},
	{name: "include_usage string", body: `{"stream_options":{"include_usage":"yes"}}`, wantErr: "stream_options.include_usage: must be a boolean"},
	{name: "messages object", body: `{"messages":{"role":"user"}}`, wantErr: "messages: must be an array"},
	{name: "messages string", body: `{"messages":"hi"}`, wantErr: "messages: must be an array"},
	{name: "message not object", body: `{"messages":[{"role":"user"},"hi"]}`, wantErr: "messages[1]: must be an object"},
	{name: "role number", body: `{"messages":[{"role":1}]}`, wantErr: "messages[0].role: must be a string"},
	{name: "content number", body: `{"messages":[{"content":1}]}`, wantErr: "messages[0].content: must be a string or an array of content parts"},
	{name: "part not object", body: `{"messages":[{"content":["hi"]}]}`, wantErr: "messages[0].content[0]: must be an object"},
	{name: "part type number", body: `{"messages":[{"content":[{"type":1}]}]}`, wantErr: "messages[0].content[0].type: must be a string"},
	{name: "text part without text", body: `{"messages":[{"content":[{"type":"text","text":null}]}]}`, wantErr: "messages[0].content[0].text: must be a string"},
}

func TestParseChatRequest(t *testing.T) {
	for _, tc := range parseCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := openai.ParseChatRequest([]byte(tc.body))
			if tc.wantErr != "" {
				var re *openai.RequestError
				if !errors.As(err, &re) {
					t.Fatalf("error = %v (%T), want *RequestError %q", err, err, tc.wantErr)
				}
				if err.Error() != tc.wantErr {
					t.Fatalf("error = %q, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %#v\nwant %#v", got, tc.want)
			}
		})
	}
}

func TestRequestError(t *testing.T) {
	e := &openai.RequestError{Field: "messages", Msg: "must be an array"}
	if e.Error() != "messages: must be an array" {
		t.Errorf("Error() = %q", e.Error())
	}
	e = &openai.RequestError{Msg: "request body is empty"}
	if e.Error() != "request body is empty" {
		t.Errorf("Error() = %q", e.Error())
	}
}

var rewriteCases = []struct {
	name    string
	body    string
	options map[string]any
	force   bool
	want    string
	wantErr bool
}{
	{
		name:    "override model",
		body:    `{"model":"client","messages":[{"role":"user","content":"hi"}],"x-custom":{"keep":[1, 2]}}`,
		options: map[string]any{"model": "upstream-model"},
		want:    `{"messages":[{"role":"user","content":"hi"}],"x-custom":{"keep":[1, 2]},"model":"upstream-model"}`,
	},
	{
		name:    "add options in key order",
		body:    `{"messages":[]}`,
		options: map[string]any{"temperature": 0.5, "model": "m", "user": nil, "metadata": map[string]string{"a": "<b>"}},
		want:    `{"messages":[],"metadata":{"a":"\u003cb\u003e"},"model":"m","temperature":0.5,"user":null}`,
	},
	{
		name:    "no options copies",
		body:    " { \"a\" : 1 , \"b\" : [ 1, 2 ] } ",
		options: nil,
		want:    `{"a":1,"b":[ 1, 2 ]}`,
	},
	{
		name:  "force usage adds stream_options",
		body:  `{"model":"m","stream":true}`,
		force: true,
		want:  `{"model":"m","stream":true,"stream_options":{"include_usage":true}}`,
	},
	{
		name:  "force usage keeps other stream_options",
		body:  `{"stream":true,"stream_options":{"continuous_usage_stats":true},"model":"m"}`,
		force: true,
		want:  `{"stream":true,"model":"m","stream_options":{"include_usage":true,"continuous_usage_stats":true}}`,
	},
	{
		name:  "force usage respects explicit false",
		body:  `{"stream":true,"stream_options":{"include_usage":false}}`,
		force: true,
		want:  `{"stream":true,"stream_options":{"include_usage":false}}`,
	},
	{
		name:  "force usage keeps explicit true",
		body:  `{"stream":true,"stream_options":{"include_usage":true}}`,
		force: true,
		want:  `{"stream":true,"stream_options":{"include_usage":true}}`,
	},
	{
		name:  "force usage replaces null include_usage",
		body:  `{"stream":true,"stream_options":{"include_usage":null,"x":1}}`,
		force: true,
		want:  `{"stream":true,"stream_options":{"include_usage":true,"x":1}}`,
	},
	{
		name:  "force usage replaces null stream_options",
		body:  `{"stream_options":null,"stream":true}`,
		force: true,
		want:  `{"stream":true,"stream_options":{"include_usage":true}}`,
	},
	{
		name:  "force usage leaves invalid stream_options",
		body:  `{"stream":true,"stream_options":"bad"}`,
		force: true,
		want:  `{"stream":true,"stream_options":"bad"}`,
	},
	{
		name:  "force usage only when streaming",
		body:  `{"stream":false}`,
		force: true,
		want:  `{"stream":false}`,
	},
	{
		name:  "force usage uses last stream",
		body:  `{"stream":false,"stream":true,"stream_options":{"include_usage":false},"stream_options":{"a":1}}`,
		force: true,
		want:  `{"stream":false,"stream":true,"stream_options":{"include_usage":true,"a":1}}`,
	},
	{
		name:    "stream set by options",
		body:    `{"stream":false}`,
		options: map[string]any{"stream": true},
		force:   true,
		want:    `{"stream":true,"stream_options":{"include_usage":true}}`,
	},
	{
		name:    "stream_options set by options",
		body:    `{"stream":true,"stream_options":{"include_usage":false}}`,
		options: map[string]any{"stream_options": map[string]any{"x": 1}},
		force:   true,
		want:    `{"stream":true,"stream_options":{"include_usage":true,"x":1}}`,
	},
	{
		name:    "duplicate and escaped keys overridden",
		body:    `{"model":"a","mod\u0065l":"b","model":"c","keep":true}`,
		options: map[string]any{"model": "d"},
		want:    `{"keep":true,"model":"d"}`,
	},
	{
		name:    "option key needing escapes",
		body:    `{"a\"b":1}`,
		options: map[string]any{"a\"b": 2},
		want:    `{"a\"b":2}`,
	},
	{name: "empty body", body: ``, wantErr: true},
	{name: "malformed", body: `{"a":}`, wantErr: true},
	{name: "not an object", body: `[]`, wantErr: true},
	{name: "bad option", body: `{}`, options: map[string]any{"x": math.NaN()}, wantErr: true},
	{name: "bad option type", body: `{}`, options: map[string]any{"x": make(chan int)}, wantErr: true},
}

func TestRewrite(t *testing.T) {
	for _, tc := range rewriteCases {
		t.Run(tc.name, func(t *testing.T) {
			body := []byte(tc.body)
			orig := bytes.Clone(body)
			got, err := openai.Rewrite(body, tc.options, tc.force)
			if !bytes.Equal(body, orig) {
				t.Fatalf("input modified: %q", body)
			}
			if tc.wantErr {
				if err == nil {
					t.Fatalf("got %s, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if string(got) != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
			if !json.Valid(got) {
				t.Fatalf("invalid JSON: %s", got)
			}
			if len(body) > 0 && len(got) > 0 && &got[0] == &body[0] {
				t.Fatal("output aliases the input")
			}
		})
	}
	var re *openai.RequestError
	if _, err := openai.Rewrite([]byte(`[1]`), nil, false); !errors.As(err, &re) || err.Error() != "request body must be a JSON object" {
		t.Errorf("Rewrite of an array: %v", err)
	}
}

// refModel decodes a top-level field with encoding/json, case-sensitively.
func refField(t *testing.T, body []byte, name string, v any) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("encoding/json rejects a body we accepted: %v", err)
	}
	if raw, ok := m[name]; ok {
		_ = json.Unmarshal(raw, v)
	}
}

func FuzzParseChatRequest(f *testing.F) {
	for _, tc := range parseCases {
		f.Add([]byte(tc.body))
	}
	for _, tc := range rewriteCases {
		f.Add([]byte(tc.body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		orig := bytes.Clone(body)
		req, err := openai.ParseChatRequest(body)
		if err != nil {
			var re *openai.RequestError
			if !errors.As(err, &re) {
				t.Fatalf("error %v is a %T", err, err)
			}
			if empty := len(bytes.TrimLeft(body, " \t\r\n")) == 0; empty != (err.Error() == "request body is empty") {
				t.Fatalf("error %q for body %q", err, body)
			} else if !empty && json.Valid(body) == strings.Contains(err.Error(), "not valid JSON") {
				t.Fatalf("error %q disagrees with json.Valid", err)
			}
			if _, rerr := openai.Rewrite(body, nil, false); (rerr != nil) != (re.Field == "") {
				t.Fatalf("ParseChatRequest: %v; Rewrite: %v", err, rerr)
			}
			return
		}
		var model string
		refField(t, body, "model", &model)
		var stream bool
		refField(t, body, "stream", &stream)
		if model != req.Model || stream != req.Stream {
			t.Fatalf("got model %q stream %v; encoding/json: %q, %v", req.Model, req.Stream, model, stream)
		}
		var so map[string]json.RawMessage
		refField(t, body, "stream_options", &so)
		_, explicit := so["include_usage"]
		explicit = explicit && string(so["include_usage"]) != "null"

		out, err := openai.Rewrite(body, map[string]any{"model": "fuzz-model", "temperature": 0.5}, true)
		if err != nil {
			t.Fatalf("Rewrite failed on a valid request: %v", err)
		}
		if !bytes.Equal(body, orig) {
			t.Fatal("input modified")
		}
		if !json.Valid(out) {
			t.Fatalf("Rewrite produced invalid JSON: %q", out)
		}
		req2, err := openai.ParseChatRequest(out)
		if err != nil {
			t.Fatalf("rewritten body does not parse: %v\n%s", err, out)
		}
		if req2.Model != "fuzz-model" || req2.Stream != req.Stream || !reflect.DeepEqual(req2.Messages, req.Messages) {
			t.Fatalf("rewritten request %+v, original %+v", req2, req)
		}
		wantUsage := req.IncludeUsage
		if req.Stream && !explicit {
			wantUsage = true
		}
		if req2.IncludeUsage != wantUsage {
			t.Fatalf("IncludeUsage = %v, want %v\n%s", req2.IncludeUsage, wantUsage, out)
		}
	})
}

func BenchmarkParseChatRequest(b *testing.B) {
	body := []byte(parseCases[0].body)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := openai.ParseChatRequest(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRewrite(b *testing.B) {
	body := []byte(`{"model":"gpt-4o","stream":true,"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}],"temperature":0.2}`)
	opts := map[string]any{"model": "gpt-4o-2024-08-06"}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := openai.Rewrite(body, opts, true); err != nil {
			b.Fatal(err)
		}
	}
}
