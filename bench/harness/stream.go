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
	for {
		e, err := s.rd.Next()
		if err != nil {
			return nil, err
		}
		if !complete(e.Raw) {
			// sse hands out a last block cut off by the end of the
			// stream; for a client it is lost.
			return nil, io.ErrUnexpectedEOF
		}
		if e.Data != nil {
			return e.Data, nil
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
	s := NewStream(r)
	for {
		data, err := s.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		f(data)
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
