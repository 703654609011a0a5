package phasetest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"

	"github.com/phasegate/phasegate/fsm"
	"github.com/phasegate/phasegate/phases"
)

// scripted is a plugin that does what its PluginScript says, in every phase.
type scripted struct {
	s     PluginScript
	run   *run
	calls int // body filter calls so far
}

func (p *scripted) Name() string  { return p.s.Name }
func (p *scripted) Priority() int { return p.s.Priority }

func (p *scripted) Access(ctx context.Context, r *phases.Request) phases.Exit {
	if p.s.Acquire {
		p.run.scriptedGauge.Acquire(r.Scope(), p.s.Name)
	}
	if p.s.Access.Kind == Mutate {
		p.run.note("    %s mutates the request", p.s.Name)
		mutate(r)
		return phases.Exit{}
	}
	return p.act(p.s.Access, fsm.StateAccess)
}

func (p *scripted) HeaderFilter(ctx context.Context, h *phases.ResponseHead) phases.Exit {
	return p.act(p.s.Header, fsm.StateHeaderFilter)
}

func (p *scripted) BodyFilter(ctx context.Context, c *phases.BodyChunk) phases.BodyResult {
	i := p.calls
	p.calls++
	if i >= len(p.s.Body) {
		return phases.BodyResult{}
	}
	a := p.s.Body[i]
	if a.Kind == Transform {
		p.run.note("    %s transforms chunk %d", p.s.Name, i)
		if c.SSE() {
			return phases.Replace(append([]byte(nil), c.Data...))
		}
		return phases.Replace(bytes.ToUpper(c.Data))
	}
	return phases.End(p.act(a, fsm.StateBodyFilter))
}

func (p *scripted) Log(ctx context.Context, s *phases.Summary) {}

func (p *scripted) act(a Action, phase fsm.State) phases.Exit {
	switch a.Kind {
	case Exit:
		p.run.note("    %s exits %d", p.s.Name, a.Status)
		p.run.lastExit = p.s.Name + "@" + string(phase)
		return phases.Error(a.Status, "phasetest", "scripted exit by "+p.s.Name)
	case Panic:
		p.run.note("    %s panics", p.s.Name)
		p.run.panics++
		panic("phasetest: scripted panic in " + p.s.Name + " " + string(phase))
	case Cancel:
		p.run.note("    %s: the client leaves", p.s.Name)
		p.run.cancel()
	}
	return phases.Exit{}
}

// mutate changes everything a plugin might wrongly re-read later.
func mutate(r *phases.Request) {
	for k, vs := range r.Header() {
		for i := range vs {
			vs[i] += "~mutated"
		}
		r.Header()[k] = vs
	}
	r.URL().Path += "/mutated"
	if b, err := r.Body(); err == nil {
		r.SetBody(append(append([]byte(nil), b...), " mutated"...))
	}
}

// upstream is the scripted upstream.
type upstream struct {
	s   UpstreamScript
	run *run
}

// UpstreamName is the name of the harness's scripted upstream plugin.
const UpstreamName = "upstream"

func (u *upstream) Name() string { return UpstreamName }

func (u *upstream) Upstream(ctx context.Context, r *phases.Request) (*phases.Response, error) {
	switch u.s.Kind {
	case UpstreamRefused:
		u.run.note("    upstream refuses the connection")
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	case UpstreamTimeout:
		u.run.note("    upstream times out")
		return nil, fmt.Errorf("upstream: %w", context.DeadlineExceeded)
	case UpstreamPanic:
		u.run.note("    upstream panics")
		u.run.panics++
		panic("phasetest: scripted upstream panic")
	case UpstreamHang:
		u.run.note("    upstream hangs; the client leaves")
		u.run.cancel()
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if err := u.readBody(r); err != nil {
		return nil, err
	}
	u.run.note("    upstream answers %d with %d chunks", u.s.Status, u.s.Chunks)
	h := http.Header{"Content-Type": {"text/plain"}}
	if u.s.SSE {
		h.Set("Content-Type", "text/event-stream")
	}
	u.run.bodies++
	return &phases.Response{Status: u.s.Status, Header: h, SSE: u.s.SSE, Body: &body{s: u.s, run: u.run}}, nil
}

// readBody sends the request body upstream as http.Transport does: read
// in a goroutine of its own, a failed read failing the call.
func (u *upstream) readBody(r *phases.Request) error {
	errc := make(chan error, 1)
	body := r.BodyReader()
	go func() {
		_, err := io.Copy(io.Discard, body)
		errc <- err
	}()
	if err := <-errc; err != nil {
		u.run.note("    upstream could not send the request body")
		return fmt.Errorf("write error: %w", err)
	}
	return nil
}

// stallingBody is the body of a client that sends one byte and stalls
// past the body timeout: net/http then fails the read and cancels the
// request's context.
type stallingBody struct {
	r    io.ReadCloser
	run  *run
	sent bool
}

var errBodyDeadline = &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}

func (b *stallingBody) Read(p []byte) (int, error) {
	if !b.sent && len(p) > 0 && b.r != nil {
		b.sent = true
		return b.r.Read(p[:1])
	}
	b.run.note("    the client's body stalls: the read times out")
	b.run.mu.Lock()
	b.run.timedOut = true
	b.run.mu.Unlock()
	b.run.cancel()
	return 0, errBodyDeadline
}

func (b *stallingBody) Close() error { return nil }

type body struct {
	s   UpstreamScript
	run *run
	i   int
}

func (b *body) Next() (phases.Chunk, error) {
	if b.i == b.s.BreakAt {
		if b.s.PanicBody {
			b.run.note("    upstream body panics at chunk %d", b.i)
			b.run.panics++
			panic("phasetest: scripted body panic")
		}
		b.run.note("    upstream body breaks at chunk %d", b.i)
		return phases.Chunk{}, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	}
	if b.i >= b.s.Chunks {
		return phases.Chunk{}, io.EOF
	}
	i := b.i
	b.i++
	if b.s.SSE {
		data := fmt.Sprintf(`{"chunk":%d}`, i)
		return phases.Chunk{Data: []byte("data: " + data + "\n\n"), Event: []byte(data)}, nil
	}
	return phases.Chunk{Data: []byte(fmt.Sprintf("chunk-%d;", i))}, nil
}

func (b *body) Close() error {
	b.run.closes++
	b.run.note("    upstream body closed")
	return nil
}

// sink records what the client receives and vanishes on cue.
type sink struct {
	run     *run
	c       ClientScript
	status  int
	header  http.Header
	body    bytes.Buffer
	headers int
	writes  int
	aborted bool
	gone    bool
	errs    []string
}

var (
	errClientGone   = fmt.Errorf("write: %w", syscall.EPIPE)
	errSendDeadline = &net.OpError{Op: "write", Net: "tcp", Err: os.ErrDeadlineExceeded}
)

func (s *sink) WriteHeader(status int, h http.Header) error {
	s.headers++
	if s.headers > 1 {
		s.errs = append(s.errs, "the header was written twice")
	}
	if s.aborted {
		s.errs = append(s.errs, "the header was written after an abort")
	}
	if s.gone || s.c.FailHeader {
		s.run.note("  > header %d: the client is gone", status)
		s.gone = true
		s.run.cancel()
		return errClientGone
	}
	s.status, s.header = status, h.Clone()
	s.run.note("  > header %d", status)
	return nil
}

func (s *sink) Write(p []byte) error {
	if s.headers == 0 {
		s.errs = append(s.errs, "the body was written before the header")
	}
	if s.aborted {
		s.errs = append(s.errs, "the body was written after an abort")
	}
	n := s.writes
	s.writes++
	if !s.gone && n == s.c.TimeoutWrite {
		s.run.note("  > write %q: the send deadline passes", p)
		s.gone = true
		s.run.mu.Lock()
		s.run.timedOut = true
		s.run.mu.Unlock()
		s.run.cancel()
		return errSendDeadline
	}
	if s.gone || n == s.c.FailWrite {
		s.run.note("  > write %q: the client is gone", p)
		s.gone = true
		s.run.cancel()
		return errClientGone
	}
	s.body.Write(p)
	s.run.note("  > write %q", p)
	return nil
}

func (s *sink) Flush() error {
	if s.headers == 0 {
		s.errs = append(s.errs, "the body was flushed before the header")
	}
	return nil
}

func (s *sink) Abort() {
	if s.aborted {
		s.errs = append(s.errs, "the response was aborted twice")
	}
	s.aborted = true
	s.run.note("  > abort")
}

func describeLabels(labels []string) string {
	if len(labels) == 0 {
		return ""
	}
	return "{" + strings.Join(labels, ",") + "}"
}
