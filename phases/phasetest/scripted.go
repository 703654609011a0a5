package phasetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"

	"github.com/phasegate/phasegate/fsm"
	"github.com/phasegate/phasegate/fsm/testhook"
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
		// The label slice is the plugin's own and changes right after:
		// the binding must keep the values it was acquired with.
		labels := []string{p.s.Name}
		b := p.run.scriptedGauge.Acquire(r.Scope, labels...)
		labels[0] = p.s.Name + "~changed"
		p.run.keepBinding(b)
		p.run.useStale(p.s.Name)
	}
	if p.s.PanicRelease {
		name := p.s.Name
		r.Scope.Acquire(fsm.Resource{Name: "phasetest panicking release", Labels: []string{name}}, func() {
			p.run.note("    %s's release panics", name)
			p.run.panic("scripted panic in " + name + "'s release")
		})
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
	if a.Kind == Hold {
		p.run.note("    %s holds chunk %d back", p.s.Name, i)
		p.run.altered = true
		return phases.Replace(nil)
	}
	if a.Kind == Transform {
		p.run.note("    %s transforms chunk %d", p.s.Name, i)
		p.run.altered = true
		if c.SSE {
			return phases.Replace(append([]byte(nil), c.Data...))
		}
		return phases.Replace(bytes.ToUpper(c.Data))
	}
	return phases.End(p.act(a, fsm.StateBodyFilter))
}

func (p *scripted) Log(ctx context.Context, s *phases.Summary) {
	p.act(p.s.Log, fsm.StateLog)
}

func (p *scripted) act(a Action, phase fsm.State) phases.Exit {
	switch a.Kind {
	case Exit:
		p.run.note("    %s exits %d", p.s.Name, a.Status)
		p.run.lastExit = p.s.Name + "@" + string(phase)
		return phases.Error(a.Status, "phasetest", "scripted exit by "+p.s.Name)
	case Panic:
		p.run.note("    %s panics", p.s.Name)
		p.run.panic("scripted panic in " + p.s.Name + " " + string(phase))
	case Cancel:
		p.run.note("    %s: the client leaves", p.s.Name)
		p.run.leave()
	case Wedge:
		p.run.wedge(p.s.Name)
	}
	return phases.Exit{}
}

// mutate changes everything a plugin might wrongly re-read later.
func mutate(r *phases.Request) {
	for k, vs := range r.Header {
		for i := range vs {
			vs[i] += "~mutated"
		}
		r.Header[k] = vs
	}
	r.URL.Path += "/mutated"
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

// AttemptScope is the name of the child scope each attempt of the scripted
// upstream holds its gauge in.
const AttemptScope = "phasetest attempt"

func (u *upstream) Name() string { return UpstreamName }

func (u *upstream) Upstream(ctx context.Context, r *phases.Request) (*phases.Response, error) {
	for i, status := range u.s.Failed {
		attempt := u.attempt(r, i+1)
		if status == Refused {
			u.run.note("    attempt %d: the upstream refuses the connection", i+1)
		} else {
			u.run.note("    attempt %d: the upstream answers %d; trying the next", i+1, status)
		}
		attempt.Close()
	}
	attempt := u.attempt(r, len(u.s.Failed)+1)
	switch u.s.Kind {
	case UpstreamRefused:
		u.run.note("    upstream refuses the connection")
		attempt.Close()
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	case UpstreamTimeout:
		u.run.note("    upstream times out")
		attempt.Close()
		return nil, fmt.Errorf("upstream: %w", context.DeadlineExceeded)
	case UpstreamPanic:
		u.run.note("    upstream panics")
		u.run.panic("scripted upstream panic")
	case UpstreamHang:
		u.run.note("    upstream hangs; the client leaves")
		u.run.leave()
		<-ctx.Done()
		attempt.Close()
		return nil, ctx.Err()
	}
	if err := u.readBody(r); err != nil {
		attempt.Close()
		return nil, err
	}
	u.run.note("    upstream answers %d with %d chunks", u.s.Status, u.s.Chunks)
	h := http.Header{"Content-Type": {"text/plain"}}
	if u.s.SSE {
		h.Set("Content-Type", "text/event-stream")
	}
	u.run.bodies++
	return &phases.Response{Status: u.s.Status, Header: h, SSE: u.s.SSE, Body: &body{s: u.s, run: u.run, attempt: attempt}}, nil
}

// attempt opens the scope of attempt n and holds its gauge there.
func (u *upstream) attempt(r *phases.Request, n int) *fsm.Scope {
	sc := r.Scope.Child(AttemptScope)
	u.run.keepScope(sc)
	u.run.keepBinding(u.run.scriptedGauge.Acquire(sc, fmt.Sprintf("%s/%d", UpstreamName, n)))
	u.run.useStale(UpstreamName)
	return sc
}

// readBody sends the request body upstream as http.Transport does: read
// in a goroutine of its own, a failed read failing the call.
func (u *upstream) readBody(r *phases.Request) error {
	errc := make(chan error, 1)
	body, _ := r.BodyReader()
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
	if !b.run.present() {
		b.run.note("    the client's body ends: the client is gone")
		return 0, io.ErrUnexpectedEOF
	}
	b.run.note("    the client's body stalls: the read times out")
	b.run.mu.Lock()
	b.run.timedOut = true
	b.run.mu.Unlock()
	b.run.leave()
	return 0, errBodyDeadline
}

func (b *stallingBody) Close() error { return nil }

type body struct {
	s       UpstreamScript
	run     *run
	attempt *fsm.Scope // ends with the body
	i       int
	ended   bool // it returned its end, a failure, or panicked
	// overreads counts reads after the end.
	overreads int
	more      bool // the last chunk said the next one was at hand
}

func (b *body) Next() (phases.Chunk, error) {
	if b.ended {
		// A runner that keeps reading must stop, and fail the path at once
		// rather than spin: an error first, then the end, whichever of the
		// two it fails to take.
		b.overreads++
		if b.overreads == 1 {
			b.run.bad("the upstream body was read after it ended")
			return phases.Chunk{}, errReadAfterEnd
		}
		return phases.Chunk{}, io.EOF
	}
	if !b.more && b.run.sink != nil && b.run.sink.pending {
		b.run.bad("a chunk was left unflushed while the upstream body was read again")
	}
	if b.i == b.s.BreakAt {
		if b.s.PanicBody {
			b.run.note("    upstream body panics at chunk %d", b.i)
			b.ended = true
			b.run.panic("scripted body panic")
		}
		b.run.note("    upstream body breaks at chunk %d", b.i)
		b.ended = true
		return phases.Chunk{}, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	}
	if b.i >= b.s.Chunks {
		b.ended = true
		return phases.Chunk{}, io.EOF
	}
	i := b.i
	b.i++
	// Every other chunk arrives with the next one, as several events do in
	// one read of a fast upstream.
	b.more = i%2 == 0 && b.i < b.s.Chunks && b.i != b.s.BreakAt
	if b.s.SSE {
		data := fmt.Sprintf(`{"chunk":%d}`, i)
		return phases.Chunk{Data: []byte("data: " + data + "\n\n"), Event: []byte(data), More: b.more}, nil
	}
	return phases.Chunk{Data: []byte(fmt.Sprintf("chunk-%d;", i)), More: b.more}, nil
}

func (b *body) Close() error {
	b.run.closes++
	b.run.note("    upstream body closed")
	b.attempt.Close()
	return nil
}

// sink records what the client receives, and vanishes or panics on cue.
type sink struct {
	run      *run
	c        ClientScript
	status   int
	header   http.Header
	body     bytes.Buffer
	headers  int
	writes   int
	aborted  bool
	gone     bool
	panicked bool
	pending  bool // a chunk was written and not flushed yet
	held     bool // the runner holds it back: the next chunk is at hand
	errs     []string
}

var (
	errClientGone   = fmt.Errorf("write: %w", syscall.EPIPE)
	errReadAfterEnd = errors.New("phasetest: the body was read after its end")
	errSendDeadline = &net.OpError{Op: "write", Net: "tcp", Err: os.ErrDeadlineExceeded}
)

// explode panics where the script says, once: a panic no hook wrapper
// recovers.
func (s *sink) explode(what string) {
	s.panicked = true
	s.run.note("  > %s: the sink panics", what)
	s.run.escaped = true
	s.run.escapedUnsent = s.headers == 0
	s.run.panic("scripted sink panic on " + what)
}

func (s *sink) WriteHeader(status int, h http.Header) error {
	if s.c.PanicHeader && !s.panicked {
		s.explode(fmt.Sprintf("header %d", status))
	}
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
		s.run.leave()
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
	if n == s.c.PanicWrite && !s.panicked {
		s.explode(fmt.Sprintf("write %q", p))
	}
	if !s.gone && n == s.c.TimeoutWrite && s.run.present() {
		s.run.note("  > write %q: the send deadline passes", p)
		s.gone = true
		s.run.mu.Lock()
		s.run.timedOut = true
		s.run.mu.Unlock()
		s.run.leave()
		return errSendDeadline
	}
	if s.gone || n == s.c.FailWrite {
		s.run.note("  > write %q: the client is gone", p)
		s.gone = true
		s.run.leave()
		return errClientGone
	}
	if s.pending && !s.held {
		s.errs = append(s.errs, "a chunk was written before the previous one was flushed")
	}
	s.body.Write(p)
	s.pending, s.held = true, false
	s.run.note("  > write %q", p)
	return nil
}

func (s *sink) Flush() error {
	if s.headers == 0 {
		s.errs = append(s.errs, "the body was flushed before the header")
	}
	s.pending, s.held = false, false
	return nil
}

// HoldFlush is the runner saying that it leaves the chunk just written
// unflushed because the next one is at hand (phases.Chunk.More).
func (s *sink) HoldFlush() {
	if !s.pending {
		s.errs = append(s.errs, "a flush was held with nothing written")
	}
	s.held = true
}

func (s *sink) Abort() {
	if s.aborted {
		s.errs = append(s.errs, "the response was aborted twice")
	}
	s.aborted = true
	s.run.note("  > abort")
}

// wedge wedges the request's machine from inside a hook.
func (r *run) wedge(who string) {
	r.note("    %s wedges the machine", who)
	r.mu.Lock()
	again := r.wedged
	r.mu.Unlock()
	if again {
		return
	}
	if !testhook.WedgeMachine(r.scope) {
		r.bad("%s could not wedge the machine", who)
		return
	}
	r.mu.Lock()
	r.wedged, r.wedgedIn = true, r.state
	r.mu.Unlock()
}
