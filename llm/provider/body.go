package provider

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/phasegate/phasegate/llm"
	"github.com/phasegate/phasegate/llm/openai"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/sse"
)

// timedReader bounds every Read of r by timeout: the timer cancels the
// attempt's context when it fires.
type timedReader struct {
	r       io.Reader
	timer   *time.Timer
	timeout time.Duration
}

func (t *timedReader) Read(p []byte) (int, error) {
	t.timer.Reset(t.timeout)
	n, err := t.r.Read(p)
	t.timer.Stop()
	return n, err
}

// usageKey is looked for before a stream event is parsed for usage.
var usageKey = []byte(`"usage"`)

// streamBody is a streamed (SSE) response: each Next is one event, as soon
// as it is complete. It follows the stream in the request's LLMInfo.
type streamBody struct {
	in       *Instance
	a        *attempt
	c        *call
	ctx      context.Context
	cancel   context.CancelCauseFunc
	rc       io.ReadCloser
	reads    *timedReader
	rd       *sse.Reader
	capTimer *time.Timer

	eventLimit int // the sse.Reader's event size limit

	n       int64  // bytes handed on
	err     error  // sticky: returned by every later Next
	closed  bool   //
	scratch []byte // delta text of the current event, until the first token

	ev *events // a stream not in Chat on both sides (translate.go)
}

// Next returns the next event, io.EOF at the end of the stream, a
// *phases.ExitError when a cap ends the stream, a *TimeoutError when the
// upstream stalls, or the error that broke the stream.
func (b *streamBody) Next() (phases.Chunk, error) {
	if b.ev != nil {
		return b.nextEvents()
	}
	if b.err != nil {
		return phases.Chunk{}, b.err
	}
	if b.closed {
		return phases.Chunk{}, errors.New("provider: read of a closed body")
	}
	if b.ctx.Err() != nil {
		// A cap may have fired while the runner was busy elsewhere: end now,
		// even if complete events are buffered.
		return phases.Chunk{}, b.fail(b.translate(context.Cause(b.ctx)))
	}
	ev, err := b.rd.Next()
	if err != nil {
		if err == io.EOF {
			b.a.traceComplete()
			b.a.finish()
			b.capTimer.Stop()
			b.err = io.EOF
			return phases.Chunk{}, io.EOF
		}
		return phases.Chunk{}, b.fail(b.translate(err))
	}
	b.n += int64(len(ev.Raw))
	if b.n > b.in.maxResp {
		return phases.Chunk{}, b.fail(&phases.ExitError{Exit: b.in.tooLarge()})
	}
	b.observe(ev)
	return phases.Chunk{Data: ev.Raw, Event: ev.Data, More: b.rd.Ready()}, nil
}

// fail makes err sticky, marks the end of the body and stops the upstream.
func (b *streamBody) fail(err error) error {
	b.err = err
	b.a.traceFailed(err)
	b.a.finish()
	b.capTimer.Stop()
	b.cancel(context.Canceled)
	return err
}

// translate turns a read error into what Next reports.
func (b *streamBody) translate(err error) error {
	if b.ctx.Err() != nil {
		switch cause := context.Cause(b.ctx); {
		case errors.Is(cause, errStreamCap):
			return &phases.ExitError{Exit: b.in.tooLong()}
		case errors.Is(cause, errTimedOut):
			return &TimeoutError{Upstream: b.in.name, Body: true, After: b.in.timeout}
		}
		return err // the client has gone: the runner aborts
	}
	if errors.Is(err, sse.ErrEventTooLarge) {
		if int64(b.eventLimit) >= b.in.maxResp {
			return &phases.ExitError{Exit: b.in.tooLarge()}
		}
		return &phases.ExitError{Exit: b.in.eventTooLarge(b.eventLimit)}
	}
	return fmt.Errorf("provider: instance %q: reading the stream: %w", b.in.name, stripURL(err))
}

// observe follows the stream in LLMInfo: the time to the first event with
// content, and the usage of the usage chunk. The text itself is not kept.
func (b *streamBody) observe(ev sse.Event) {
	data := ev.Data
	if len(data) == 0 || sse.IsDone(ev) {
		return
	}
	b.a.traceResponse(data)
	if b.in.protocol != llm.OpenAIChat {
		return // followed from its neutral events (translate.go)
	}
	if !b.a.firstToken {
		b.scratch = openai.AppendChunkDeltaText(b.scratch[:0], data)
		if len(b.scratch) > 0 {
			b.a.firstToken = true
			b.a.ttft = time.Since(b.a.sent)
			b.c.info.TTFT = b.a.ttft
		}
	}
	if bytes.Contains(data, usageKey) {
		if u, ok := openai.ParseUsage(data); ok {
			b.c.setUsage(u)
		}
	}
}

// Close stops the timers, closes the upstream's body, cancels the call (at
// once, if it is still running) and ends the attempt, releasing its gauge.
func (b *streamBody) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	b.reads.timer.Stop()
	b.capTimer.Stop()
	err := b.rc.Close()
	b.rd.Release() // the events' bytes are spent: Close comes after the last Next
	b.cancel(context.Canceled)
	b.a.close()
	return err
}
