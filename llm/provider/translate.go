package provider

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/phasegate/phasegate/llm"
	"github.com/phasegate/phasegate/llm/anthropic"
	"github.com/phasegate/phasegate/llm/door"
	"github.com/phasegate/phasegate/llm/openai"
	"github.com/phasegate/phasegate/phases"
)

// translates reports whether the client and in speak different protocols,
// so that the request and its answer are translated.
func (c *call) translates(in *Instance) bool {
	return in.protocol != c.door.Protocol && !c.door.CountTokens
}

// payload returns the body sent to in for the client's body: the body
// itself when both speak one protocol (only the instance's options
// rewrite it, and Chat's streams always ask for usage), else the neutral
// reading encoded for in's protocol, with model, then the options.
func (c *call) payload(in *Instance, body []byte, model string) ([]byte, error) {
	if !c.translates(in) {
		if in.protocol == llm.OpenAIChat {
			return openai.Rewrite(body, in.options, true)
		}
		if len(in.options) == 0 {
			return body, nil
		}
		return openai.Rewrite(body, in.options, false)
	}
	req, err := c.neutral(body)
	if err != nil {
		return nil, err
	}
	out := *req
	out.Model = model
	out.IncludeUsage = out.Stream
	payload, err := door.Codec(in.protocol).EncodeRequest(&out)
	if err != nil || len(in.options) == 0 {
		return payload, err
	}
	return openai.Rewrite(payload, in.options, in.protocol == llm.OpenAIChat)
}

// neutral returns the neutral reading of the client's body.
func (c *call) neutral(body []byte) (*llm.Request, error) {
	if c.req == nil {
		req, err := door.Codec(c.door.Protocol).DecodeRequest(body)
		if err != nil {
			return nil, err
		}
		c.req = req
	}
	return c.req, nil
}

// payloadExit is the exit for a request that cannot be written for the
// upstream: a 400 for what its protocol cannot express.
func payloadExit(err error) error {
	var re *openai.RequestError
	var le *llm.Error
	switch {
	case errors.As(err, &re):
		return &phases.ExitError{Exit: phases.Error(http.StatusBadRequest, llm.TypeInvalidRequest, re.Error())}
	case errors.As(err, &le):
		return &phases.ExitError{Exit: phases.Error(http.StatusBadRequest, llm.TypeInvalidRequest, le.Message)}
	}
	return &phases.ExitError{Exit: phases.Error(http.StatusInternalServerError, "internal_error", "the request could not be rewritten for the upstream")}
}

// estimate answers count_tokens for an instance that cannot count: the
// gateway's estimate (llm.EstimateInputTokens), without an upstream call.
func (c *call) estimate(in *Instance) *phases.Response {
	c.info.Instance = in.name
	c.info.ProviderProtocol = in.protocol
	body := anthropic.EncodeCountTokensResponse(llm.EstimateInputTokens(c.req))
	h := http.Header{"Content-Type": {"application/json"}, "Content-Length": {strconv.Itoa(len(body))}}
	return &phases.Response{Status: http.StatusOK, Header: h, Body: phases.BytesBody(body)}
}

// whole reads the usage of a whole answer of in and returns what the
// client gets: data itself, or its translation into the client's
// protocol.
func (c *call) whole(in *Instance, status int, header http.Header, data []byte) ([]byte, error) {
	translate := c.translates(in)
	if status >= http.StatusBadRequest {
		if !translate {
			return data, nil
		}
		e := door.Codec(in.protocol).DecodeError(status, data)
		header.Set("Content-Type", "application/json")
		return door.Codec(c.door.Protocol).EncodeError(e), nil
	}
	if c.door.CountTokens {
		return data, nil
	}
	if !translate && in.protocol == llm.OpenAIChat {
		if u, ok := openai.ParseUsage(data); ok {
			c.setUsage(u)
		}
		return data, nil
	}
	resp, err := door.Codec(in.protocol).DecodeResponse(data)
	if err != nil {
		if !translate {
			return data, nil // passed on as it is; its usage is unknown
		}
		return nil, &phases.ExitError{Exit: phases.Error(http.StatusBadGateway, string(phases.CauseUpstreamError),
			"the upstream response could not be translated: "+err.Error())}
	}
	if resp.Usage != nil {
		c.setNeutralUsage(*resp.Usage)
	}
	if !translate {
		return data, nil
	}
	req, _ := c.neutral(c.body)
	header.Set("Content-Type", "application/json")
	return door.Codec(c.door.Protocol).EncodeResponse(resp, req), nil
}

// events is the state of a stream that is not Chat on both sides.
type events struct {
	tr  *llm.StreamTranslator // the provider's events into the client's protocol; nil when passed through
	dec llm.StreamDecoder     // the provider's events, passed through: read for usage and TTFT
	evs []llm.Event

	// shadow follows what the client was handed, one chunk behind (the
	// chunk in the body filters may yet be dropped by an exit), so that
	// the request's renderer ends the stream from there; nil on the Chat
	// door, whose end needs no state.
	shadow  *llm.StreamTranslator
	last    []byte // the data of the chunk handed on last, not yet followed
	scratch []byte // the shadow's output, dropped

	out      []byte // tr's output buffer
	queue    []byte // translated events not yet handed on: out[pos:]
	pos      int
	groups   []int // where out's groups of events end (StreamTranslator.Groups)
	finished bool  // the upstream stream has ended
}

// follow sets up the events of a stream from in, unless both sides speak
// Chat (that path stays as it is).
func (b *streamBody) follow() {
	c, in := b.c, b.in
	translate := c.translates(in)
	if !translate && in.protocol == llm.OpenAIChat {
		return
	}
	req, _ := c.neutral(c.body)
	e := &events{}
	if translate {
		e.tr = llm.NewStreamTranslator(door.Codec(in.protocol).NewStreamDecoder(), door.Codec(c.door.Protocol).NewStreamEncoder(req))
	} else {
		e.dec = door.Codec(in.protocol).NewStreamDecoder()
	}
	if r := c.door.Renderer; r != nil {
		cc := door.Codec(c.door.Protocol)
		e.shadow = llm.NewStreamTranslator(cc.NewStreamDecoder(), cc.NewStreamEncoder(req))
		r.Follow(e.shadow)
	}
	b.ev = e
}

// nextEvents is Next for a stream with events: one upstream event is read
// and followed at a time, translated when the protocols differ, and each
// translated event is handed on as its own chunk.
func (b *streamBody) nextEvents() (phases.Chunk, error) {
	e := b.ev
	if e.last != nil {
		// The chunk handed on last got through: the client has it, and
		// no ending needs to complete its group any more.
		e.scratch, _ = e.shadow.Translate(e.scratch[:0], "", e.last)
		b.c.door.Renderer.Sent(e.last)
		b.c.door.Renderer.Pending(nil)
		e.last = nil
	}
	for {
		if len(e.queue) > 0 {
			return b.pop()
		}
		if e.finished {
			return phases.Chunk{}, io.EOF
		}
		b.ev = nil // the read below is the plain one
		ch, err := b.Next()
		b.ev = e
		if err == io.EOF {
			e.finished = true
			if e.tr != nil {
				e.queue = e.tr.Finish(e.out[:0])
				e.pos, e.groups = 0, e.tr.Groups()
			}
			continue
		}
		if err != nil {
			return ch, err
		}
		if e.tr == nil {
			e.evs, _ = e.dec.Decode(e.evs[:0], "", ch.Event)
			b.observeEvents(e.evs)
			b.handOn(ch.Event, -1)
			return ch, nil
		}
		out, terr := e.tr.Translate(e.out[:0], "", ch.Event)
		b.observeEvents(e.tr.Events())
		e.out, e.queue, e.pos, e.groups = out, out, 0, e.tr.Groups()
		if terr != nil {
			e.finished = true
			b.cancel(terr)
		}
	}
}

// handOn notes the data of the chunk handed on, for the shadow, and tells
// the renderer the rest of its group when the chunk does not begin one
// (docs/protocols.md: a cut stream never ends inside a group).
// start is the chunk's offset in the translated output, or -1 for an
// upstream event passed through, which is a group of its own.
func (b *streamBody) handOn(data []byte, start int) {
	if b.ev.shadow != nil {
		b.ev.last = data
		b.c.door.Renderer.Pending(b.ev.restOfGroup(start))
	}
}

// pop hands on the first translated event of the queue.
func (b *streamBody) pop() (phases.Chunk, error) {
	e := b.ev
	raw := e.queue
	if i := bytes.Index(raw, eventEnd); i >= 0 {
		raw = raw[:i+len(eventEnd)]
	}
	e.queue = e.queue[len(raw):]
	start := e.pos
	e.pos += len(raw)
	// Held unflushed while the next event is already in hand (see body.go).
	more := len(e.queue) > 0 || (!e.finished && b.rd.Ready())
	ch := phases.Chunk{Data: raw, Event: eventData(raw), More: more}
	b.handOn(ch.Event, start)
	if len(e.queue) == 0 && e.finished {
		return ch, io.EOF
	}
	return ch, nil
}

// restOfGroup returns the events from out[start:] to the end of their
// group, or nil when start begins a group (or is -1: no group).
func (e *events) restOfGroup(start int) []byte {
	if start <= 0 {
		return nil
	}
	for _, end := range e.groups {
		if end == start {
			return nil
		}
		if end > start {
			return e.out[start:end]
		}
	}
	return nil
}

var (
	eventEnd  = []byte("\n\n")
	dataField = []byte("data: ")
)

// eventData returns the data of an event written by an encoder: one
// "data: " line, or none.
func eventData(raw []byte) []byte {
	i := bytes.Index(raw, dataField)
	if i < 0 || (i > 0 && raw[i-1] != '\n') {
		return nil
	}
	d := raw[i+len(dataField):]
	if j := bytes.IndexByte(d, '\n'); j >= 0 {
		d = d[:j]
	}
	return d
}

// observeEvents follows the stream in LLMInfo from its neutral events:
// the time to the first content, and the usage (cumulative: assigned).
func (b *streamBody) observeEvents(evs []llm.Event) {
	for i := range evs {
		ev := &evs[i]
		switch ev.Kind {
		case llm.EventBlockDelta:
			if !b.a.firstToken && len(ev.Delta) > 0 {
				b.a.firstToken = true
				b.a.ttft = time.Since(b.a.sent)
				b.c.info.TTFT = b.a.ttft
			}
		case llm.EventUsage:
			b.c.setNeutralUsage(ev.Usage)
		}
	}
}
