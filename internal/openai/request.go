// Package openai implements the parts of the OpenAI chat-completions wire
// format that a gateway needs: reading the few request fields it routes and
// moderates on, rewriting a request body while preserving everything it does
// not understand, reading usage and generated text from responses and stream
// chunks, and building refusal and error bodies.
//
// Parsing is deliberately partial. Bodies are walked by an allocation-free
// scanner that validates them exactly as encoding/json's Valid does, and
// only the fields that are needed are decoded. Object keys match
// case-sensitively and, as in encoding/json and in Python's json module used
// by the reference API server, the last of duplicate keys wins, so the
// gateway sees the same values as the upstream will.
package openai

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// ChatRequest holds the fields of a chat-completions request body that the
// gateway uses.
type ChatRequest struct {
	// Model is the "model" field, or "" if it is absent or null.
	Model string
	// Stream is the "stream" field.
	Stream bool
	// IncludeUsage is the "stream_options.include_usage" field.
	IncludeUsage bool
	// Messages is the "messages" field, or nil if it is absent or null.
	Messages []Message
}

// Message is one entry of a request's "messages".
type Message struct {
	// Role is the "role" field, or "" if it is absent or null.
	Role string
	// Content is the textual content of the message: the "content" string,
	// or the "text" of the array's parts of type "text" joined with "\n"
	// (parts of other types, such as images, are ignored), or "" if the
	// content is absent or null.
	Content string
}

// RequestError describes an invalid request body. Its Error text is meant
// for the message of a 400 response.
type RequestError struct {
	// Field is the JSON path of the offending field, such as "messages" or
	// "messages[2].content", or "" if the error concerns the whole body.
	Field string
	// Msg describes the problem.
	Msg string
}

// Error returns "Field: Msg", or Msg when Field is empty.
func (e *RequestError) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

const (
	msgEmpty     = "request body is empty"
	msgNotObject = "request body must be a JSON object"
)

// checkObject returns a walker over the members of body, or a
// *RequestError if body is empty or is valid JSON but not an object. A
// malformed body is only detected by the walk (see badJSON).
func checkObject(body []byte) (objIter, *RequestError) {
	if skipSpace(body, 0) == len(body) {
		return objIter{}, &RequestError{Msg: msgEmpty}
	}
	it, ok := topObject(body)
	if !ok {
		if validJSON(body) {
			return objIter{}, &RequestError{Msg: msgNotObject}
		}
		return objIter{}, badJSON(body)
	}
	return it, nil
}

// badJSON returns the error for a malformed body, reusing encoding/json's
// description of the problem.
func badJSON(body []byte) *RequestError {
	const msg = "request body is not valid JSON"
	var raw json.RawMessage
	var se *json.SyntaxError
	if err := json.Unmarshal(body, &raw); errors.As(err, &se) {
		return &RequestError{Msg: fmt.Sprintf("%s: %v (at byte %d)", msg, se, se.Offset)}
	}
	return &RequestError{Msg: msg}
}

// ParseChatRequest decodes the fields of ChatRequest from a chat-completions
// request body. It returns a *RequestError if the body is empty, is not a
// valid JSON object, or if one of the decoded fields has the wrong type:
// "model" must be a string, "stream" a boolean, "stream_options" an object
// whose "include_usage" is a boolean, "messages" an array of objects whose
// "role" is a string and whose "content" is a string or an array of content
// parts (objects with a string "type", and a string "text" for type
// "text"). A null field counts as absent. Absent fields, including "model"
// and "messages", are not errors: the gateway may fill them in.
func ParseChatRequest(body []byte) (ChatRequest, error) {
	var req ChatRequest
	it, rerr := checkObject(body)
	if rerr != nil {
		return req, rerr
	}
	var model, stream, streamOptions, messages []byte
	for {
		k, v, ok := it.next()
		if !ok {
			break
		}
		switch {
		case keyIs(k, "model"):
			model = v
		case keyIs(k, "stream"):
			stream = v
		case keyIs(k, "stream_options"):
			streamOptions = v
		case keyIs(k, "messages"):
			messages = v
		}
	}
	if !topEnd(&it) {
		return req, badJSON(body)
	}

	if model != nil && !isNull(model) {
		s, ok := decodeString(model)
		if !ok {
			return req, &RequestError{Field: "model", Msg: "must be a string"}
		}
		req.Model = s
	}
	var err error
	if req.Stream, err = decodeBool(stream, "stream"); err != nil {
		return req, err
	}
	if streamOptions != nil && !isNull(streamOptions) {
		if !isObject(streamOptions) {
			return req, &RequestError{Field: "stream_options", Msg: "must be an object"}
		}
		v := member(streamOptions, "include_usage")
		if req.IncludeUsage, err = decodeBool(v, "stream_options.include_usage"); err != nil {
			return req, err
		}
	}
	if messages != nil && !isNull(messages) {
		if req.Messages, err = decodeMessages(messages); err != nil {
			return req, err
		}
	}
	return req, nil
}

// decodeBool decodes a raw boolean field, treating absent and null as false.
func decodeBool(v []byte, field string) (bool, error) {
	switch string(v) {
	case "", "null", "false":
		return false, nil
	case "true":
		return true, nil
	}
	return false, &RequestError{Field: field, Msg: "must be a boolean"}
}

func decodeMessages(raw []byte) ([]Message, error) {
	if !isArray(raw) {
		return nil, &RequestError{Field: "messages", Msg: "must be an array"}
	}
	msgs := []Message{}
	it := newArrIter(raw, 0, 0)
	for i := 0; ; i++ {
		v, ok := it.next()
		if !ok {
			return msgs, nil
		}
		m, err := decodeMessage(v, i)
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, m)
	}
}

func decodeMessage(raw []byte, i int) (Message, error) {
	var m Message
	field := func(name string) string {
		return "messages[" + strconv.Itoa(i) + "]" + name
	}
	if !isObject(raw) {
		return m, &RequestError{Field: field(""), Msg: "must be an object"}
	}
	var role, content []byte
	it := newObjIter(raw, 0, 0)
	for {
		k, v, ok := it.next()
		if !ok {
			break
		}
		switch {
		case keyIs(k, "role"):
			role = v
		case keyIs(k, "content"):
			content = v
		}
	}
	if role != nil && !isNull(role) {
		s, ok := decodeString(role)
		if !ok {
			return m, &RequestError{Field: field(".role"), Msg: "must be a string"}
		}
		m.Role = s
	}
	switch {
	case content == nil || isNull(content):
	case isString(content):
		m.Content, _ = decodeString(content)
	case isArray(content):
		s, err := decodeParts(content, field(".content"))
		if err != nil {
			return m, err
		}
		m.Content = s
	default:
		return m, &RequestError{Field: field(".content"), Msg: "must be a string or an array of content parts"}
	}
	return m, nil
}

// decodeParts joins the text of the content parts of type "text" with "\n".
func decodeParts(raw []byte, field string) (string, error) {
	var text []byte
	nText := 0
	it := newArrIter(raw, 0, 0)
	for j := 0; ; j++ {
		part, ok := it.next()
		if !ok {
			break
		}
		pfield := func(name string) string {
			return field + "[" + strconv.Itoa(j) + "]" + name
		}
		if !isObject(part) {
			return "", &RequestError{Field: pfield(""), Msg: "must be an object"}
		}
		var typ, txt []byte
		pit := newObjIter(part, 0, 0)
		for {
			k, v, ok := pit.next()
			if !ok {
				break
			}
			switch {
			case keyIs(k, "type"):
				typ = v
			case keyIs(k, "text"):
				txt = v
			}
		}
		if typ != nil && !isNull(typ) && !isString(typ) {
			return "", &RequestError{Field: pfield(".type"), Msg: "must be a string"}
		}
		if !keyIs(typ, "text") { // typ is a raw string here: compare like a key
			continue
		}
		if !isString(txt) {
			return "", &RequestError{Field: pfield(".text"), Msg: "must be a string"}
		}
		if nText > 0 {
			text = append(text, '\n')
		}
		text, _ = appendUnquote(text, txt)
		nText++
	}
	return string(text), nil
}

// Rewrite returns a new request body derived from body, which it does not
// modify. Each key of options is set at the top level to the JSON encoding
// of its value (encoding/json), replacing the client's value: options take
// precedence, for example to force "model". If forceIncludeUsage is set and
// the resulting request streams ("stream": true), "stream_options" gets
// "include_usage": true, keeping its other keys, unless the client set
// "stream_options.include_usage" explicitly (to a non-null value) or sent a
// "stream_options" that is not an object (which is left for the upstream
// to reject). All other fields are preserved byte for byte; the client's
// remaining members keep their order and come first, followed by the
// options in key order.
//
// Rewrite fails with a *RequestError under the same conditions as
// [ParseChatRequest] for the body as a whole (empty, malformed, not an
// object); it does not check field types. It fails with another error if an
// option value cannot be encoded.
func Rewrite(body []byte, options map[string]any, forceIncludeUsage bool) ([]byte, error) {
	it, rerr := checkObject(body)
	if rerr != nil {
		return nil, rerr
	}

	type option struct {
		key string
		val []byte
	}
	opts := make([]option, 0, len(options))
	extra := 0
	for k, v := range options {
		val, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("openai: encoding option %q: %w", k, err)
		}
		opts = append(opts, option{k, val})
		extra += len(k) + len(val) + 4
	}
	slices.SortFunc(opts, func(a, b option) int {
		switch {
		case a.key < b.key:
			return -1
		case a.key > b.key:
			return 1
		}
		return 0
	})

	// First pass: validate, and find the effective stream settings.
	var stream, streamOptions []byte
	var keyBuf []byte
	for {
		k, v, ok := it.next()
		if !ok {
			break
		}
		switch {
		case keyIs(k, "stream"):
			stream = v
		case keyIs(k, "stream_options"):
			streamOptions = v
		}
	}
	if !topEnd(&it) {
		return nil, badJSON(body)
	}
	for _, o := range opts {
		switch o.key {
		case "stream":
			stream = o.val
		case "stream_options":
			streamOptions = o.val
		}
	}
	var mergedStreamOptions []byte
	if forceIncludeUsage && string(stream) == "true" {
		mergedStreamOptions = forceUsage(streamOptions)
	}

	// Second pass: copy the members that are kept.
	out := make([]byte, 0, len(body)+extra+len(mergedStreamOptions)+24)
	out = append(out, '{')
	it, _ = topObject(body)
	for {
		k, v, ok := it.next()
		if !ok {
			break
		}
		if len(options) > 0 {
			var name []byte
			name, keyBuf = rawKeyName(k, keyBuf)
			if _, ok := options[string(name)]; ok {
				continue
			}
		}
		if mergedStreamOptions != nil && keyIs(k, "stream_options") {
			continue
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(out, k...)
		out = append(out, ':')
		out = append(out, v...)
	}
	for _, o := range opts {
		if mergedStreamOptions != nil && o.key == "stream_options" {
			continue
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = appendQuoted(out, o.key)
		out = append(out, ':')
		out = append(out, o.val...)
	}
	if mergedStreamOptions != nil {
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(out, `"stream_options":`...)
		out = append(out, mergedStreamOptions...)
	}
	return append(out, '}'), nil
}

// rawKeyName returns the decoded name of a raw key, using buf as scratch
// space when the key has escapes.
func rawKeyName(k, buf []byte) (name, newBuf []byte) {
	inner := k[1 : len(k)-1]
	if isPlainASCII(inner) {
		return inner, buf
	}
	buf, _ = appendUnquote(buf[:0], k)
	return buf, buf
}

// isPlainASCII reports whether b has no escapes and no non-ASCII bytes, so
// that it decodes to itself.
func isPlainASCII(b []byte) bool {
	for _, c := range b {
		if c == '\\' || c >= 0x80 {
			return false
		}
	}
	return true
}

// forceUsage returns the stream_options object to send so that usage is
// included, or nil if streamOptions must be left alone: it already sets
// include_usage, or it is neither absent, null nor an object.
func forceUsage(streamOptions []byte) []byte {
	const include = `{"include_usage":true`
	switch {
	case streamOptions == nil || isNull(streamOptions):
		return []byte(include + "}")
	case !isObject(streamOptions):
		return nil
	}
	if v := member(streamOptions, "include_usage"); v != nil && !isNull(v) {
		return nil
	}
	out := make([]byte, 0, len(streamOptions)+len(include))
	out = append(out, include...)
	it := newObjIter(streamOptions, 0, 0)
	for {
		k, v, ok := it.next()
		if !ok {
			break
		}
		if keyIs(k, "include_usage") {
			continue // a null include_usage
		}
		out = append(out, ',')
		out = append(out, k...)
		out = append(out, ':')
		out = append(out, v...)
	}
	return append(out, '}')
}
