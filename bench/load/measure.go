package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"
)

// settings are the measurement parameters (from the flags).
type settings struct {
	duration    time.Duration
	warmup      time.Duration
	concurrency int
	rate        float64
	streamRate  float64
	chunks      int
	chunkDelay  time.Duration
	rounds      int
}

// measurement is what one target got in one section.
type measurement struct {
	// Closed loop at a fixed concurrency.
	RPS    float64
	Closed latencies
	// Open loop at a fixed rate.
	Open  latencies
	Late  int // open-loop sends more than 1 ms behind schedule
	Sends int // open-loop sends
	// Streams (open loop at the stream rate).
	TTFT   latencies
	Total  latencies
	Cost   *cost // per request (per stream); nil: not measured
	N      int   // requests made, all loops
	Errors int
	ErrMsg []string
}

func (m *measurement) count(t *tally) {
	m.N += t.n
	m.Errors += t.errs
	for _, e := range t.firstEr {
		if len(m.ErrMsg) < 3 {
			m.ErrMsg = append(m.ErrMsg, e)
		}
	}
}

// section is one comparison: one workload, several targets, one upstream.
type section struct {
	Title    string
	Upstream string // what served the requests, said in the report
	Workload *workload
	Targets  []*target
	Results  map[string]*measurement // by target key
	Stream   bool

	// Events is the number of content events per response when the
	// workload is a stream measured like requests (back to back): the
	// report then shows server CPU per event.
	Events int
	// Concurrency overrides the closed loop's concurrency for this section.
	Concurrency int
}

// settingsFor is cfg with the section's own concurrency, if it has one.
func (s *section) settingsFor(cfg settings) settings {
	if s.Concurrency > 0 {
		cfg.concurrency = s.Concurrency
	}
	return cfg
}

// order returns the targets in round r: alternately forwards and
// backwards, so that drift on a noisy machine does not always favour the
// same target.
func order(ts []*target, r int) []*target {
	out := slices.Clone(ts)
	if r%2 == 1 {
		slices.Reverse(out)
	}
	return out
}

func meter(t *target) *costMeter {
	m := &costMeter{addr: t.admin}
	if t.proc != nil {
		m.pid = t.proc.Pid()
	}
	return m
}

func alive(t *target) error {
	if t.proc == nil {
		return nil
	}
	return t.proc.Alive()
}

// runThroughput measures a non-stream section: warm-up, then the closed
// loop and the open loop, each split into rounds interleaving the targets.
func runThroughput(ctx context.Context, s *section, cfg settings, progress func(string)) error {
	cfg = s.settingsFor(cfg)
	s.Results = map[string]*measurement{}
	clients := map[string]*http.Client{}
	meters := map[string]*costMeter{}
	closed := map[string]*tally{}
	elapsed := map[string]time.Duration{}
	open := map[string]*tally{}
	for _, t := range s.Targets {
		clients[t.Key] = newClient(cfg.concurrency)
		meters[t.Key] = meter(t)
		closed[t.Key], open[t.Key] = &tally{}, &tally{}
		s.Results[t.Key] = &measurement{}
	}
	defer func() {
		for _, c := range clients {
			c.CloseIdleConnections()
		}
	}()
	slice := cfg.duration / time.Duration(cfg.rounds)
	for _, t := range s.Targets {
		progress(fmt.Sprintf("%s: warm-up %s", t.Name, cfg.warmup))
		w, _ := closedLoop(ctx, clients[t.Key], t, s.Workload, cfg.concurrency, cfg.warmup)
		if err := firstError(ctx, t, w); err != nil {
			return err
		}
	}
	for r := range cfg.rounds {
		for _, t := range order(s.Targets, r) {
			progress(fmt.Sprintf("%s: closed loop, %d concurrent, %s (round %d/%d)", t.Name, cfg.concurrency, slice, r+1, cfg.rounds))
			if r > 0 {
				closedLoop(ctx, clients[t.Key], t, s.Workload, cfg.concurrency, min(cfg.warmup, 250*time.Millisecond))
			}
			before, err := meters[t.Key].start(ctx)
			if err != nil {
				return err
			}
			res, d := closedLoop(ctx, clients[t.Key], t, s.Workload, cfg.concurrency, slice)
			if err := meters[t.Key].add(ctx, before, res.n); err != nil {
				return err
			}
			if err := firstError(ctx, t, res); err != nil {
				return err
			}
			closed[t.Key].merge(res)
			elapsed[t.Key] += d
		}
	}
	for r := range cfg.rounds {
		for _, t := range order(s.Targets, r) {
			progress(fmt.Sprintf("%s: open loop, %.0f req/s, %s (round %d/%d)", t.Name, cfg.rate, slice, r+1, cfg.rounds))
			res, late := openLoop(ctx, clients[t.Key], t, s.Workload, cfg.rate, slice)
			if err := firstError(ctx, t, res); err != nil {
				return err
			}
			open[t.Key].merge(res)
			s.Results[t.Key].Late += late
		}
	}
	for _, t := range s.Targets {
		m := s.Results[t.Key]
		c, o := closed[t.Key], open[t.Key]
		m.count(c)
		m.count(o)
		m.RPS = float64(c.n) / elapsed[t.Key].Seconds()
		m.Closed = summarize(c.totals)
		m.Open = summarize(o.totals)
		m.Sends = o.n
		m.Cost = meters[t.Key].result()
	}
	return nil
}

// runStreams measures a stream section: an open loop of streams at the
// stream rate, time to first token and total time of each.
func runStreams(ctx context.Context, s *section, cfg settings, progress func(string)) error {
	s.Results = map[string]*measurement{}
	clients := map[string]*http.Client{}
	meters := map[string]*costMeter{}
	all := map[string]*tally{}
	for _, t := range s.Targets {
		clients[t.Key] = newClient(cfg.concurrency)
		meters[t.Key] = meter(t)
		all[t.Key] = &tally{}
		s.Results[t.Key] = &measurement{}
	}
	defer func() {
		for _, c := range clients {
			c.CloseIdleConnections()
		}
	}()
	for _, t := range s.Targets {
		progress(fmt.Sprintf("%s: warm-up %s", t.Name, cfg.warmup))
		w, _ := openLoop(ctx, clients[t.Key], t, s.Workload, cfg.streamRate, cfg.warmup)
		if err := firstError(ctx, t, w); err != nil {
			return err
		}
	}
	slice := cfg.duration / time.Duration(cfg.rounds)
	for r := range cfg.rounds {
		for _, t := range order(s.Targets, r) {
			progress(fmt.Sprintf("%s: %.0f streams/s, %s (round %d/%d)", t.Name, cfg.streamRate, slice, r+1, cfg.rounds))
			before, err := meters[t.Key].start(ctx)
			if err != nil {
				return err
			}
			res, late := openLoop(ctx, clients[t.Key], t, s.Workload, cfg.streamRate, slice)
			if err := meters[t.Key].add(ctx, before, res.n); err != nil {
				return err
			}
			if err := firstError(ctx, t, res); err != nil {
				return err
			}
			all[t.Key].merge(res)
			s.Results[t.Key].Late += late
		}
	}
	for _, t := range s.Targets {
		m := s.Results[t.Key]
		m.count(all[t.Key])
		m.TTFT = summarize(all[t.Key].ttfts)
		m.Sends = all[t.Key].n
		m.Total = summarize(all[t.Key].totals)
		m.Cost = meters[t.Key].result()
	}
	return nil
}

// firstError reports a cancelled run, a dead server or a loop in which no
// request succeeded. Failed requests are counted, reported, and make the
// run fail at its end; they do not stop it.
func firstError(ctx context.Context, t *target, res *tally) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := alive(t); err != nil {
		return err
	}
	if res.n == res.errs {
		msg := "none sent"
		if len(res.firstEr) > 0 {
			msg = res.firstEr[0]
		}
		return fmt.Errorf("%s: no request succeeded (%d sent): %s", t.Name, res.n, msg)
	}
	return nil
}
