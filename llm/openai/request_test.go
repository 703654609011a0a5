package openai_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/phasegate/phasegate/llm/openai"
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
		want: openai.ChatRequest{Messages: []openai.Message{{Role: "assistant", Calls: []string{"id\nx"}}, {Role: "tool"}, {Role: "user"}}},
	},
	{
		name: "every text place",
		body: `{"messages":[` +
			`{"role":"developer","content":"dev","name":"boss"},` +
			`{"role":"assistant","content":[{"type":"text","text":"a"},{"type":"refusal","refusal":"no"}],"refusal":"r",` +
			`"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"q\":\"x\"}"}}],"function_call":{"name":"g","arguments":"{}"}},` +
			`{"role":"tool","tool_call_id":"c1","content":[{"type":"text","text":"result"},{"type":"other","text":"odd"},{"type":"image_url","image_url":{"url":"u"}}]}],` +
			`"tools":[{"type":"function","function":{"name":"f","description":"Find.","parameters":{"type":"object","properties":{"q":{"type":"string","description":"Query."}}}}}],` +
			`"functions":[{"name":"g","description":"Go."}],` +
			`"response_format":{"type":"json_schema","json_schema":{"name":"s","schema":{"description":"Shape."}}}}`,
		want: openai.ChatRequest{
			Messages: []openai.Message{
				{Role: "developer", Content: "dev", Name: "boss"},
				{Role: "assistant", Content: "a\nno", Refusal: "r", Calls: []string{
					"id\nc1\ntype\nfunction\nfunction\nname\nf\narguments\n{\"q\":\"x\"}",
					"name\ng\narguments\n{}",
				}},
				{Role: "tool", Content: "result\nodd"},
			},
			Definitions: []string{
				"type\nfunction\nfunction\nname\nf\ndescription\nFind.\nparameters\ntype\nobject\nproperties\nq\ntype\nstring\ndescription\nQuery.",
				"name\ng\ndescription\nGo.",
				"type\njson_schema\njson_schema\nname\ns\nschema\ndescription\nShape.",
			},
		},
	},
	{
		name: "distinct keys pass",
		body: `{"model":"m","temperature":1,"Temperature":2,"metadata":{"Foo":"a","foo":"b","a.b":1},"tools":[{"type":"function","function":{"name":"f","parameters":{"properties":{"ID":{},"id":{}}}}}],` +
			`"messages":[{"role":"user","content":"hi","x":{"y":1},"X":{"y":1}}]}`,
		want: openai.ChatRequest{Model: "m", Messages: []openai.Message{{Role: "user", Content: "hi"}},
			Definitions: []string{"type\nfunction\nfunction\nname\nf\nparameters\nproperties\nID\nid"}},
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
	{name: "escaped key", body: `{"mod\u0065l":"a"}`, want: openai.ChatRequest{Model: "a"}},
	{name: "include_usage false", body: `{"stream":true,"stream_options":{"include_usage":false}}`, want: openai.ChatRequest{Stream: true}},
	{name: "unknown fields ignored", body: `{"tools":[{"type":"function"}],"x":{"y":[1,2,{"z":null}]},"model":"m"}`, want: openai.ChatRequest{Model: "m", Definitions: []string{"type\nfunction"}}},

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
	{name: "refusal part without refusal", body: `{"messages":[{"content":[{"type":"refusal","text":"t"}]}]}`, wantErr: "messages[0].content[0].refusal: must be a string"},
	{name: "name number", body: `{"messages":[{"role":"user","name":1}]}`, wantErr: "messages[0].name: must be a string"},
	{name: "refusal object", body: `{"messages":[{"refusal":{}}]}`, wantErr: "messages[0].refusal: must be a string"},
	{name: "tool_calls object", body: `{"messages":[{"tool_calls":{}}]}`, wantErr: "messages[0].tool_calls: must be an array"},
	{name: "tool call string", body: `{"messages":[{"tool_calls":["x"]}]}`, wantErr: "messages[0].tool_calls[0]: must be an object"},
	{name: "function_call string", body: `{"messages":[{"function_call":"auto"}]}`, wantErr: "messages[0].function_call: must be an object"},
	{name: "tools object", body: `{"tools":{}}`, wantErr: "tools: must be an array"},
	{name: "tool string", body: `{"tools":["f"]}`, wantErr: "tools[0]: must be an object"},
	{name: "function string", body: `{"functions":["f"]}`, wantErr: "functions[0]: must be an object"},
	{name: "response_format string", body: `{"response_format":"json"}`, wantErr: "response_format: must be an object"},

	// One reading: duplicate keys at any depth.
	{name: "duplicate top-level key", body: `{"model":"a","model":"b"}`, wantErr: "model: duplicate key"},
	{name: "duplicate escaped key", body: `{"model":"a","mod\u0065l":"b"}`, wantErr: "model: duplicate key"},
	{name: "duplicate unknown key", body: `{"temperature":1,"temperature":2}`, wantErr: "temperature: duplicate key"},
	{name: "duplicate in a message", body: `{"messages":[{"role":"user","content":"a"},{"role":"user","content":"a","content":"b"}]}`, wantErr: "messages[1].content: duplicate key"},
	{name: "duplicate in a part", body: `{"messages":[{"content":[{"type":"text","text":"a","text":"b"}]}]}`, wantErr: "messages[0].content[0].text: duplicate key"},
	{name: "duplicate deep in a schema", body: `{"tools":[{"type":"function","function":{"parameters":{"properties":{"q":{"description":"a","description":"b"}}}}}]}`, wantErr: "tools[0].function.parameters.properties.q.description: duplicate key"},
	{name: "duplicate in metadata", body: `{"metadata":{"a b":1,"z":0,"a b":2}}`, wantErr: `metadata["a b"]: duplicate key`},
	{name: "duplicate in a large object", body: `{"x":{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k3":10}}`, wantErr: "x.k3: duplicate key"},
	{name: "duplicate after invalid UTF-8", body: "{\"x\":{\"a\xff\":1,\"a\xfe\":2}}", wantErr: "x[\"a\ufffd\"]: duplicate key"},
	{name: "malformed wins over duplicate", body: `{"model":"a","model":"b",}`, wantErr: "request body is not valid JSON: invalid character '}' looking for beginning of object key string (at byte 26)"},

	// One reading: keys that name a field the gateway reads loosely.
	{name: "Messages beside messages", body: `{"messages":[{"role":"user","content":"hi"}],"Messages":[{"role":"user","content":"bad"}]}`, wantErr: `Messages: ambiguous key: some upstreams read it as "messages"`},
	{name: "Model alone", body: `{"Model":"a"}`, wantErr: `Model: ambiguous key: some upstreams read it as "model"`},
	{name: "STREAM", body: `{"STREAM":true}`, wantErr: `STREAM: ambiguous key: some upstreams read it as "stream"`},
	{name: "Kelvin sign", body: `{"max_to\u212aens":5}`, wantErr: "[\"max_to\u212aens\"]: ambiguous key: some upstreams read it as \"max_tokens\""},
	{name: "long s", body: "{\"\u017ftream\":true}", wantErr: `["ſtream"]: ambiguous key: some upstreams read it as "stream"`},
	{name: "dashes", body: `{"max-completion-tokens":5}`, wantErr: `max-completion-tokens: ambiguous key: some upstreams read it as "max_completion_tokens"`},
	{name: "underscores dropped", body: `{"streamoptions":{}}`, wantErr: `streamoptions: ambiguous key: some upstreams read it as "stream_options"`},
	{name: "N", body: `{"N":2}`, wantErr: `N: ambiguous key: some upstreams read it as "n"`},
	{name: "Include_usage", body: `{"stream_options":{"Include_usage":true}}`, wantErr: `stream_options.Include_usage: ambiguous key: some upstreams read it as "include_usage"`},
	{name: "Content", body: `{"messages":[{"role":"user","content":"a"},{"role":"user","Content":"b"}]}`, wantErr: `messages[1].Content: ambiguous key: some upstreams read it as "content"`},
	{name: "ROLE", body: `{"messages":[{"ROLE":"system"}]}`, wantErr: `messages[0].ROLE: ambiguous key: some upstreams read it as "role"`},
	{name: "Tool_Calls", body: `{"messages":[{"Tool_Calls":[]}]}`, wantErr: `messages[0].Tool_Calls: ambiguous key: some upstreams read it as "tool_calls"`},
	{name: "part Text", body: `{"messages":[{"content":[{"type":"text","text":"a","Text":"b"}]}]}`, wantErr: `messages[0].content[0].Text: ambiguous key: some upstreams read it as "text"`},
	{name: "part TYPE", body: `{"messages":[{"content":[{"TYPE":"text"}]}]}`, wantErr: `messages[0].content[0].TYPE: ambiguous key: some upstreams read it as "type"`},
	{name: "tool Function", body: `{"tools":[{"type":"function","Function":{}}]}`, wantErr: `tools[0].Function: ambiguous key: some upstreams read it as "function"`},
	{name: "tool Description", body: `{"tools":[{"type":"function","function":{"name":"f","Description":"x"}}]}`, wantErr: `tools[0].function.Description: ambiguous key: some upstreams read it as "description"`},
	{name: "call Arguments", body: `{"messages":[{"tool_calls":[{"function":{"Arguments":"{}"}}]}]}`, wantErr: `messages[0].tool_calls[0].function.Arguments: ambiguous key: some upstreams read it as "arguments"`},
	{name: "function_call Name", body: `{"messages":[{"function_call":{"Name":"f"}}]}`, wantErr: `messages[0].function_call.Name: ambiguous key: some upstreams read it as "name"`},
	{name: "functions Description", body: `{"functions":[{"name":"f","DESCRIPTION":"x"}]}`, wantErr: `functions[0].DESCRIPTION: ambiguous key: some upstreams read it as "description"`},
	{name: "escaped ambiguous key", body: `{"\u004dodel":"a"}`, wantErr: `Model: ambiguous key: some upstreams read it as "model"`},
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
		name:    "loose variants of an option replaced",
		body:    `{"Temperature":2,"top_p":1,"TOP-P":0.5,"seed":1}`,
		options: map[string]any{"temperature": 0.5, "top_p": 0.9},
		want:    `{"seed":1,"temperature":0.5,"top_p":0.9}`,
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
		checkOneReading(t, body, req)
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

// looseRequest is a request as an upstream written in Go reads it:
// encoding/json matches keys to fields ignoring case.
type looseRequest struct {
	Model    *string
	Stream   *bool
	Messages []struct {
		Role    *string
		Content json.RawMessage
		Name    *string
	}
}

// checkOneReading checks that a body ParseChatRequest accepted reads the
// same to encoding/json matching keys loosely, and has no duplicate keys.
func checkOneReading(t *testing.T, body []byte, req openai.ChatRequest) {
	t.Helper()
	var loose looseRequest
	if err := json.Unmarshal(body, &loose); err != nil {
		t.Fatalf("encoding/json cannot read a body we accepted: %v\n%s", err, body)
	}
	if (loose.Model != nil && *loose.Model != req.Model) || (loose.Stream != nil && *loose.Stream != req.Stream) {
		t.Fatalf("encoding/json reads model %v stream %v; we read %q %v\n%s", loose.Model, loose.Stream, req.Model, req.Stream, body)
	}
	if len(loose.Messages) != len(req.Messages) {
		t.Fatalf("encoding/json reads %d messages, we read %d\n%s", len(loose.Messages), len(req.Messages), body)
	}
	for i, m := range loose.Messages {
		got := req.Messages[i]
		if (m.Role != nil && *m.Role != got.Role) || (m.Name != nil && *m.Name != got.Name) {
			t.Fatalf("messages[%d]: encoding/json reads role %v name %v, we read %q %q", i, m.Role, m.Name, got.Role, got.Name)
		}
		var content string
		if json.Unmarshal(m.Content, &content) == nil && content != got.Content {
			t.Fatalf("messages[%d]: encoding/json reads content %q, we read %q", i, content, got.Content)
		}
	}
	if dup, found, _ := openai.RefDuplicateKey(body); found {
		t.Fatalf("accepted a body with the duplicate key %q: %s", dup, body)
	}
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

// BenchmarkParseChatRequestKeys parses bodies whose metadata object has
// many distinct keys, as a hostile client may send: the duplicate check
// sorts them, so the cost per key grows with their logarithm, not their
// number.
func BenchmarkParseChatRequestKeys(b *testing.B) {
	for _, n := range []int{1 << 10, 1 << 16} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			var sb strings.Builder
			sb.WriteString(`{"model":"m","messages":[{"role":"user","content":"hi"}],"metadata":{`)
			for i := range n {
				if i > 0 {
					sb.WriteByte(',')
				}
				fmt.Fprintf(&sb, `"k%d":0`, i)
			}
			sb.WriteString(`}}`)
			body := []byte(sb.String())
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := openai.ParseChatRequest(body); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/key")
		})
	}
}
