package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/phasegate/phasegate/bench/harness"
)

// target is one server under test, reached at base.
type target struct {
	Name  string        // column heading: "direct", "bare proxy", ...
	Key   string        // short id for files: "direct", "bare", "pg-plain", "pg-ai"
	base  string        // http://host:port
	host  string        // Host header to send ("" = the address), selecting a route
	admin string        // metrics address for allocation counters; "" = none
	proc  *harness.Proc // the process serving it, checked for liveness
}

// workload is one kind of request.
type workload struct {
	Name    string
	method  string
	path    string
	body    []byte
	header  http.Header
	stream  bool
	wantSub []byte // a non-stream body must contain this
}

// outcome is one request's measurement.
type outcome struct {
	total time.Duration // from sending to the end of the body
	ttft  time.Duration // streams: to the first data event with content
	err   error
}

// newClient is a keep-alive client for conns concurrent connections.
func newClient(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns * 2,
		MaxIdleConnsPerHost: conns * 2,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}}
}

// do sends one request of w to t and reads the whole response.
func (w *workload) do(ctx context.Context, c *http.Client, t *target, buf *bytes.Buffer) outcome {
	var body io.Reader
	if w.body != nil {
		body = bytes.NewReader(w.body)
	}
	req, err := http.NewRequestWithContext(ctx, w.method, t.base+w.path, body)
	if err != nil {
		return outcome{err: err}
	}
	for k, v := range w.header {
		req.Header[k] = v
	}
	if t.host != "" {
		req.Host = t.host
	}
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return outcome{err: err}
	}
	defer resp.Body.Close()
	var o outcome
	if w.stream {
		o.ttft, err = readStream(resp.Body, start)
	} else {
		buf.Reset()
		_, err = buf.ReadFrom(resp.Body)
		if err == nil && !bytes.Contains(buf.Bytes(), w.wantSub) {
			err = fmt.Errorf("unexpected body %.200q", buf.Bytes())
		}
	}
	o.total = time.Since(start)
	switch {
	case resp.StatusCode != http.StatusOK:
		o.err = fmt.Errorf("status %s", resp.Status)
	case err != nil:
		o.err = err
	}
	return o
}

var (
	contentField = []byte(`"content":"`)
	emptyContent = []byte(`"content":""`)
)

// hasContent reports whether an event's data carries non-empty content:
// a byte check, cheap enough for the load generator's hot path.
func hasContent(data []byte) bool {
	return bytes.Contains(data, contentField) && !bytes.Contains(data, emptyContent)
}

// readEvents reads a server-sent event stream until it ends, calling
// content once, when the first event carrying content arrives. It returns
// whether the stream sent "data: [DONE]" and the error that ended it (nil
// at a clean end).
func readEvents(r io.Reader, content func()) (done bool, err error) {
	seen := false
	err = harness.EachEvent(r, func(data []byte) {
		switch {
		case string(data) == harness.Done:
			done = true
		case !seen && hasContent(data):
			seen = true
			content()
		}
	})
	return done, err
}

// readStream reads a stream to its end and returns the time from start to
// the first event carrying non-empty content. The stream must end with
// "data: [DONE]".
func readStream(r io.Reader, start time.Time) (time.Duration, error) {
	var ttft time.Duration
	done, err := readEvents(r, func() { ttft = time.Since(start) })
	switch {
	case err != nil:
		return ttft, err
	case !done:
		return ttft, errors.New("stream ended without data: [DONE]")
	case ttft == 0:
		return ttft, errors.New("stream had no content event")
	}
	return ttft, nil
}

// tally collects outcomes.
type tally struct {
	mu      sync.Mutex
	totals  []time.Duration
	ttfts   []time.Duration
	n       int
	errs    int
	firstEr []string
}

func (t *tally) add(o outcome) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n++
	if o.err != nil {
		t.errs++
		if len(t.firstEr) < 3 {
			t.firstEr = append(t.firstEr, o.err.Error())
		}
		return
	}
	t.totals = append(t.totals, o.total)
	if o.ttft > 0 {
		t.ttfts = append(t.ttfts, o.ttft)
	}
}

// merge adds u's outcomes to t.
func (t *tally) merge(u *tally) {
	t.totals = append(t.totals, u.totals...)
	t.ttfts = append(t.ttfts, u.ttfts...)
	t.n += u.n
	t.errs += u.errs
	for _, e := range u.firstEr {
		if len(t.firstEr) < 3 {
			t.firstEr = append(t.firstEr, e)
		}
	}
}

// closedLoop runs conc workers sending requests back to back for d. It
// returns the outcomes and the time from start to the last response.
func closedLoop(ctx context.Context, c *http.Client, t *target, w *workload, conc int, d time.Duration) (*tally, time.Duration) {
	res := &tally{}
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			local := &tally{totals: make([]time.Duration, 0, 4096)}
			var buf bytes.Buffer
			for ctx.Err() == nil && time.Now().Before(deadline) {
				o := w.do(ctx, c, t, &buf)
				if ctx.Err() != nil {
					break
				}
				local.add(o)
			}
			res.mu.Lock()
			res.merge(local)
			res.mu.Unlock()
		})
	}
	wg.Wait()
	return res, time.Since(start)
}

// maxInFlight bounds an open loop's outstanding requests: beyond it the
// target is not keeping up, and the request counts as an error.
const maxInFlight = 2000

// openLoop sends requests at a fixed rate for d, each on its own
// goroutine whatever the previous ones are doing, and measures each from
// the moment it is sent. A request that cannot be sent within 1 ms of its
// scheduled time is counted in lateSends.
func openLoop(ctx context.Context, c *http.Client, t *target, w *workload, rate float64, d time.Duration) (res *tally, lateSends int) {
	res = &tally{}
	interval := time.Duration(float64(time.Second) / rate)
	n := int(d / interval)
	var inflight atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		at := start.Add(time.Duration(i) * interval)
		if wait := time.Until(at); wait > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
		}
		if ctx.Err() != nil {
			break
		}
		if time.Since(at) > time.Millisecond {
			lateSends++
		}
		if inflight.Load() >= maxInFlight {
			res.add(outcome{err: fmt.Errorf("more than %d requests in flight: the target does not keep up with %.0f/s", maxInFlight, rate)})
			continue
		}
		inflight.Add(1)
		wg.Go(func() {
			defer inflight.Add(-1)
			var buf bytes.Buffer
			o := w.do(ctx, c, t, &buf)
			if ctx.Err() == nil {
				res.add(o)
			}
		})
	}
	wg.Wait()
	return res, lateSends
}
