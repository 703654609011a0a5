package phases

import (
	"io"
	"net/http"
)

// Response is what the upstream phase produces: status, header and a body
// read chunk by chunk. The framework closes Body exactly once, on every
// path.
type Response struct {
	Status int
	Header http.Header
	// Body yields the body's chunks; nil means an empty body.
	Body Body
	// SSE marks a body framed as server-sent events, one event per chunk.
	// An exit after the headers are sent then ends the stream with a data
	// event carrying the exit's body and "data: [DONE]".
	SSE bool
}

// Chunk is one piece of a response body.
type Chunk struct {
	// Data is the chunk's bytes as they go to the client (for SSE, the
	// event's exact wire bytes).
	Data []byte
	// Event is the event's data field when the body is SSE, else nil.
	Event []byte
	// More reports that the next chunk is already at hand: the next Next
	// returns it (or the end of the body) without waiting on the upstream.
	// The runner then writes this chunk without flushing it, so that the
	// chunks of one upstream read reach the client in one flush; it flushes
	// after the first chunk without More, never holding one back until the
	// upstream sends again.
	More bool
}

// Body is a response body read chunk by chunk. Next returns a chunk and a
// nil error, or the last chunk (possibly empty) together with io.EOF; any
// other error means the body broke. Next is called from one goroutine, and a
// chunk's bytes need only stay valid until the next call or Close. Close releases the body (for
// an upstream body, it cancels the upstream request if still running); it
// is called exactly once.
type Body interface {
	Next() (Chunk, error)
	Close() error
}

// BytesBody is a Body of one chunk, delivered together with the end of the
// body, so that body filters see a complete body in one call before anything
// is sent.
func BytesBody(b []byte) Body { return &bytesBody{b: b} }

type bytesBody struct {
	b    []byte
	done bool
}

func (b *bytesBody) Next() (Chunk, error) {
	if b.done {
		return Chunk{}, io.EOF
	}
	b.done = true
	return Chunk{Data: b.b}, io.EOF
}

func (b *bytesBody) Close() error { return nil }
