package openai

// CheckSingleReading reports whether body has a single reading for the
// decoders of every protocol, as ParseChatRequest does for Chat: it
// returns a *RequestError if body is empty or not a JSON object, if a key
// appears twice in one object at any depth, or if a top-level key differs
// from one of fields only in case, dashes or underscores ("Max-Tokens" for
// "max_tokens"). Field types are left to the protocol's decoder.
func CheckSingleReading(body []byte, fields ...string) error {
	if len(body) > maxCheckedBody {
		return &RequestError{Msg: msgTooLarge}
	}
	it, rerr := checkObject(body)
	if rerr != nil {
		return rerr
	}
	fs := newFieldSet(fields...)
	kc := newKeyCheck(body)
	defer kc.release()
	it.Check(kc)
	var ambiguous *RequestError
	for {
		k, _, ok := it.Next()
		if !ok {
			break
		}
		if i, amb := fs.lookup(k); amb && ambiguous == nil {
			ambiguous = ambiguousKey(nil, k, fs.names[i])
		}
	}
	switch {
	case it.Err() != nil:
		return badJSON(body)
	case kc.dup != nil:
		return &RequestError{Field: string(kc.dup), Msg: msgDuplicate}
	case ambiguous != nil:
		return ambiguous
	}
	return nil
}

// ResponsesFields lists the top-level fields a Responses request body is
// read by, for CheckSingleReading.
func ResponsesFields() []string {
	names := make([]string, len(responsesFields))
	for i := range responsesFields {
		names[i] = responsesFields[i].Name
	}
	return names
}

// SchemaText returns every string of the JSON value v (keys and values),
// unescaped and joined with "\n": how guards read a schema, as they read
// Chat's tool definitions (ChatRequest.Definitions).
func SchemaText(v []byte) string { return stringsText(v) }
