package redistest

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestStopPauseRestart(t *testing.T) {
	s := Start(t)
	addr := s.Addr()
	if err := ping(addr); err != nil {
		t.Fatalf("a started server: %v", err)
	}

	s.Pause()
	start := time.Now()
	if err := ping(addr); err == nil {
		t.Fatal("a paused server answered PING")
	}
	if took := time.Since(start); took < 900*time.Millisecond {
		t.Fatalf("a paused server failed PING in %v: it should hang, not refuse", took)
	}
	s.Resume()
	if err := ping(addr); err != nil {
		t.Fatalf("a resumed server: %v", err)
	}

	s.Stop()
	if err := ping(addr); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("a stopped server: %v, want connection refused", err)
	}
	s.Restart()
	if s.Addr() != addr {
		t.Fatalf("restarted on %s, want %s", s.Addr(), addr)
	}
	if err := ping(addr); err != nil {
		t.Fatalf("a restarted server: %v", err)
	}
	s.Pause() // the cleanup continues and kills a paused server
}

// recorder stands for a test to see Start fail or skip it.
type recorder struct {
	testing.TB
	fatal, skip string
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *recorder) Skip(args ...any) {
	r.skip = fmt.Sprint(args...)
	runtime.Goexit()
}

func startWithout(t *testing.T) *recorder {
	t.Setenv("PATH", t.TempDir())
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Start(r)
	}()
	<-done
	return r
}

func TestMissingServerSkipsUnlessRequired(t *testing.T) {
	t.Setenv(RequireEnv, "")
	if r := startWithout(t); r.skip == "" || r.fatal != "" || !strings.Contains(r.skip, "make test") {
		t.Errorf("without %s: skip %q, fatal %q; want a skip naming make test", RequireEnv, r.skip, r.fatal)
	}
	t.Setenv(RequireEnv, "1")
	if r := startWithout(t); r.fatal == "" || r.skip != "" {
		t.Errorf("with %s: skip %q, fatal %q; want a failure", RequireEnv, r.skip, r.fatal)
	}
}
