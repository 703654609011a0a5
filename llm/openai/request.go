// The gateway's partial reading of Chat Completions bodies: the request
// fields it routes and moderates on, rewriting a request body while
// preserving everything it does not understand, reading usage and generated
// text from responses and stream chunks, and building refusal and error
// bodies.
//
// Parsing is deliberately partial. Bodies are walked by an allocation-free
// scanner that validates them exactly as encoding/json's Valid does, and
// only the fields that are needed are decoded. A request body must have a
// single reading, so that what the gateway inspects is what any upstream
// acts on: [ParseChatRequest] rejects duplicate keys at any depth, and keys
// that differ from a field it reads only in case, dashes or underscores
// (which Go's encoding/json and encoding/json/v2 may take for that field).
// In responses, which the gateway does not reject, keys match exactly and
// the last of duplicate keys wins, as in encoding/json and Python's json.

package openai

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/phasegate/phasegate/llm/internal/wire"
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
	// Definitions is the text of what the model is given besides the
	// messages: each entry of "tools" and of the legacy "functions", then
	// "response_format". The text of one is every string in it, keys and
	// values (names, descriptions, parameter schemas…), decoded and joined
	// with "\n".
	Definitions []string
}

// Message is one entry of a request's "messages".
type Message struct {
	// Role is the "role" field, or "" if it is absent or null.
	Role string
	// Content is the textual content of the message: the "content" string,
	// or the "text" and "refusal" strings of the array's content parts
	// joined with "\n" (parts without text, such as images, add nothing),
	// or "" if the content is absent or null.
	Content string
	// Name is the "name" field, or "".
	Name string
	// Refusal is the "refusal" field (of an assistant message), or "".
	Refusal string
	// Calls is the text of each of "tool_calls" and of the legacy
	// "function_call": every string in one, keys and values (the function's
	// name, its arguments…), joined with "\n".
	Calls []string
}

// AppendTexts appends to dst every non-empty text of m that reaches the
// model: Content, Name, Refusal and each of Calls.
func (m *Message) AppendTexts(dst []string) []string {
	for _, s := range [...]string{m.Content, m.Name, m.Refusal} {
		if s != "" {
			dst = append(dst, s)
		}
	}
	for _, s := range m.Calls {
		if s != "" {
			dst = append(dst, s)
		}
	}
	return dst
}

// RequestError describes an invalid request body. Its Error text is meant
// for the message of a 400 response.
type RequestError struct {
	// Field is the JSON path of the offending field, such as "messages" or
	// "messages[2].content", or "" if the error concerns the whole body.
	// A key that is not a plain identifier shows quoted in brackets:
	// metadata["a b"].
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
	msgTooLarge  = "request body is too large"
	msgDuplicate = "duplicate key"
)

// checkObject returns a walker over the members of body, or a
// *RequestError if body is empty or is valid JSON but not an object. A
// malformed body is only detected by the walk (see badJSON).
func checkObject(body []byte) (wire.Object, *RequestError) {
	if len(bytes.TrimLeft(body, " \t\n\r")) == 0 {
		return wire.Object{}, &RequestError{Msg: msgEmpty}
	}
	it, ok := wire.ParseObject(body)
	if !ok {
		if wire.Valid(body) {
			return wire.Object{}, &RequestError{Msg: msgNotObject}
		}
		return wire.Object{}, badJSON(body)
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

// The fields the gateway reads, by kind of object. requestFields also
// holds "n", "max_tokens" and "max_completion_tokens", which
// ParseChatRequest does not decode: they set how many choices and how much
// text come back to be moderated, so they too must have one reading.
var (
	requestFields = newFieldSet("model", "stream", "stream_options", "messages",
		"tools", "functions", "response_format", "n", "max_tokens", "max_completion_tokens")
	streamOptionsFields = newFieldSet("include_usage")
	messageFields       = newFieldSet("role", "content", "name", "refusal", "tool_calls", "function_call")
	partFields          = newFieldSet("type", "text", "refusal")
	// toolFields are those of an entry of "tools" and of "tool_calls".
	toolFields = newFieldSet("type", "function")
	// functionFields are those of a function: defined (in "tools" or
	// "functions") or called (in "tool_calls" or "function_call").
	functionFields = newFieldSet("name", "description", "parameters", "arguments")
)

// Indices in requestFields.
const (
	fModel = iota
	fStream
	fStreamOptions
	fMessages
	fTools
	fFunctions
	fResponseFormat
	nRequestFields = 10
)

// Indices in messageFields and partFields.
const (
	fRole = iota
	fContent
	fName
	fRefusal
	fToolCalls
	fFunctionCall

	fType = 0
	fText = 1
	fPart = 2 // "refusal" of a content part
)

// ParseChatRequest decodes the fields of ChatRequest from a chat-completions
// request body. It returns a *RequestError if the body is empty, is not a
// valid JSON object, or does not have a single reading: a key appears twice
// in one object (at any depth), or a key of an object whose fields the
// gateway reads differs from one of them only in case, dashes or
// underscores ("Messages", "max-tokens"). It also fails if a decoded field
// has the wrong type: "model" must be a string, "stream" a boolean,
// "stream_options" an object whose "include_usage" is a boolean, "messages"
// an array of objects whose "role", "name" and "refusal" are strings, whose
// "content" is a string or an array of content parts (objects with a string
// "type", a string "text" for type "text" and a string "refusal" for type
// "refusal"), whose "tool_calls" is an array of objects and whose
// "function_call" is an object; "tools" and "functions" must be arrays of
// objects and "response_format" an object. A null field counts as absent.
// Absent fields, including "model" and "messages", are not errors: the
// gateway may fill them in.
func ParseChatRequest(body []byte) (ChatRequest, error) {
	var req ChatRequest
	if len(body) > maxCheckedBody {
		return req, &RequestError{Msg: msgTooLarge}
	}
	it, rerr := checkObject(body)
	if rerr != nil {
		return req, rerr
	}
	kc := newKeyCheck(body)
	defer kc.release()
	it.Check(kc)
	var vals [nRequestFields][]byte
	var ambiguous *RequestError
	for {
		k, v, ok := it.Next()
		if !ok {
			break
		}
		i, amb := requestFields.lookup(k)
		switch {
		case amb:
			if ambiguous == nil {
				ambiguous = ambiguousKey(nil, k, requestFields.names[i])
			}
		case i >= 0:
			vals[i] = v
		}
	}
	if it.Err() != nil {
		return req, badJSON(body)
	}
	if kc.dup != nil {
		return req, &RequestError{Field: string(kc.dup), Msg: msgDuplicate}
	}
	if ambiguous != nil {
		return req, ambiguous
	}

	if model := vals[fModel]; model != nil && !isNull(model) {
		s, ok := wire.StringOf(model)
		if !ok {
			return req, &RequestError{Field: "model", Msg: "must be a string"}
		}
		req.Model = s
	}
	var err error
	if req.Stream, err = decodeBool(vals[fStream], "stream"); err != nil {
		return req, err
	}
	if so := vals[fStreamOptions]; so != nil && !isNull(so) {
		if !isObject(so) {
			return req, &RequestError{Field: "stream_options", Msg: "must be an object"}
		}
		var usage []byte
		oit, _ := wire.ObjectOf(so)
		for {
			k, v, ok := oit.Next()
			if !ok {
				break
			}
			if i, amb := streamOptionsFields.lookup(k); amb {
				return req, ambiguousKey([]byte("stream_options"), k, streamOptionsFields.names[i])
			} else if i == 0 {
				usage = v
			}
		}
		if req.IncludeUsage, err = decodeBool(usage, "stream_options.include_usage"); err != nil {
			return req, err
		}
	}
	if messages := vals[fMessages]; messages != nil && !isNull(messages) {
		if req.Messages, err = decodeMessages(messages); err != nil {
			return req, err
		}
	}
	tools, functions := path{key: "tools"}, path{key: "functions"}
	if req.Definitions, err = appendEntryTexts(nil, vals[fTools], &tools, true); err != nil {
		return req, err
	}
	if req.Definitions, err = appendEntryTexts(req.Definitions, vals[fFunctions], &functions, false); err != nil {
		return req, err
	}
	if rf := vals[fResponseFormat]; rf != nil && !isNull(rf) {
		if !isObject(rf) {
			return req, &RequestError{Field: "response_format", Msg: "must be an object"}
		}
		req.Definitions = append(req.Definitions, stringsText(rf))
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

// path is a JSON path under construction: a segment and its parent. It
// lives on the stack and is rendered only for errors.
type path struct {
	up  *path
	key string // "" for an array index
	idx int
}

func (p *path) child(key string) path { return path{up: p, key: key} }
func (p *path) index(i int) path      { return path{up: p, idx: i} }

func (p *path) render() []byte {
	if p == nil {
		return nil
	}
	b := p.up.render()
	if p.key == "" {
		return appendPathIndex(b, p.idx)
	}
	return appendPathKey(b, []byte(p.key))
}

func (p *path) err(msg string) *RequestError {
	return &RequestError{Field: string(p.render()), Msg: msg}
}

// members returns the raw values of the members of the raw object obj
// that fields names, checking that no key names one of them loosely.
func members(vals [][]byte, obj []byte, fields *fieldSet, at *path) error {
	it, _ := wire.ObjectOf(obj)
	for {
		k, v, ok := it.Next()
		if !ok {
			return nil
		}
		i, amb := fields.lookup(k)
		switch {
		case amb:
			return ambiguousKey(at.render(), k, fields.names[i])
		case i >= 0:
			vals[i] = v
		}
	}
}

func decodeMessages(raw []byte) ([]Message, error) {
	if !isArray(raw) {
		return nil, &RequestError{Field: "messages", Msg: "must be an array"}
	}
	msgs := []Message{}
	it, _ := wire.ArrayOf(raw)
	root := path{key: "messages"}
	for i := 0; ; i++ {
		v, ok := it.Next()
		if !ok {
			return msgs, nil
		}
		at := root.index(i)
		m, err := decodeMessage(v, &at)
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, m)
	}
}

func decodeMessage(raw []byte, at *path) (Message, error) {
	var m Message
	if !isObject(raw) {
		return m, at.err("must be an object")
	}
	var vals [6][]byte
	if err := members(vals[:], raw, &messageFields, at); err != nil {
		return m, err
	}
	var ok bool
	for _, f := range [...]struct {
		i   int
		dst *string
	}{{fRole, &m.Role}, {fName, &m.Name}, {fRefusal, &m.Refusal}} {
		if v := vals[f.i]; v != nil && !isNull(v) {
			if *f.dst, ok = wire.StringOf(v); !ok {
				fp := at.child(messageFields.names[f.i])
				return m, fp.err("must be a string")
			}
		}
	}
	switch content := vals[fContent]; {
	case content == nil || isNull(content):
	case isString(content):
		m.Content, _ = wire.StringOf(content)
	case isArray(content):
		cp := at.child("content")
		s, err := decodeParts(content, &cp)
		if err != nil {
			return m, err
		}
		m.Content = s
	default:
		cp := at.child("content")
		return m, cp.err("must be a string or an array of content parts")
	}
	cp := at.child("tool_calls")
	var err error
	if m.Calls, err = appendEntryTexts(nil, vals[fToolCalls], &cp, true); err != nil {
		return m, err
	}
	if fc := vals[fFunctionCall]; fc != nil && !isNull(fc) {
		fp := at.child("function_call")
		if err := checkFunction(fc, &fp); err != nil {
			return m, err
		}
		m.Calls = append(m.Calls, stringsText(fc))
	}
	return m, nil
}

// decodeParts joins the text of the content parts with "\n".
func decodeParts(raw []byte, at *path) (string, error) {
	var text []byte
	nText := 0
	it, _ := wire.ArrayOf(raw)
	for j := 0; ; j++ {
		part, ok := it.Next()
		if !ok {
			break
		}
		pat := at.index(j)
		if !isObject(part) {
			return "", pat.err("must be an object")
		}
		var vals [3][]byte
		if err := members(vals[:], part, &partFields, &pat); err != nil {
			return "", err
		}
		typ := vals[fType]
		if typ != nil && !isNull(typ) && !isString(typ) {
			fp := pat.child("type")
			return "", fp.err("must be a string")
		}
		// A part of type "text" must have a text, one of type "refusal" a
		// refusal; the text of any other part is read too, in case an
		// upstream reads it.
		for _, f := range [...]int{fText, fPart} {
			v := vals[f]
			if !isString(v) {
				if wire.KeyIs(typ, partFields.names[f]) { // typ is a raw string here: compare like a key
					fp := pat.child(partFields.names[f])
					return "", fp.err("must be a string")
				}
				continue
			}
			if nText > 0 {
				text = append(text, '\n')
			}
			text, _ = wire.AppendUnquote(text, v)
			nText++
		}
	}
	return string(text), nil
}

// appendEntryTexts appends to dst the text of each entry of the raw array
// at (tools, functions, a message's tool_calls), checking each entry's keys
// as a function, or as one that holds a function (holder). Absent and null
// are no entries.
func appendEntryTexts(dst []string, raw []byte, at *path, holder bool) ([]string, error) {
	if raw == nil || isNull(raw) {
		return dst, nil
	}
	if !isArray(raw) {
		return dst, at.err("must be an array")
	}
	it, _ := wire.ArrayOf(raw)
	for j := 0; ; j++ {
		v, ok := it.Next()
		if !ok {
			return dst, nil
		}
		// Direct calls, not a func value: at and jp stay on the stack.
		jp := at.index(j)
		var err error
		if holder {
			err = checkFunctionHolder(v, &jp)
		} else {
			err = checkFunction(v, &jp)
		}
		if err != nil {
			return dst, err
		}
		dst = append(dst, stringsText(v))
	}
}

// checkFunctionHolder checks the keys of an entry of "tools" or
// "tool_calls", and of its "function".
func checkFunctionHolder(raw []byte, at *path) error {
	if !isObject(raw) {
		return at.err("must be an object")
	}
	var vals [2][]byte
	if err := members(vals[:], raw, &toolFields, at); err != nil {
		return err
	}
	if fn := vals[1]; isObject(fn) {
		fp := at.child("function")
		return checkFunction(fn, &fp)
	}
	return nil
}

// checkFunction checks the keys of a function, defined or called.
func checkFunction(raw []byte, at *path) error {
	if !isObject(raw) {
		return at.err("must be an object")
	}
	var vals [4][]byte
	return members(vals[:], raw, &functionFields, at)
}

// stringsText returns every string in the valid raw value v, keys and
// values, decoded and joined with "\n". Its cost is linear in len(v),
// however deep v is.
func stringsText(v []byte) string {
	var out []byte
	for i := 0; i < len(v); {
		if v[i] != '"' {
			i++
			continue
		}
		end := wire.StringEnd(v, i)
		if len(out) > 0 {
			out = append(out, '\n')
		}
		out, _ = wire.AppendUnquote(out, v[i:end])
		i = end
	}
	return string(out)
}

// Rewrite returns a new request body derived from body, which it does not
// modify. Each key of options is set at the top level to the JSON encoding
// of its value (encoding/json), replacing the client's value: options take
// precedence, for example to force "model". If forceIncludeUsage is set and
// the resulting request streams ("stream": true), "stream_options" gets
// "include_usage": true, keeping its other keys, unless the client set
// "stream_options.include_usage" explicitly (to a non-null value) or sent a
// "stream_options" that is not an object (which is left for the upstream
// to reject). A client's member whose key equals an option's loosely (in
// case, dashes or underscores, as for [ParseChatRequest]) is replaced too,
// so that no upstream reads it in place of the option. All other fields are
// preserved byte for byte; the client's remaining members keep their order
// and come first, followed by the options in key order.
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
		key    string
		val    []byte
		folded [maxFolded]byte
		nf     int // len of folded, or -1 when no other key equals key loosely
	}
	opts := make([]option, 0, len(options))
	extra := 0
	var lens uint64 // the lengths of the options' folded keys, as in fieldSet
	for k, v := range options {
		val, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("openai: encoding option %q: %w", k, err)
		}
		o := option{key: k, val: val, nf: -1}
		var qb [2 * maxFolded]byte
		if f, ok := foldKey(o.folded[:0], wire.AppendString(qb[:0], k)); ok {
			o.nf = len(f)
			lens |= 1 << o.nf
		}
		opts = append(opts, o)
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
		k, v, ok := it.Next()
		if !ok {
			break
		}
		switch {
		case wire.KeyIs(k, "stream"):
			stream = v
		case wire.KeyIs(k, "stream_options"):
			streamOptions = v
		}
	}
	if it.Err() != nil {
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
	it, _ = wire.ParseObject(body)
	for {
		k, v, ok := it.Next()
		if !ok {
			break
		}
		if len(options) > 0 {
			var name []byte
			name, keyBuf = rawKeyName(k, keyBuf)
			if _, ok := options[string(name)]; ok {
				continue
			}
			if mayFold(k, lens) {
				var buf [maxFolded]byte
				if f, ok := foldKey(buf[:0], k); ok && slices.ContainsFunc(opts, func(o option) bool {
					return o.nf >= 0 && string(o.folded[:o.nf]) == string(f)
				}) {
					continue
				}
			}
		}
		if mergedStreamOptions != nil && wire.KeyIs(k, "stream_options") {
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
		out = wire.AppendString(out, o.key)
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
	buf, _ = wire.AppendUnquote(buf[:0], k)
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
	it, _ := wire.ObjectOf(streamOptions)
	for {
		k, v, ok := it.Next()
		if !ok {
			break
		}
		if wire.KeyIs(k, "include_usage") {
			continue // a null include_usage
		}
		out = append(out, ',')
		out = append(out, k...)
		out = append(out, ':')
		out = append(out, v...)
	}
	return append(out, '}')
}
