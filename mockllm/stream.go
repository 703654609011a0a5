package mockllm

import (
	"bytes"
	"errors"
	"net/http"
	"unicode"
	"unicode/utf8"

	"github.com/phasegate/phasegate/llm"
)

// eventEncoder writes the neutral events of a streamed reply in one door's
// wire format: whole server-sent events, appended to dst.
type eventEncoder interface {
	Encode(dst []byte, ev *llm.Event) []byte
}

// streamReply writes evs as a server-sent event stream through enc,
// applying the stream faults of b: HeaderHang after the headers,
// HeaderChunkDelay before each content chunk (a block delta),
// HeaderResetAfter before content chunk K or else before the stop, and
// HeaderSplit in the writing.
func streamReply(w http.ResponseWriter, r *http.Request, b *behaviour, enc eventEncoder, evs []llm.Event) outcome {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	sw := &sseWriter{w: w, rc: http.NewResponseController(w), r: r, split: b.split}
	if err := sw.flush(); err != nil {
		return outcomeCanceled
	}
	if b.hang {
		return streamOutcome(wait(r, -1))
	}
	var buf []byte
	chunks := 0
	for i := range evs {
		ev := &evs[i]
		switch ev.Kind {
		case llm.EventBlockDelta:
			if b.reset && chunks == b.resetAfter {
				abort()
			}
			chunks++
			if b.chunkDelay > 0 {
				if err := wait(r, b.chunkDelay); err != nil {
					return streamOutcome(err)
				}
			}
		case llm.EventStop:
			if b.reset { // resetAfter >= number of chunks
				abort()
			}
		}
		buf = enc.Encode(buf[:0], ev)
		if err := sw.events(buf); err != nil {
			return streamOutcome(err)
		}
	}
	return outcomeCompleted
}

// sseWriter writes server-sent events, flushing each one.
type sseWriter struct {
	w     http.ResponseWriter
	rc    *http.ResponseController
	r     *http.Request
	split bool
}

// events writes p, one or more whole server-sent events, flushing each
// event. In split mode each event goes out in two halves, cut in the middle
// of its data, with a flush and a short pause in between. Errors are
// errClientGone or errStopping.
func (s *sseWriter) events(p []byte) error {
	for len(p) > 0 {
		n := bytes.Index(p, []byte("\n\n")) + 2
		if n < 2 {
			n = len(p)
		}
		if err := s.event(p[:n]); err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}

func (s *sseWriter) event(ev []byte) error {
	if !s.split {
		return s.write(ev)
	}
	half := len(ev) / 2
	if err := s.write(ev[:half]); err != nil {
		return err
	}
	if err := wait(s.r, splitPause); err != nil {
		return err
	}
	return s.write(ev[half:])
}

// write writes and flushes p. It stops before writing once the client has
// gone, so that a departed client does not keep the stream going, but does
// not look afterwards: a client that hangs up right after receiving the
// last event has received a complete reply.
func (s *sseWriter) write(p []byte) error {
	if s.r.Context().Err() != nil {
		return errClientGone
	}
	if _, err := s.w.Write(p); err != nil {
		return errClientGone
	}
	return s.flush()
}

// flush flushes buffered output to the client. A ResponseWriter that
// cannot flush (some middleware wrappers) still gets the events, unflushed.
func (s *sseWriter) flush() error {
	if err := s.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return errClientGone
	}
	return nil
}

// splitContent splits s into exactly n pieces (n >= 1) that concatenate to
// s. Pieces are groups of nearly equal numbers of words, each word keeping
// the whitespace that follows it; when s has fewer than n words it is split
// into pieces of nearly equal numbers of characters instead, and when it has
// fewer than n characters the trailing pieces are empty.
func splitContent(s string, n int) []string {
	if ends := wordSpans(s); len(ends) >= n {
		return group(s, ends, n)
	}
	var ends []int // end offset of each rune
	for i, rn := range s {
		ends = append(ends, i+utf8.RuneLen(rn))
	}
	return group(s, ends, n)
}

// group distributes the units of s, unit i ending at byte offset ends[i]
// (the last at len(s)), over n pieces whose sizes differ by at most one
// unit, the larger pieces first.
func group(s string, ends []int, n int) []string {
	pieces := make([]string, n)
	q, rem := len(ends)/n, len(ends)%n
	start, units := 0, 0
	for i := range pieces {
		size := q
		if i < rem {
			size++
		}
		if size == 0 {
			continue
		}
		units += size
		stop := ends[units-1]
		pieces[i] = s[start:stop]
		start = stop
	}
	return pieces
}

// wordSpans returns the end offsets of the words of s, each word extended
// by the whitespace that follows it; leading whitespace belongs to the first
// word. The last end is len(s) when s has any word.
func wordSpans(s string) []int {
	var ends []int
	seenWord, prevSpace := false, false
	for i, rn := range s {
		space := unicode.IsSpace(rn)
		if !space && prevSpace && seenWord {
			ends = append(ends, i)
		}
		if !space {
			seenWord = true
		}
		prevSpace = space
	}
	if seenWord {
		ends = append(ends, len(s))
	}
	return ends
}
