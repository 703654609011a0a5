package door

import (
	"bytes"
	"net/http"
	"strconv"

	"github.com/phasegate/phasegate/llm"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/sse"
)

// TypeRefusal is the error type of an exit that refuses a reply (content
// moderation): once a stream's headers are sent, a Renderer ends the
// stream normally with stop reason refusal and the exit's message as the
// last text, instead of as an error.
const TypeRefusal = "refusal"

// Renderer is the phases.Renderer of one request on a Messages or
// Responses door: error bodies in the protocol's shape and, for a stream
// cut after its headers, the protocol's own ending (Messages:
// message_delta and message_stop, or an error event; Responses:
// response.incomplete or response.failed). It knows the stream's state
// through the translator it follows (see Follow). A Renderer serves one
// request; it is not safe for concurrent use.
type Renderer struct {
	codec  llm.Codec
	stream *llm.StreamTranslator

	// The last error rendered, to tell EndStream what its body means.
	last         []byte
	lastStatus   int
	lastTyp, msg string

	// seq is the sequence number of the last Responses event the client
	// was sent (see Sent), when seqKnown.
	seq      int64
	seqKnown bool

	// pending completes the group of events the chunk in the body filters
	// belongs to (see Pending).
	pending []byte
}

// seqKey precedes an event's sequence number in Responses' events.
var seqKey = []byte(`"sequence_number":`)

// Sent notes the data of an event the client was sent, as the stream
// followed (see Follow) has. On the Responses door it keeps the event's
// sequence number: an exit between two of the events one neutral event
// becomes (response.created and response.in_progress, say) leaves the
// followed stream one event ahead of the client, and EndStream numbers
// its ending from what the client got.
func (r *Renderer) Sent(data []byte) {
	if r.codec.Protocol() != llm.OpenAIResponses {
		return
	}
	if n, ok := seqOf(data); ok {
		r.seq, r.seqKnown = n, true
	}
}

// seqOf reads the first sequence number in data.
func seqOf(data []byte) (int64, bool) {
	i := bytes.Index(data, seqKey)
	if i < 0 {
		return 0, false
	}
	digits := data[i+len(seqKey):]
	n, j := int64(0), 0
	for ; j < len(digits) && digits[j] >= '0' && digits[j] <= '9'; j++ {
		n = n*10 + int64(digits[j]-'0')
	}
	return n, j > 0
}

// renumber rewrites the sequence numbers of the events in out to count
// on from next.
func renumber(out []byte, next int64) []byte {
	var b []byte
	for {
		i := bytes.Index(out, seqKey)
		if i < 0 {
			return append(b, out...)
		}
		i += len(seqKey)
		j := i
		for j < len(out) && out[j] >= '0' && out[j] <= '9' {
			j++
		}
		b = append(b, out[:i]...)
		b = strconv.AppendInt(b, next, 10)
		next++
		out = out[j:]
	}
}

// Pending tells the renderer, for the chunk now in the body filters, the
// events from it to the end of its group when it does not begin one, or
// nil. One event of the followed stream may be several of the client's
// (Responses writes response.output_item.added and
// response.content_part.added for one block's start); an ending after
// part of a group first sends the rest of it, so that the client never
// sees an item without its part or a part without its item closed. The
// bytes are read, not kept, by the next EndStream; they are valid until
// the next Pending.
func (r *Renderer) Pending(rest []byte) { r.pending = rest }

// NewRenderer returns a renderer for one request of protocol p.
func NewRenderer(p llm.Protocol) *Renderer { return &Renderer{codec: Codec(p)} }

// Protocol returns the renderer's protocol.
func (r *Renderer) Protocol() llm.Protocol { return r.codec.Protocol() }

// Follow makes t the stream whose state EndStream ends: the translator of
// a translated stream, or one fed the events of a stream passed through.
func (r *Renderer) Follow(t *llm.StreamTranslator) { r.stream = t }

// Error implements phases.Renderer.
func (r *Renderer) Error(status int, typ, message string) (http.Header, []byte) {
	e := &llm.Error{Status: status, Type: typ, Message: message}
	if typ == llm.TypeInvalidRequest && status != http.StatusBadRequest && r.codec.Protocol() == llm.AnthropicMessages {
		e.Type = "" // Messages names it by status: authentication_error, request_too_large, ...
	}
	body := r.codec.EncodeError(e)
	r.last, r.lastStatus, r.lastTyp, r.msg = body, status, typ, message
	return http.Header{"Content-Type": {"application/json"}}, body
}

// EndStream implements phases.Renderer: the end of the stream in the
// protocol, carrying the exit whose body is exitBody.
func (r *Renderer) EndStream(exitBody []byte) []byte {
	t := r.stream
	if t == nil {
		t = llm.NewStreamTranslator(r.codec.NewStreamDecoder(), r.codec.NewStreamEncoder(nil))
		r.stream = t
	}
	var out []byte
	if len(r.pending) > 0 {
		// The rest of the group goes first, and the followed stream
		// reads it, so that the ending closes what it opened.
		out = append(out, r.pending...)
		rd := sse.NewReader(bytes.NewReader(r.pending), len(r.pending))
		for {
			ev, err := rd.Next()
			if err != nil {
				break
			}
			_, _ = t.Translate(nil, ev.Event, ev.Data)
		}
		rd.Release()
		r.pending = nil
	}
	if bytes.Equal(exitBody, r.last) && r.last != nil && r.lastTyp == TypeRefusal {
		out = t.End(out, llm.StopRefusal, r.msg)
	} else {
		e := r.codec.DecodeError(http.StatusBadGateway, exitBody)
		if bytes.Equal(exitBody, r.last) && r.last != nil {
			e = &llm.Error{Status: r.lastStatus, Type: r.lastTyp, Message: r.msg}
		}
		out = t.Fail(out, e)
	}
	if r.seqKnown {
		out = renumber(out, r.seq+1)
	}
	return out
}

var _ phases.Renderer = (*Renderer)(nil)

// Refusal returns the whole response that refuses a reply in protocol p,
// before anything was sent: a reply whose one text part is message and
// whose stop reason is refusal, streamed (as server-sent events) when
// stream is set. usage may be nil.
func Refusal(p llm.Protocol, model, message string, stream bool, usage *llm.Usage) (http.Header, []byte) {
	c := Codec(p)
	if !stream {
		resp := &llm.Response{Model: model, Usage: usage, Choices: []llm.Choice{{
			Parts: []llm.Part{{Kind: llm.PartText, Text: message}}, Stop: llm.StopRefusal}}}
		return http.Header{"Content-Type": {"application/json"}}, c.EncodeResponse(resp, &llm.Request{Model: model})
	}
	enc := c.NewStreamEncoder(&llm.Request{Model: model, Stream: true})
	var b []byte
	b = enc.Encode(b, &llm.Event{Kind: llm.EventStart, Model: model})
	b = enc.Encode(b, &llm.Event{Kind: llm.EventBlockStart, Block: llm.BlockText})
	b = enc.Encode(b, &llm.Event{Kind: llm.EventBlockDelta, Delta: []byte(message)})
	b = enc.Encode(b, &llm.Event{Kind: llm.EventBlockStop})
	if usage != nil {
		b = enc.Encode(b, &llm.Event{Kind: llm.EventUsage, Usage: *usage})
	}
	b = enc.Encode(b, &llm.Event{Kind: llm.EventStop, Stop: llm.StopRefusal})
	b = enc.Encode(b, &llm.Event{Kind: llm.EventEnd})
	return http.Header{"Content-Type": {"text/event-stream"}, "Cache-Control": {"no-cache"}}, b
}
