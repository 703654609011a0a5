package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/phasegate/phasegate/bench/harness"
)

// manyResult is the memory held by many concurrent slow streams.
type manyResult struct {
	Target     string
	Route      string // what the streams went through
	N          int    // streams asked for
	Opened     int    // streams that delivered their first content event
	Hold       time.Duration
	Idle       harness.Metrics // before
	Open       harness.Metrics // with every stream open
	Closed     harness.Metrics // after closing them all and the gauges settled
	ZeroAfter  time.Duration
	GaugesZero bool
	Errors     int
	ErrMsg     []string
	HasGauges  bool // phasegate: the active gauges were read
}

func (m *manyResult) perStream(metric string) float64 {
	if m.Opened == 0 {
		return 0
	}
	return (m.Open.Sum(metric) - m.Idle.Sum(metric)) / float64(m.Opened)
}

// rampInterval spaces the streams' starts (1,000 per second), so that
// the listeners' accept queues never overflow.
const rampInterval = time.Millisecond

// manyStreams holds n slow streams open through t at once, reads t's
// memory and goroutines with all of them open, closes them from the client
// side and waits for phasegate's active gauges to return to 0.
func manyStreams(ctx context.Context, t *target, route string, n int, hold time.Duration, progress func(string)) (*manyResult, error) {
	res := &manyResult{Target: t.Name, Route: route, N: n, Hold: hold}
	const chunks = 20
	w := streamWorkload(chunks, (hold / chunks).String())

	// Warm the target up (pools, lazy init) with quick streams, then let
	// it settle before the idle reading.
	progress(fmt.Sprintf("%s: warm-up", t.Name))
	quick := streamWorkload(4, "0s")
	wc := newClient(8)
	warm, _ := closedLoop(ctx, wc, t, quick, 8, time.Second)
	wc.CloseIdleConnections()
	if err := firstError(ctx, t, warm); err != nil {
		return nil, err
	}
	if err := sleep(ctx, time.Second); err != nil {
		return nil, err
	}
	var err error
	if res.Idle, err = scrape(ctx, t.admin); err != nil {
		return nil, err
	}

	client := &http.Client{Transport: &http.Transport{
		Proxy:              nil,
		DialContext:        (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		DisableCompression: true,
		DisableKeepAlives:  true,
	}}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var opened atomic.Int64
	allOpen := make(chan struct{})
	var mu sync.Mutex
	var wg sync.WaitGroup
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		res.Errors++
		if len(res.ErrMsg) < 3 {
			res.ErrMsg = append(res.ErrMsg, err.Error())
		}
	}
	progress(fmt.Sprintf("%s: opening %d streams of %s each", t.Name, n, hold))
	for i := range n {
		if i > 0 {
			if err := sleep(ctx, rampInterval); err != nil {
				return nil, err
			}
		}
		wg.Go(func() {
			err := holdStream(sctx, client, t, w, func() {
				if opened.Add(1) == int64(n) {
					close(allOpen)
				}
			})
			if err != nil && sctx.Err() == nil {
				fail(err)
			}
		})
	}
	select {
	case <-allOpen:
	case <-time.After(hold / 2):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	res.Opened = int(opened.Load())
	if err := sleep(ctx, time.Second); err != nil {
		return nil, err
	}
	if res.Open, err = scrape(ctx, t.admin); err != nil {
		return nil, err
	}
	if err := alive(t); err != nil {
		return nil, err
	}
	progress(fmt.Sprintf("%s: %d streams open; closing them", t.Name, res.Opened))
	closedAt := time.Now()
	cancel()
	wg.Wait()
	client.CloseIdleConnections()

	res.HasGauges = res.Open.Has(harness.MetricHTTPActive)
	deadline := time.Now().Add(15 * time.Second)
	for {
		if res.Closed, err = scrape(ctx, t.admin); err != nil {
			return nil, err
		}
		if !res.HasGauges || (res.Closed.Sum(harness.MetricHTTPActive) == 0 && res.Closed.Sum(harness.MetricLLMActive) == 0) {
			res.GaugesZero = res.HasGauges
			res.ZeroAfter = time.Since(closedAt)
			break
		}
		if time.Now().After(deadline) {
			break
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return nil, err
		}
	}
	return res, alive(t)
}

// holdStream sends one stream request and reads it until ctx is cancelled
// or the stream ends, calling opened once its first content event arrived.
func holdStream(ctx context.Context, c *http.Client, t *target, w *workload, opened func()) error {
	req, err := http.NewRequestWithContext(ctx, w.method, t.base+w.path, bytes.NewReader(w.body))
	if err != nil {
		return err
	}
	for k, v := range w.header {
		req.Header[k] = v
	}
	if t.host != "" {
		req.Host = t.host
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	isOpen := false
	_, err = readEvents(resp.Body, func() {
		isOpen = true
		opened()
	})
	if !isOpen {
		return fmt.Errorf("stream ended before its first content (%v)", err)
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
