package llm

import (
	"strconv"
)

// EventKind is the kind of a stream [Event].
type EventKind uint8

// The kinds of stream events. A well-formed stream is Start, then blocks
// (BlockStart, BlockDelta..., BlockStop), then Stop and Usage, then End;
// Ping may come anywhere and Error ends a stream at any point.
const (
	// EventStart opens the reply: Event.ID, Event.Model and Event.Created.
	EventStart EventKind = iota + 1
	// EventBlockStart opens content block Event.Index of kind
	// Event.Block; a tool call block has Event.ID and Event.Name.
	EventBlockStart
	// EventBlockDelta adds Event.Delta to block Event.Index: text, or a
	// fragment of a tool call's JSON arguments.
	EventBlockDelta
	// EventBlockStop closes block Event.Index.
	EventBlockStop
	// EventUsage reports the usage so far, cumulatively: each replaces
	// the one before (assign, never add).
	EventUsage
	// EventStop says why generation stopped: Event.Stop and
	// Event.StopSequence.
	EventStop
	// EventEnd ends the stream normally.
	EventEnd
	// EventError ends the stream with Event.Err.
	EventError
	// EventPing is a keep-alive.
	EventPing
)

var eventNames = [...]string{"?", "start", "block_start", "delta", "block_stop", "usage", "stop", "end", "error", "ping"}

func (k EventKind) String() string {
	if int(k) < len(eventNames) {
		return eventNames[k]
	}
	return "?"
}

// BlockKind is the kind of a content block of a stream.
type BlockKind uint8

// The kinds of blocks.
const (
	BlockText BlockKind = iota + 1
	BlockToolCall
	BlockRefusal
)

var blockNames = [...]string{"?", "text", "tool_call", "refusal"}

func (b BlockKind) String() string {
	if int(b) < len(blockNames) {
		return blockNames[b]
	}
	return "?"
}

// Event is one event of a streamed reply. Which fields are set depends on
// Kind.
type Event struct {
	Kind EventKind
	// Choice is the Chat choice the event belongs to (0 elsewhere).
	Choice int
	// Index identifies a content block within the stream. Indexes are
	// unique, not necessarily dense: encoders number blocks themselves.
	Index int
	Block BlockKind
	// ID is the reply's id (Start) or the tool call's (BlockStart).
	ID string
	// Name is the called tool's name (BlockStart).
	Name string
	// Model is the model that replies (Start).
	Model string
	// Created is the Unix time the reply was created (Start); 0 if the
	// protocol does not say.
	Created int64
	// Delta is the text or argument fragment of a BlockDelta. A decoder's
	// Delta is only valid until its next Decode.
	Delta        []byte
	Usage        Usage
	Stop         StopReason
	StopSequence string
	Err          *Error
}

// String renders the event on one line, as the golden files show it.
func (e *Event) String() string {
	b := []byte(e.Kind.String())
	if e.Choice != 0 {
		b = append(b, " choice="...)
		b = strconv.AppendInt(b, int64(e.Choice), 10)
	}
	switch e.Kind {
	case EventStart:
		b = append(b, " id="...)
		b = strconv.AppendQuote(b, e.ID)
		b = append(b, " model="...)
		b = strconv.AppendQuote(b, e.Model)
	case EventBlockStart:
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(e.Index), 10)
		b = append(b, ' ')
		b = append(b, e.Block.String()...)
		if e.Block == BlockToolCall {
			b = append(b, " id="...)
			b = strconv.AppendQuote(b, e.ID)
			b = append(b, " name="...)
			b = strconv.AppendQuote(b, e.Name)
		}
	case EventBlockDelta:
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(e.Index), 10)
		b = append(b, ' ')
		b = strconv.AppendQuote(b, string(e.Delta))
	case EventBlockStop:
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(e.Index), 10)
	case EventUsage:
		u := e.Usage
		b = append(b, " in="...)
		b = strconv.AppendInt(b, u.InputTokens, 10)
		b = append(b, " out="...)
		b = strconv.AppendInt(b, u.OutputTokens, 10)
		b = append(b, " cache_read="...)
		b = strconv.AppendInt(b, u.CacheReadTokens, 10)
		b = append(b, " cache_write="...)
		b = strconv.AppendInt(b, u.CacheWriteTokens, 10)
		b = append(b, " reasoning="...)
		b = strconv.AppendInt(b, u.ReasoningTokens, 10)
	case EventStop:
		b = append(b, ' ')
		b = append(b, e.Stop.String()...)
		if e.StopSequence != "" {
			b = append(b, ' ')
			b = strconv.AppendQuote(b, e.StopSequence)
		}
	case EventError:
		if e.Err != nil {
			b = append(b, ' ')
			b = strconv.AppendInt(b, int64(e.Err.Status), 10)
			b = append(b, ' ')
			b = strconv.AppendQuote(b, e.Err.Type)
			b = append(b, ' ')
			b = strconv.AppendQuote(b, e.Err.Message)
		}
	}
	return string(b)
}

// StreamDecoder reads one streamed reply of a protocol, one server-sent
// event at a time. It hands out at most one terminal event (End or
// Error) and nothing after it.
type StreamDecoder interface {
	// Decode reads one event, given its event name ("" if none) and data
	// (nil for a comment-only keep-alive), and appends the events it
	// stands for to dst. An error means the stream cannot be read on: it
	// is malformed, or breaks the protocol in a way that cannot be
	// translated.
	Decode(dst []Event, name string, data []byte) ([]Event, error)
}

// StreamEncoder writes one streamed reply in a protocol.
//
// Whatever events it is given, in whatever order, an encoder writes a
// well-formed stream: it opens the reply before any content, ignores
// events that make no sense where they come (a delta to a block that is
// not open, anything after the end), closes every open block before the
// end, and writes exactly one terminal event, for the first End or Error
// it gets.
type StreamEncoder interface {
	// Encode appends the wire bytes ev stands for, zero or more
	// server-sent events, to dst.
	Encode(dst []byte, ev *Event) []byte
	// Done reports whether the terminal event has been written.
	Done() bool
}
