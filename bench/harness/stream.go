package harness

import (
	"bytes"
	"errors"
	"io"

	"github.com/phasegate/phasegate/sse"
)

// Done is the data of the event that ends an OpenAI stream.
const Done = "[DONE]"

// Stream reads the events of a text/event-stream body with package sse,
// skipping those without data (comments, keep-alives).
type Stream struct{ rd *sse.Reader }

// NewStream returns a Stream reading r.
func NewStream(r io.Reader) *Stream { return &Stream{rd: sse.NewReader(r, 0)} }

// Next returns the data of the next event (its data lines joined by "\n"),
// valid until the next call. It returns io.EOF at a clean end of the
// stream, io.ErrUnexpectedEOF when the stream ends inside an event, and
// the body's error when reading it fails.
func (s *Stream) Next() ([]byte, error) {
	e, err := s.NextEvent()
	return e.Data, err
}

// NextEvent is Next with the event's name (its "event" field) beside its
// data; its slices are valid until the next call.
func (s *Stream) NextEvent() (sse.Event, error) {
	for {
		e, err := s.rd.Next()
		if err != nil {
			return sse.Event{}, err
		}
		if !complete(e.Raw) {
			// sse hands out a last block cut off by the end of the
			// stream; for a client it is lost.
			return sse.Event{}, io.ErrUnexpectedEOF
		}
		if e.Data != nil {
			return e, nil
		}
	}
}

// complete reports whether raw, the wire bytes of an event, ends with the
// blank line that ends an event, or holds nothing but line breaks.
func complete(raw []byte) bool {
	if len(bytes.Trim(raw, "\r\n")) == 0 {
		return true
	}
	switch {
	case bytes.HasSuffix(raw, []byte("\r\n")):
		raw = raw[:len(raw)-2]
	case bytes.HasSuffix(raw, []byte("\n")), bytes.HasSuffix(raw, []byte("\r")):
		raw = raw[:len(raw)-1]
	default:
		return false
	}
	return bytes.HasSuffix(raw, []byte("\n")) || bytes.HasSuffix(raw, []byte("\r"))
}

// EachEvent calls f with the data of each event of r (see Stream.Next)
// until the stream ends, and returns the error that ended it, nil for a
// clean end.
func EachEvent(r io.Reader, f func(data []byte)) error {
	return eachNamedEvent(r, func(e sse.Event) { f(e.Data) })
}

// eachNamedEvent is EachEvent handing f the whole event (see
// Stream.NextEvent).
func eachNamedEvent(r io.Reader, f func(sse.Event)) error {
	s := NewStream(r)
	for {
		e, err := s.NextEvent()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		f(e)
	}
}

// ReadEvents reads events until the end of the stream. It returns the data
// of those it read and the error that ended the stream, nil for a clean
// end.
func ReadEvents(r io.Reader) ([]string, error) {
	var evs []string
	err := EachEvent(r, func(data []byte) { evs = append(evs, string(data)) })
	return evs, err
}

// Event is one event of a stream as a client keeps it: its name (the
// "event" field, "" when none) and its data.
type Event struct{ Name, Data string }

// ReadNamedEvents is ReadEvents keeping each event's name, for the
// protocols that name their events (Anthropic Messages, OpenAI Responses).
func ReadNamedEvents(r io.Reader) ([]Event, error) {
	var evs []Event
	err := eachNamedEvent(r, func(e sse.Event) { evs = append(evs, Event{e.Event, string(e.Data)}) })
	return evs, err
}
