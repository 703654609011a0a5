package door

import (
	"errors"
	"net/http"

	"github.com/phasegate/phasegate/llm"
	"github.com/phasegate/phasegate/llm/anthropic"
	"github.com/phasegate/phasegate/llm/openai"
	"github.com/phasegate/phasegate/phases"
)

// reading is the cached neutral reading of a request body.
type reading struct {
	body  []byte
	proto llm.Protocol
	req   *llm.Request
}

var readingKey = phases.NewKey[*reading]("llm.request")

var (
	messagesFields  = anthropic.RequestFields()
	responsesFields = openai.ResponsesFields()
)

// Read returns the neutral reading of r's body in the protocol of its
// door (see Of), read once per request and shared by every plugin that
// asks: a later call returns the same *llm.Request unless a hook has
// replaced the body since. It refuses, with an exit that the request's
// renderer shapes for its door, a body over the route's limit (413), one
// that cannot be read (400), and one without a single reading or that
// the door's codec cannot decode (400, naming the field): duplicate keys
// at any depth and top-level keys that name a read field only loosely
// ("Model", "max-tokens") are refused on every door, as
// openai.ParseChatRequest refuses them for Chat. The request must not be
// modified.
func Read(r *phases.Request) (*llm.Request, llm.Protocol, phases.Exit) {
	d := Of(r)
	body, err := r.Body()
	switch {
	case errors.Is(err, phases.ErrBodyTooLarge):
		return nil, d.Protocol, llm.Refuse(http.StatusRequestEntityTooLarge, llm.MsgTooLarge)
	case err != nil:
		return nil, d.Protocol, llm.Refuse(http.StatusBadRequest, llm.MsgUnreadable)
	}
	if c, ok := readingKey.Get(r.Values); ok && c != nil && c.proto == d.Protocol && sameBytes(c.body, body) {
		return c.req, c.proto, phases.Exit{}
	}
	req, err := Decode(d.Protocol, body)
	if err != nil {
		return nil, d.Protocol, refusal(err)
	}
	readingKey.Set(r.Values, &reading{body: body, proto: d.Protocol, req: req})
	return req, d.Protocol, phases.Exit{}
}

// Decode reads body as a request of protocol p, after checking that it has
// a single reading (see Read).
func Decode(p llm.Protocol, body []byte) (*llm.Request, error) {
	var err error
	switch p {
	case llm.AnthropicMessages:
		err = openai.CheckSingleReading(body, messagesFields...)
	case llm.OpenAIResponses:
		err = openai.CheckSingleReading(body, responsesFields...)
	default:
		_, err = openai.ParseChatRequest(body)
	}
	if err != nil {
		return nil, err
	}
	return Codec(p).DecodeRequest(body)
}

// refusal is the exit for a body the door cannot read.
func refusal(err error) phases.Exit {
	var le *llm.Error
	if errors.As(err, &le) && le.Status != 0 {
		return phases.Error(le.Status, llm.TypeInvalidRequest, le.Message)
	}
	return llm.Refuse(http.StatusBadRequest, err.Error())
}

// sameBytes reports whether a and b are the same slice of memory.
func sameBytes(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	return len(a) == 0 || &a[0] == &b[0]
}
