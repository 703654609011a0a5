package phasetest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/phasegate/phasegate/fsm"
)

func newTestRun() *run {
	r := newRun("")
	r.cancel = func() {}
	return r
}

// panics runs f and returns what it panicked with.
func panics(f func()) (v any) {
	defer func() { v = recover() }()
	f()
	return nil
}

func TestSinkDoesWhatItsClientDoes(t *testing.T) {
	t.Run("misuse is recorded", func(t *testing.T) {
		s := &sink{run: newTestRun(), c: ClientScript{FailWrite: -1, PanicWrite: -1, TimeoutWrite: -1}}
		_ = s.Write([]byte("x"))
		_ = s.Flush()
		_ = s.WriteHeader(200, http.Header{})
		_ = s.WriteHeader(200, http.Header{})
		s.Abort()
		s.Abort()
		_ = s.Write([]byte("y"))
		_ = s.WriteHeader(200, http.Header{})
		want := []string{"the body was written before the header", "the body was flushed before the header", "the header was written twice",
			"the response was aborted twice", "the body was written after an abort", "the header was written after an abort"}
		for _, w := range want {
			if !strings.Contains(strings.Join(s.errs, "\n"), w) {
				t.Errorf("no %q in %v", w, s.errs)
			}
		}
		if s.body.String() != "xy" || s.status != 200 || s.writes != 2 {
			t.Errorf("body %q status %d writes %d", s.body.Bytes(), s.status, s.writes)
		}
	})
	// A write is excused by a flush, or by a held flush (the next chunk
	// was at hand), of the one before; a second write without either is not.
	for name, excuse := range map[string]func(*sink){
		"every chunk but the last is flushed": func(s *sink) { _ = s.Flush() },
		"a held flush excuses one write":      (*sink).HoldFlush,
	} {
		t.Run(name, func(t *testing.T) {
			s := &sink{run: newTestRun(), c: ClientScript{FailWrite: -1, PanicWrite: -1, TimeoutWrite: -1}}
			_ = s.WriteHeader(200, http.Header{})
			_ = s.Write([]byte("a"))
			excuse(s)
			_ = s.Write([]byte("b"))
			if len(s.errs) > 0 {
				t.Fatalf("errs %v", s.errs)
			}
			_ = s.Write([]byte("c"))
			if len(s.errs) != 1 || !strings.Contains(s.errs[0], "before the previous one was flushed") {
				t.Fatalf("errs %v", s.errs)
			}
			_ = s.Flush()
			s.HoldFlush()
			if len(s.errs) != 2 || !strings.Contains(s.errs[1], "held with nothing written") {
				t.Fatalf("errs %v", s.errs)
			}
		})
	}
	t.Run("a chunk left unflushed when the upstream is read again", func(t *testing.T) {
		r := newTestRun()
		r.sink = &sink{run: r, c: ClientScript{FailWrite: -1, PanicWrite: -1, TimeoutWrite: -1}}
		b := &body{s: UpstreamScript{Chunks: 4, BreakAt: -1}, run: r}
		_ = r.sink.WriteHeader(200, http.Header{})
		c, _ := b.Next() // More: the next is at hand
		_ = r.sink.Write(c.Data)
		c, _ = b.Next()
		_ = r.sink.Write(c.Data)
		if len(r.problems) != 0 {
			t.Fatalf("problems %v", r.problems)
		}
		_, _ = b.Next() // the second chunk said nothing was at hand
		if len(r.problems) != 1 || !strings.Contains(r.problems[0], "left unflushed") {
			t.Fatalf("problems %v", r.problems)
		}
	})
	t.Run("gone at the header", func(t *testing.T) {
		s := &sink{run: newTestRun(), c: ClientScript{FailHeader: true, FailWrite: -1, PanicWrite: -1, TimeoutWrite: -1}}
		if err := s.WriteHeader(200, nil); err == nil || !s.gone || s.run.left == "" {
			t.Fatalf("err %v gone %v left %q", err, s.gone, s.run.left)
		}
		if s.Write([]byte("x")) == nil {
			t.Fatal("a gone client took a write")
		}
	})
	t.Run("gone at the second write", func(t *testing.T) {
		s := &sink{run: newTestRun(), c: ClientScript{FailWrite: 1, PanicWrite: -1, TimeoutWrite: -1}}
		_ = s.WriteHeader(200, http.Header{})
		if s.Write([]byte("a")) != nil || s.Write([]byte("b")) == nil || s.Write([]byte("c")) == nil || s.body.String() != "a" {
			t.Fatalf("body %q", s.body.String())
		}
	})
	t.Run("panics at the header, once", func(t *testing.T) {
		s := &sink{run: newTestRun(), c: ClientScript{PanicHeader: true, FailWrite: -1, PanicWrite: -1, TimeoutWrite: -1}}
		if panics(func() { _ = s.WriteHeader(200, http.Header{}) }) == nil {
			t.Fatal("no panic")
		}
		if s.headers != 0 || s.run.panics != 1 || !s.run.escaped || !s.run.escapedUnsent {
			t.Fatalf("headers %d panics %d escaped %v/%v", s.headers, s.run.panics, s.run.escaped, s.run.escapedUnsent)
		}
		if err := s.WriteHeader(500, http.Header{}); err != nil || s.status != 500 {
			t.Fatalf("the second header: %v, status %d", err, s.status)
		}
	})
	t.Run("panics at the second write, once", func(t *testing.T) {
		s := &sink{run: newTestRun(), c: ClientScript{FailWrite: -1, PanicWrite: 1, TimeoutWrite: -1}}
		_ = s.WriteHeader(200, http.Header{})
		_ = s.Write([]byte("a"))
		if panics(func() { _ = s.Write([]byte("b")) }) == nil || s.run.escapedUnsent || s.run.panics != 1 {
			t.Fatal("no panic at the second write, or a wrong record of it")
		}
		if s.Write([]byte("c")) != nil || s.body.String() != "ac" {
			t.Fatalf("body %q", s.body.String())
		}
	})
}

func TestBodyDoesWhatItsScriptSays(t *testing.T) {
	m := fsm.New(nil)
	defer m.Release()
	defer m.ForceDone()
	_ = m.Fire(fsm.EventStart)
	r := newTestRun()
	read := func(b *body) (string, error) {
		var got []string
		for {
			c, err := b.Next()
			got = append(got, string(c.Data))
			if err != nil {
				return strings.Join(got, ""), err
			}
		}
	}
	got, err := read(&body{s: UpstreamScript{Chunks: 2, BreakAt: -1}, run: r})
	if got != "chunk-0;chunk-1;" || err != io.EOF {
		t.Fatalf("%q %v", got, err)
	}
	got, err = read(&body{s: UpstreamScript{Chunks: 1, SSE: true, BreakAt: -1}, run: r})
	if got != "data: {\"chunk\":0}\n\n" || err != io.EOF {
		t.Fatalf("%q %v", got, err)
	}
	got, err = read(&body{s: UpstreamScript{Chunks: 3, BreakAt: 1}, run: r})
	if got != "chunk-0;" || err == nil || err == io.EOF {
		t.Fatalf("%q %v", got, err)
	}
	var mores []bool
	for b := (&body{s: UpstreamScript{Chunks: 4, BreakAt: -1}, run: r}); ; {
		c, err := b.Next()
		if err != nil {
			break
		}
		mores = append(mores, c.More)
	}
	if fmt.Sprint(mores) != "[true false true false]" {
		t.Fatalf("More of four chunks: %v, want every other one, never the last", mores)
	}
	if c, _ := (&body{s: UpstreamScript{Chunks: 3, BreakAt: 1}, run: r}).Next(); c.More {
		t.Fatal("a chunk before a break said the next one was at hand")
	}
	if len(r.problems) != 0 {
		t.Fatalf("problems %v", r.problems)
	}
	ended := &body{s: UpstreamScript{Chunks: 0, BreakAt: -1}, run: r}
	_, _ = ended.Next()
	if _, err := ended.Next(); err != errReadAfterEnd || len(r.problems) != 1 || !strings.Contains(r.problems[0], "read after it ended") {
		t.Fatalf("a read past the end: %v, problems %v", err, r.problems)
	}
	if _, err := ended.Next(); err != io.EOF || len(r.problems) != 1 {
		t.Fatalf("a second read past the end: %v, problems %v", err, r.problems)
	}
	b := &body{s: UpstreamScript{Chunks: 3, BreakAt: 0, PanicBody: true}, run: r, attempt: m.Scope().Child(AttemptScope)}
	if panics(func() { _, _ = b.Next() }) == nil || r.panics != 1 {
		t.Fatal("the body did not panic where it should")
	}
	if b.Close(); r.closes != 1 || !b.attempt.Closed() {
		t.Fatalf("closes %d; the attempt ended: %v", r.closes, b.attempt.Closed())
	}
}

func TestScriptedActions(t *testing.T) {
	r := newTestRun()
	p := &scripted{s: PluginScript{Name: "p1", Body: []Action{{Kind: Exit, Status: 403}}}, run: r}
	if ex := p.act(Action{Kind: Exit, Status: 401}, fsm.StateAccess); ex.Status() != 401 || r.lastExit != "p1@access" {
		t.Fatalf("exit %d, last %q", ex.Status(), r.lastExit)
	}
	if panics(func() { p.act(Action{Kind: Panic}, fsm.StateLog) }) == nil || r.panics != 1 {
		t.Fatal("no panic")
	}
	if p.act(Action{Kind: Cancel}, fsm.StateAccess).Exited() || r.left == "" {
		t.Fatal("the client did not leave")
	}
	if p.act(Action{}, fsm.StateAccess).Exited() {
		t.Fatal("continue exited")
	}
	// Body actions go call by call; calls beyond the list continue.
	r.lastExit = ""
	p.BodyFilter(context.Background(), nil)
	if r.lastExit != "p1@body_filter" {
		t.Fatalf("the first body call did not exit: last exit %q", r.lastExit)
	}
	r.lastExit = ""
	p.BodyFilter(context.Background(), nil)
	if r.lastExit != "" {
		t.Fatal("the second body call exited")
	}
	if p.calls != 2 {
		t.Fatalf("%d body calls counted", p.calls)
	}
}

func TestKindNames(t *testing.T) {
	if Hold.String() != "hold" || Kind(len(kindNames)).String() != "kind(8)" {
		t.Fatalf("%s %s", Hold, Kind(len(kindNames)))
	}
	for failed, ok := range map[string]bool{"399": false, "400": true, "599": true, "600": false} {
		if _, err := Parse("upstream ok failed=" + failed); (err == nil) != ok {
			t.Errorf("failed=%s: %v", failed, err)
		}
	}
	if _, err := parseAction("exit:99"); err == nil {
		t.Error("exit:99 accepted")
	}
	if _, err := parseAction("exit:600"); err == nil {
		t.Error("exit:600 accepted")
	}
	for _, ok := range []string{"exit:100", "exit:599"} {
		if _, err := parseAction(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
}

func TestParseRefusesWhatItCannotRead(t *testing.T) {
	for _, bad := range []string{
		"plugin", "plugin p priority=x", "plugin p release=yes", "plugin p access=dance", "plugin p body=continue,dance", "plugin p colour=red",
		"upstream", "upstream sideways", "upstream ok status=x", "upstream ok failed=200", "upstream ok failed=x", "upstream ok colour=red",
		"client fail-write=x", "client panic-write=x", "client colour=red", "server",
	} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted it", bad)
		} else if !strings.HasPrefix(err.Error(), "line 1: ") {
			t.Errorf("Parse(%q): %v", bad, err)
		}
	}
	if s, err := Parse("# a comment\n\nclient stays"); err != nil || s.Client.FailWrite != -1 || s.Upstream.BreakAt != -1 {
		t.Errorf("%+v %v", s, err)
	}
}

// Handles kept from an ended request are used, and reach nothing of the
// next one, although its ids start again.
func TestStaleHandlesAreUsedAndInert(t *testing.T) {
	m := fsm.New(nil)
	_ = m.Fire(fsm.EventStart)
	kept := handles{scopes: []*fsm.Scope{m.Scope().Child("kept")}}
	kept.bindings = append(kept.bindings, m.Scope().Acquire(fsm.Resource{Name: "first"}, func() {}))
	m.ForceDone()
	m.Release()

	r := newTestRun()
	r.stale = kept
	m = fsm.New(nil)
	defer m.Release()
	m.SetLedger(r)
	_ = m.Fire(fsm.EventStart)
	held := m.Scope().Acquire(fsm.Resource{Name: "second"}, func() {})
	r.useStale("p1")
	if !strings.Contains(strings.Join(r.journal, "\n"), "p1 uses 2 handles kept from the previous request") || len(r.stale.bindings)+len(r.stale.scopes) != 0 {
		t.Fatalf("journal %q, left %+v", r.journal, r.stale)
	}
	if len(r.problems) > 0 || !held.Held() {
		t.Fatalf("problems %v; the second request's binding held: %v", r.problems, held.Held())
	}
	r.useStale("p2") // nothing left: nothing to say
	if strings.Contains(strings.Join(r.journal, "\n"), "p2 uses") {
		t.Fatal("used the same handles twice")
	}
	m.ForceDone()
}
