package openai

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestCheckSingleReading(t *testing.T) {
	fields := []string{"model", "max_tokens", "messages"}
	for _, tc := range []struct {
		body, field, msg string // field and msg of the refusal; "" for none
	}{
		{body: `{"model":"m","max_tokens":9,"messages":[{"role":"user","content":"hi"}],"top_k":3}`},
		{body: `{"model":"m","model":"n"}`, field: "model", msg: msgDuplicate},
		{body: `{"messages":[{"role":"user","content":"a","content":"b"}]}`, field: "messages[0].content", msg: msgDuplicate},
		{body: `{"tools":[{"input_schema":{"properties":{"x":1,"\u0078":2}}}]}`, field: "tools[0].input_schema.properties.x", msg: msgDuplicate},
		{body: `{"model":"m","Max-Tokens":9}`, field: "Max-Tokens", msg: "ambiguous key"},
		{body: `{"model":"m","MODEL":"n"}`, field: "MODEL", msg: "ambiguous key"},
		// Loosely named keys below the top level are the schema's own.
		{body: `{"tools":[{"input_schema":{"properties":{"Max-Tokens":{},"max_tokens":{}}}}]}`},
		{body: ``, msg: "body"},
		{body: `[]`, msg: "object"},
		{body: `{"model":`, msg: "JSON"},
	} {
		err := CheckSingleReading([]byte(tc.body), fields...)
		var re *RequestError
		switch {
		case tc.msg == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.body, err)
		case tc.msg != "" && !errors.As(err, &re):
			t.Errorf("%s: got %v, want a *RequestError", tc.body, err)
		case tc.msg != "" && (re.Field != tc.field || !strings.Contains(re.Error(), tc.msg)):
			t.Errorf("%s: got field %q, %q; want field %q with %q", tc.body, re.Field, re.Error(), tc.field, tc.msg)
		}
	}
}

// FuzzCheckSingleReading: a body CheckSingleReading accepts is one JSON
// object in which Go's decoder, like the providers', sees no key twice in
// one object.
func FuzzCheckSingleReading(f *testing.F) {
	for _, s := range jsonCases {
		f.Add(s)
	}
	f.Add(`{"model":"m","max_tokens":9,"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}`)
	f.Fuzz(func(t *testing.T, body string) {
		if CheckSingleReading([]byte(body), "model", "max_tokens") != nil {
			return
		}
		if !json.Valid([]byte(body)) || !strings.HasPrefix(strings.TrimLeft(body, " \t\r\n"), "{") {
			t.Fatalf("accepted %q, which is not a JSON object", body)
		}
		if k, dup := duplicateKey(t, body); dup {
			t.Fatalf("accepted %q, in which key %q appears twice in one object", body, k)
		}
	})
}

// duplicateKey walks body with encoding/json's tokenizer and reports a key
// that one object holds twice, as decoded.
func duplicateKey(t *testing.T, body string) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader([]byte(body)))
	dec.UseNumber()
	type frame struct {
		keys   map[string]bool
		object bool
		key    bool // the next string token of an object is a key
	}
	var stack []frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return "", false
		}
		if err != nil {
			t.Fatalf("%q: %v", body, err)
		}
		top := len(stack) - 1
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				if top >= 0 && stack[top].object {
					stack[top].key = true
				}
				stack = append(stack, frame{keys: map[string]bool{}, object: d == '{', key: d == '{'})
			default:
				stack = stack[:top]
			}
			continue
		}
		if top < 0 || !stack[top].object {
			continue
		}
		if stack[top].key {
			k := tok.(string)
			if stack[top].keys[k] {
				return k, true
			}
			stack[top].keys[k] = true
			stack[top].key = false
			continue
		}
		stack[top].key = true
	}
}
