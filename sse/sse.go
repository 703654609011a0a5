// Package sse parses Server-Sent Events incrementally for a byte-exact proxy.
//
// A [Reader] splits an upstream text/event-stream into events, one per call to
// [Reader.Next]. Each [Event] carries the exact wire bytes of the event
// ([Event.Raw]), so a proxy that writes every Raw it receives reproduces the
// upstream stream byte for byte, together with the fields parsed as described
// by the WHATWG HTML "Server-sent events" interpretation rules, so the proxy
// can inspect each event's data before forwarding it.
//
// # Event boundaries
//
// The stream is cut into blocks, each ending with a blank line (an empty line
// terminated by "\n", "\r\n" or "\r"). Every block is returned as an event,
// including blocks that the WHATWG rules would not dispatch to an EventSource
// listener, such as comment-only keep-alives (": ping\n\n") or stray blank
// lines: a proxy has to forward those bytes too. Such events have a nil or
// empty [Event.Data]; callers that only care about dispatched events should
// skip events with len(Data) == 0.
//
// A stream that ends with an incomplete block (bytes after the last blank
// line) yields that block as a final event, with Raw holding the bytes as
// received and fields parsed from all of its lines, including an
// unterminated last line, and then [io.EOF]. This deviates from the WHATWG
// rules, which discard such a block, because a proxy must still forward the
// bytes and because upstreams commonly end the stream with "data: [DONE]\n"
// and no blank line. A client parsing the forwarded stream will discard it,
// exactly as it would have without the proxy.
//
// # Latency
//
// [Reader.Next] returns an event as soon as its terminating blank line has
// been read and never reads ahead to complete it. The one ambiguity this
// creates is a blank line terminated by a "\r" that is the last byte read so
// far: the next byte may be a "\n" belonging to the same "\r\n" terminator.
// Rather than block until more bytes arrive, Next returns the event at once;
// if the next byte is then "\n", it is treated as the tail of that terminator
// (not as another blank line) and becomes the first byte of the following
// event's Raw. Field values are unaffected, and the concatenation of all Raw
// still equals the input.
//
// [Reader.Ready] tells whether the next event is already buffered, so that
// a proxy can write the events of one upstream read and flush once, as a
// byte-copying proxy does, without holding any back until the next read.
package sse

import (
	"bytes"
	"errors"
	"io"
	"math"
	"sync"
)

// DefaultMaxEventBytes is the event size limit used by [NewReader] when it is
// given a non-positive limit.
const DefaultMaxEventBytes = 1 << 20

// initialBufferSize is the size of a Reader's buffer before it grows to hold
// a larger event. It is also the usual size of a read from the upstream.
const initialBufferSize = 4096

// maxEmptyReads is the number of consecutive (0, nil) reads tolerated before
// Next gives up with io.ErrNoProgress, as bufio does.
const maxEmptyReads = 100

// ErrEventTooLarge is returned by [Reader.Next] when an event's wire size
// exceeds the reader's limit. It is permanent: the stream cannot be
// resynchronised, and every later call to Next returns it again.
var ErrEventTooLarge = errors.New("sse: event exceeds maximum size")

// ErrReleased is returned by [Reader.Next] after [Reader.Release].
var ErrReleased = errors.New("sse: read of a released reader")

// bufPool holds read buffers of initialBufferSize, given back by Release
// (and when a buffer grows), so that a proxy does not allocate one per
// stream.
var bufPool = sync.Pool{New: func() any { return new([initialBufferSize]byte) }}

// errInvalidRead reports an io.Reader that returned an impossible count.
var errInvalidRead = errors.New("sse: reader returned invalid count")

// utf8BOM is stripped from the start of the stream when parsing fields.
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// Event is one event of a stream.
//
// Slices returned by [Reader.Next] alias the reader's internal buffers and
// are only valid until the next call to Next; copy them (for example with
// bytes.Clone) to keep them longer. Their capacity is clipped to their
// length, so appending to them never overwrites reader state.
type Event struct {
	// Raw is the exact wire bytes of the event, including the blank line
	// that terminates it (absent only for a final incomplete event).
	Raw []byte
	// Event is the value of the last "event" field, or "" if there is none.
	// (An EventSource would dispatch such an event under the type "message".)
	Event string
	// Data is the values of the "data" fields joined with "\n". It is nil
	// when the event has no data field (and empty but non-nil when it has a
	// single, empty one).
	Data []byte
	// ID is the value of the last "id" field of this event whose value
	// contains no NUL byte, or "" if there is none. It is not carried over
	// from earlier events.
	ID string
}

// Reader reads events from an underlying [io.Reader]. It is not safe for
// concurrent use.
type Reader struct {
	rd  io.Reader
	max int

	buf  []byte // buf[r:w] holds bytes read but not yet returned
	r, w int

	// Incremental scan state for the event starting at buf[r]: bytes in
	// buf[r:r+scan] are known to contain no blank line, and lineStart
	// reports whether buf[r+scan] begins a line.
	scan      int
	lineStart bool
	// lfAt and crAt cache the search for the next "\n" and "\r": there is
	// no "\n" in buf between the scan position and lfAt, which is either
	// r.w or the index of a "\n"; likewise there is no "\r" before crAt,
	// which is a "\r", r.w or lfAt. See nextTerminator.
	lfAt, crAt int
	// skipLF reports that the previous event ended with a "\r" that was the
	// last byte read, so a "\n" at buf[r] completes that terminator.
	skipLF bool
	// ready is the length of the complete event at buf[r] that Ready
	// found, or 0; readyCR is scanEvent's loneCR for it.
	ready   int
	readyCR bool

	bomPending bool   // no event has been parsed yet
	err        error  // sticky error from the underlying reader or limit
	data       []byte // scratch space for joining multi-line data
	event      string // last event type seen, kept to avoid allocations
}

// NewReader returns a Reader that reads events from r. Events larger than
// maxEventBytes (counting every byte of Raw) make Next fail with
// [ErrEventTooLarge]; the Reader never buffers much more than that. A
// non-positive maxEventBytes selects [DefaultMaxEventBytes].
func NewReader(r io.Reader, maxEventBytes int) *Reader {
	if maxEventBytes <= 0 {
		maxEventBytes = DefaultMaxEventBytes
	}
	// The buffer holds up to maxEventBytes+1 bytes.
	maxEventBytes = min(maxEventBytes, math.MaxInt-1)
	return &Reader{rd: r, max: maxEventBytes, lineStart: true, bomPending: true}
}

// Next returns the next event of the stream.
//
// It returns as soon as the event's terminating blank line has been read,
// without further reads if the event is already buffered. At a clean end of
// the stream it returns [io.EOF]; if the stream ends with an incomplete
// event, that event is returned first (see the package documentation). Any
// other error from the underlying reader is returned as is, once the
// complete events read before it have been returned; the incomplete event
// read before it, if any, remains available from [Reader.Buffered]. Errors
// are sticky.
//
// The returned slices are only valid until the next call to Next.
func (r *Reader) Next() (Event, error) {
	for {
		end, loneCR := r.ready, r.readyCR
		if end == 0 {
			end, loneCR = r.scanEvent()
		}
		r.ready = 0
		if end >= 0 {
			if end > r.max {
				return Event{}, r.tooLarge()
			}
			ev := r.emit(end)
			r.skipLF = loneCR
			return ev, nil
		}
		if r.w-r.r > r.max {
			return Event{}, r.tooLarge()
		}
		if r.err != nil {
			if r.err == io.EOF && r.r < r.w {
				ev := r.emit(r.w - r.r)
				r.skipLF = false
				return ev, nil
			}
			return Event{}, r.err
		}
		r.fill()
	}
}

// Ready reports whether the next call to Next returns without reading from
// the underlying reader: a complete event is buffered, or the stream has
// ended cleanly (io.EOF), the last event included. A proxy can use it to
// write every event the upstream delivered in one read and flush once,
// without holding back any event it has received.
func (r *Reader) Ready() bool {
	if r.ready > 0 {
		return true
	}
	if end, loneCR := r.scanEvent(); end > 0 {
		r.ready, r.readyCR = end, loneCR
		return true
	}
	return r.err == io.EOF
}

// Buffered returns the bytes read from the underlying reader but not yet
// returned as part of an event. After Next has returned an error other than
// [io.EOF] or [ErrEventTooLarge], they are the incomplete event that
// preceded the error. The slice is only valid until the next call to Next.
func (r *Reader) Buffered() []byte {
	return r.buf[r.r:r.w:r.w]
}

// tooLarge makes ErrEventTooLarge sticky and releases the buffer.
func (r *Reader) tooLarge() error {
	r.err = ErrEventTooLarge
	r.putBuf()
	r.buf, r.r, r.w, r.ready = nil, 0, 0, 0
	r.lfAt, r.crAt = 0, 0
	r.data = nil
	return r.err
}

// fill reads more bytes into the buffer, making room first. It records any
// error in r.err.
func (r *Reader) fill() {
	if r.r > 0 {
		// Only an incomplete event is buffered: move it to the front.
		r.w = copy(r.buf, r.buf[r.r:r.w])
		r.lfAt -= r.r
		r.crAt -= r.r
		r.r = 0
	}
	if r.w == len(r.buf) {
		// The buffer never needs more than max+1 bytes: by then the pending
		// event is known to be too large.
		n := max(2*len(r.buf), initialBufferSize)
		n = min(n, r.max+1)
		var buf []byte
		if n == initialBufferSize {
			buf = bufPool.Get().(*[initialBufferSize]byte)[:]
		} else {
			buf = make([]byte, n)
		}
		copy(buf, r.buf[:r.w])
		r.putBuf()
		r.buf = buf
	}
	for range maxEmptyReads {
		n, err := r.rd.Read(r.buf[r.w:])
		if n < 0 || n > len(r.buf)-r.w {
			r.err = errInvalidRead
			return
		}
		r.w += n
		if err != nil {
			r.err = err
			return
		}
		if n > 0 {
			return
		}
	}
	r.err = io.ErrNoProgress
}

// Release ends the reader and gives its buffer back for other readers:
// the slices of the events it returned must no longer be used. Every
// later Next returns [ErrReleased]. Calling Release is optional.
func (r *Reader) Release() {
	r.putBuf()
	r.buf, r.r, r.w, r.ready = nil, 0, 0, 0
	r.lfAt, r.crAt = 0, 0
	r.data = nil
	r.err = ErrReleased
}

// putBuf gives r.buf back to the pool when it came from there.
func (r *Reader) putBuf() {
	if len(r.buf) == initialBufferSize {
		bufPool.Put((*[initialBufferSize]byte)(r.buf))
	}
}

// scanEvent looks for the blank line ending the event that starts at
// buf[r]. It returns the event's length, or -1 if it is not complete yet,
// and whether the blank line ended with a lone "\r" that is the last
// buffered byte. It resumes where the previous call stopped.
func (r *Reader) scanEvent() (end int, loneCR bool) {
	b := r.buf[:r.w]
	p, lineStart := r.r+r.scan, r.lineStart
	for p < r.w {
		if lineStart {
			switch b[p] {
			case '\n':
				if (p == r.r && r.skipLF) || (p > r.r && b[p-1] == '\r') {
					// Second half of a "\r\n" split across reads.
					p++
					continue
				}
				r.scan, r.lineStart = 0, true
				return p + 1 - r.r, false
			case '\r':
				r.scan, r.lineStart = 0, true
				switch {
				case p+1 == r.w:
					return p + 1 - r.r, true
				case b[p+1] == '\n':
					return p + 2 - r.r, false
				}
				return p + 1 - r.r, false
			}
			lineStart = false
		}
		t := r.nextTerminator(p)
		if t == r.w {
			p = t
			break
		}
		p = t + 1
		if b[t] == '\r' && p < r.w && b[p] == '\n' {
			p++
		}
		lineStart = true
	}
	r.scan, r.lineStart = p-r.r, lineStart
	return -1, false
}

// nextTerminator returns the index in buf of the first "\r" or "\n" at or
// after p, or r.w if there is none. The positions of the next "\n" and "\r"
// are cached across calls (and reads) so that a stream using only one of
// them is not rescanned for the other once per line or per event.
func (r *Reader) nextTerminator(p int) int {
	b := r.buf[:r.w]
	if r.lfAt < p {
		r.lfAt = p
	}
	if r.lfAt < r.w && b[r.lfAt] != '\n' {
		r.lfAt = indexFrom(b, r.lfAt, '\n')
	}
	if r.crAt < p {
		r.crAt = p
	}
	if r.crAt < r.lfAt && b[r.crAt] != '\r' {
		// Only a "\r" before the next "\n" matters.
		r.crAt = indexFrom(b[:r.lfAt], r.crAt, '\r')
	}
	return min(r.lfAt, r.crAt)
}

// indexFrom returns the index of the first c in b[from:], or len(b).
func indexFrom(b []byte, from int, c byte) int {
	if i := bytes.IndexByte(b[from:], c); i >= 0 {
		return from + i
	}
	return len(b)
}

// emit consumes the next n buffered bytes and parses them as an event.
func (r *Reader) emit(n int) Event {
	raw := r.buf[r.r : r.r+n : r.r+n]
	r.r += n
	r.scan, r.lineStart = 0, true
	return r.parse(raw)
}

// parse interprets the fields of the event whose wire bytes are raw.
func (r *Reader) parse(raw []byte) Event {
	ev := Event{Raw: raw}
	b := raw
	if r.bomPending {
		r.bomPending = false
		b = bytes.TrimPrefix(b, utf8BOM)
	}
	var (
		data      []byte // first data value, aliasing raw
		dataLines int
		event     []byte
		id        []byte
	)
	n := len(b)
	nextLF, nextCR := -1, -1
	for p := 0; p < n; {
		if nextLF < p {
			nextLF = indexFrom(b, p, '\n')
		}
		if nextCR < p {
			nextCR = indexFrom(b, p, '\r')
		}
		t := min(nextLF, nextCR)
		line := b[p:t]
		p = t + 1
		if t < n && b[t] == '\r' && p < n && b[p] == '\n' {
			p++
		}
		if len(line) == 0 || line[0] == ':' {
			continue
		}
		name, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			name, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(name) {
		case "data":
			switch dataLines {
			case 0:
				data = value[:len(value):len(value)]
			case 1:
				r.data = append(r.data[:0], data...)
				fallthrough
			default:
				r.data = append(r.data, '\n')
				r.data = append(r.data, value...)
			}
			dataLines++
		case "event":
			event = value
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				id = value
			}
		}
	}
	switch {
	case dataLines == 1:
		ev.Data = data
		if ev.Data == nil {
			ev.Data = raw[:0:0]
		}
	case dataLines > 1:
		ev.Data = r.data[:len(r.data):len(r.data)]
	}
	if len(event) > 0 {
		if string(event) != r.event {
			r.event = string(event)
		}
		ev.Event = r.event
	}
	if len(id) > 0 {
		ev.ID = string(id)
	}
	return ev
}

// IsDone reports whether e is the OpenAI end-of-stream sentinel, that is
// whether its data is exactly "[DONE]".
func IsDone(e Event) bool {
	return string(e.Data) == "[DONE]"
}

// AppendEvent appends to dst an event carrying data and returns the extended
// slice. The event is written as "data: <line>\n" for each line of data
// followed by a blank line ("\n"). Line breaks in data ("\n", "\r\n" or a lone
// "\r") each start a new data line, so a client receives them as "\n" and
// data cannot inject other fields. Empty data produces "data: \n\n".
func AppendEvent(dst []byte, data []byte) []byte {
	lf := -1 // index in data of the next "\n", or len(data); -1: unknown
	for {
		dst = append(dst, "data: "...)
		if lf < 0 {
			lf = indexFrom(data, 0, '\n')
		}
		t := indexFrom(data[:lf], 0, '\r')
		if t == len(data) {
			dst = append(dst, data...)
			break
		}
		dst = append(dst, data[:t]...)
		dst = append(dst, '\n')
		if data[t] == '\r' && t+1 < len(data) && data[t+1] == '\n' {
			t++
		}
		data = data[t+1:]
		if t == lf {
			lf = -1
		} else {
			lf -= t + 1
		}
	}
	return append(dst, '\n', '\n')
}
