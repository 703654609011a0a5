package llm

import (
	"net/http"
	"slices"
)

// StreamTranslator translates one streamed reply from the protocol of its
// decoder to that of its encoder, one upstream event at a time, and ends
// the client's stream well formed whatever happens upstream.
type StreamTranslator struct {
	dec     StreamDecoder
	enc     StreamEncoder
	events  []Event
	next    int  // an unused block index
	stopped bool // a Stop event went through
	broken  bool // the upstream stream could not be read on
	// open are the blocks started and not stopped, in the order they
	// started: End closes them before it adds its message.
	open    []openBlock
	openBuf [4]openBlock
	// ends are the lengths dst had after each group of client events the
	// last Translate or Finish appended (see Groups).
	ends []int
}

// openBlock is a block of the client's stream that started and has not
// stopped.
type openBlock struct{ choice, index int }

// NewStreamTranslator returns a translator from dec's protocol to enc's.
func NewStreamTranslator(dec StreamDecoder, enc StreamEncoder) *StreamTranslator {
	t := &StreamTranslator{dec: dec, enc: enc, events: make([]Event, 0, 8)}
	t.open = t.openBuf[:0]
	return t
}

// Translate reads one upstream server-sent event, given its event name and
// data, and appends what the client gets to dst. If the upstream event
// cannot be read, the client's stream ends with an error (502) and the
// decoding error is returned; later events are ignored.
func (t *StreamTranslator) Translate(dst []byte, name string, data []byte) ([]byte, error) {
	t.ends = t.ends[:0]
	if t.enc.Done() || t.broken {
		t.events = t.events[:0]
		return dst, nil
	}
	var err error
	t.events, err = t.dec.Decode(t.events[:0], name, data)
	for i := range t.events {
		dst = t.encode(dst, &t.events[i])
		t.ends = append(t.ends, len(dst))
	}
	if err != nil {
		t.broken = true
		dst = t.Fail(dst, &Error{Status: http.StatusBadGateway, Type: TypeAPIError, Message: "the upstream stream could not be translated: " + err.Error()})
		t.ends = append(t.ends, len(dst))
	}
	return dst, err
}

// Groups returns where the groups of client events that the last
// Translate or Finish appended end: the length dst had after each. One
// neutral event may become several client events (Responses writes
// response.output_item.added and response.content_part.added for a text
// block's start); a stream cut between two events of a group must be
// completed with the rest of the group before its ending (see
// docs/protocols.md). The slice is valid until the next call.
func (t *StreamTranslator) Groups() []int { return t.ends }

// Events returns the neutral events of the last Translate, for plugins to
// read. They are valid until the next call.
func (t *StreamTranslator) Events() []Event { return t.events }

func (t *StreamTranslator) encode(dst []byte, ev *Event) []byte {
	switch ev.Kind {
	case EventBlockStart:
		t.next = max(t.next, ev.Index+1)
		if !slices.ContainsFunc(t.open, func(o openBlock) bool { return o.index == ev.Index }) {
			t.open = append(t.open, openBlock{ev.Choice, ev.Index})
		}
	case EventBlockStop:
		t.open = slices.DeleteFunc(t.open, func(o openBlock) bool { return o.index == ev.Index })
	case EventStop:
		t.stopped = true
	}
	return t.enc.Encode(dst, ev)
}

// Finish appends the end of the client's stream once the upstream stream
// has ended. A stream whose upstream ended without saying why it stopped
// ends with an error (502): the reply may be cut short.
func (t *StreamTranslator) Finish(dst []byte) []byte {
	t.ends = t.ends[:0]
	if t.enc.Done() {
		return dst
	}
	if !t.stopped {
		dst = t.Fail(dst, &Error{Status: http.StatusBadGateway, Type: TypeAPIError, Message: "the upstream stream ended before the reply was complete"})
	} else {
		dst = t.enc.Encode(dst, &Event{Kind: EventEnd})
	}
	t.ends = append(t.ends, len(dst))
	return dst
}

// End ends the client's stream now, as the gateway decides: open blocks
// are closed, message (if not empty) is added as a last text block, and
// the stream ends normally with stop as its stop reason (for instance
// StopRefusal when moderation stops a reply).
func (t *StreamTranslator) End(dst []byte, stop StopReason, message string) []byte {
	if t.enc.Done() {
		return dst
	}
	// Closed first, so that the message's block never opens inside
	// another: Messages has one block open at a time, and Responses lists
	// its output in the order items close, which must be the order they
	// were added.
	for len(t.open) > 0 {
		dst = t.encode(dst, &Event{Kind: EventBlockStop, Choice: t.open[0].choice, Index: t.open[0].index})
	}
	if message != "" {
		i := t.next
		t.next++
		dst = t.enc.Encode(dst, &Event{Kind: EventBlockStart, Index: i, Block: BlockText})
		dst = t.enc.Encode(dst, &Event{Kind: EventBlockDelta, Index: i, Delta: []byte(message)})
		dst = t.enc.Encode(dst, &Event{Kind: EventBlockStop, Index: i})
	}
	dst = t.encode(dst, &Event{Kind: EventStop, Stop: stop})
	return t.enc.Encode(dst, &Event{Kind: EventEnd})
}

// Fail ends the client's stream now with e.
func (t *StreamTranslator) Fail(dst []byte, e *Error) []byte {
	return t.enc.Encode(dst, &Event{Kind: EventError, Err: e})
}

// Done reports whether the client's stream has ended.
func (t *StreamTranslator) Done() bool { return t.enc.Done() }
