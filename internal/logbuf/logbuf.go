// Package logbuf batches log writes: one write(2) per request for the
// access log was a measurable share of the gateway's CPU under load (see
// docs/benchmarks.md), so the binary writes its JSON lines through a
// Writer that flushes when its buffer fills, on a short interval, on any
// line at warn level or above, and on Close.
package logbuf

import (
	"io"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Writer is a goroutine-safe batching writer for zerolog. Lines written
// through it reach the underlying writer at the latest Interval later.
type Writer struct {
	mu   sync.Mutex
	w    io.Writer
	buf  []byte
	size int
	err  error

	stop chan struct{}
	done chan struct{}
}

// New returns a Writer that batches up to size bytes for w and flushes at
// least every interval. Close it to flush the rest and stop its goroutine.
func New(w io.Writer, size int, interval time.Duration) *Writer {
	b := &Writer{w: w, buf: make([]byte, 0, size), size: size, stop: make(chan struct{}), done: make(chan struct{})}
	go b.loop(interval)
	return b
}

func (b *Writer) loop(interval time.Duration) {
	defer close(b.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			_ = b.Flush()
		case <-b.stop:
			return
		}
	}
}

// Write buffers p, flushing first if p would not fit.
func (b *Writer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.buf)+len(p) > b.size {
		if err := b.flushLocked(); err != nil {
			return 0, err
		}
		if len(p) > b.size {
			return b.w.Write(p)
		}
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}

// WriteLevel implements zerolog.LevelWriter: lines at warn level or above
// are written at once, after what is buffered, so problems are never
// delayed.
func (b *Writer) WriteLevel(l zerolog.Level, p []byte) (int, error) {
	n, err := b.Write(p)
	if err == nil && l >= zerolog.WarnLevel && l != zerolog.NoLevel {
		err = b.Flush()
	}
	return n, err
}

// Flush writes what is buffered.
func (b *Writer) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.flushLocked()
}

func (b *Writer) flushLocked() error {
	if len(b.buf) == 0 {
		return b.err
	}
	_, err := b.w.Write(b.buf)
	b.buf = b.buf[:0]
	if err != nil {
		b.err = err
	}
	return err
}

// Close flushes and stops the interval flushes. The Writer stays usable
// (unbuffered from then on is not promised; later writes are flushed by the
// next Close or Flush).
func (b *Writer) Close() error {
	select {
	case <-b.stop:
	default:
		close(b.stop)
	}
	<-b.done
	return b.Flush()
}

var _ zerolog.LevelWriter = (*Writer)(nil)
