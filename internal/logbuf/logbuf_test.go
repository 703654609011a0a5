package logbuf

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type lockedBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writes++
	return l.b.Write(p)
}

func (l *lockedBuffer) snapshot() (string, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String(), l.writes
}

func TestBatchesAndFlushesOnCloseSizeAndWarn(t *testing.T) {
	out := &lockedBuffer{}
	w := New(out, 128, time.Hour)
	log := zerolog.New(w)
	log.Info().Msg("a")
	log.Info().Msg("b")
	if s, _ := out.snapshot(); s != "" {
		t.Fatalf("info lines were not batched: %q", s)
	}
	log.Warn().Msg("c")
	if s, n := out.snapshot(); strings.Count(s, "\n") != 3 || n != 1 {
		t.Fatalf("a warn line must flush everything before it in one write: %d writes, %q", n, s)
	}
	log.Info().Str("pad", strings.Repeat("x", 200)).Msg("big") // larger than the buffer
	if s, _ := out.snapshot(); strings.Count(s, "\n") != 4 {
		t.Fatalf("an oversized line was held back: %q", s)
	}
	log.Info().Msg("d")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if s, _ := out.snapshot(); strings.Count(s, "\n") != 5 || !strings.HasSuffix(s, "\"d\"}\n") {
		t.Fatalf("Close lost a line: %q", s)
	}
}

func TestIntervalFlush(t *testing.T) {
	out := &lockedBuffer{}
	w := New(out, 4096, 10*time.Millisecond)
	defer w.Close()
	l := zerolog.New(w)
	l.Info().Msg("soon")
	deadline := time.Now().Add(2 * time.Second)
	for {
		if s, _ := out.snapshot(); strings.Contains(s, "soon") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the interval never flushed")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestConcurrentWritesKeepLinesWhole(t *testing.T) {
	out := &lockedBuffer{}
	w := New(out, 256, time.Millisecond)
	log := zerolog.New(w)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				log.Info().Int("j", j).Msg("line")
			}
		}()
	}
	wg.Wait()
	_ = w.Close()
	s, _ := out.snapshot()
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	if len(lines) != 1600 {
		t.Fatalf("%d lines, want 1600", len(lines))
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, `{"level":"info"`) || !strings.HasSuffix(l, `"message":"line"}`) {
			t.Fatalf("a line was torn: %q", l)
		}
	}
}
