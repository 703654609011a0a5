// Package soak is phasegate's soak test: it runs the real phasegate binary
// with its in-process mock LLM, drives a mixed load through it for a while
// and then checks that nothing leaked and that every request was accounted
// for exactly once.
//
// The traffic mixes plain and AI routes; streamed and non-streamed
// completions; prompts and replies that content moderation refuses
// (request side, response side, mid-stream); the prompt guard;
// ai-proxy-multi failing over three instances (network, 429, 5xx) to the
// mock; upstream 429 and 5xx passthrough, resets before the body and
// mid-stream, hangs past the timeout, stalls mid-stream and slow first
// bytes; clients that disconnect before the headers, mid-stream and right
// after the last event; unknown paths. The Anthropic Messages door (to
// the mock's Messages API, and translated to its Chat Completions) and
// the OpenAI Responses door (translated to Chat Completions) meet the same
// (doors.go): replies whole and streamed, moderation refusals of the
// prompt and mid-stream, the prompt guard, upstream 429 and 500, clients
// that leave mid-stream and stalls past the timeout, every reply read in
// the door's own protocol and checked well formed, never with a Chat
// frame or [DONE] in it. An eighth of the clients are
// hostile. Some break the pace HTTP expects, each bounded by the config's
// client: block (short bounds, so that the run stays short): bodies that
// declare 8 MiB, send a byte and stall (408); readers that stop reading a
// long stream (the connection is closed); request heads that arrive
// slowly, in time or not at all; and keep-alive connections left idle,
// within idle_timeout or past it. Others play with what they send: request
// lines written as they are, with dot-segments (also %2e), repeated or
// encoded slashes and paths above the root, aimed at a route behind
// key-auth beside an open one, both to a site in the soak's process that
// resolves paths as a file server does (401, 200 with the key, 400);
// JSON bodies with a duplicate or loosely cased key on every AI route
// (400 naming the key, no upstream call); and bursts of model names never
// seen before, past the config's metrics.max_models_per_route of 8. Each
// scenario knows the route, status and cause phasegate must record for
// each of its requests (or that it records none), and where it matters
// the canonical path, exit plugin, consumer, model and whether an
// upstream was called, so the clients keep an exact tally. Halfway
// through, the config file is rewritten (a new route, a new deny message)
// and phasegate is sent SIGHUP; then an invalid file is sent and must be
// rejected, and the valid one restored.
//
// Before the load, as many bodies as there are clients stall at once, and
// phasegate's heap is read while they do: a stalled body must cost a small
// buffer, not its declared length. At the end, once phasegate is
// quiescent, the soak checks that every sample of
// phasegate_http_active_requests and phasegate_llm_active_connections is
// 0, with LLM series on every AI route, each door included; that
// phasegate_http_requests_total by (route, code) equals the
// clients' tally; that the access log has one line per request (each
// request id exactly once, with the fields its scenario expects); that
// phasegate_lifecycle_aborts_total by (route, cause) equals the access
// log's aborted requests; that phasegate_llm_requests_total by route and
// protocols equals the access log's served requests, each door served in
// its own protocols; that no phasegate_llm_* metric has more model
// values on a route than the limit plus "other", and that "other" was
// used; that no request reached the site's admin area without the
// consumer's key, and the site got each request meant for it once, by
// its canonical path, without the key; that go_goroutines is back to its
// post-warm-up baseline; that RSS grew less than a bound; that no
// response was unexpected; that the reloads were applied and rejected as
// intended; and that SIGTERM ends phasegate with exit code 0.
//
// Run it with `go run ./bench/soak/cmd/soak -duration 30s -concurrency 64`
// from the module; TestSoak runs a 5-second version.
package soak

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/phasegate/phasegate/bench/harness"
)

// Options configure a soak run. The zero value is the default run.
type Options struct {
	// Duration of the main load, after the warm-up. Default 30s.
	Duration time.Duration
	// Concurrency is the number of concurrent clients, an eighth of them
	// hostile. Default 64.
	Concurrency int
	// Binary is a phasegate binary to run. Default: build
	// ./cmd/phasegate into WorkDir (the current directory must be inside
	// the module).
	Binary string
	// WorkDir holds the binary, the config and phasegate's log; it is
	// left as it is. Default: a new temporary directory, removed after a
	// passing run and kept after a failing one (its path is in the report
	// or the error).
	WorkDir string
	// Seed seeds the workers' scenario choices. Default: random.
	Seed uint64
	// RSSBound is the largest RSS growth accepted. Default
	// DefaultRSSBound.
	RSSBound int64
	// GoroutineTolerance is how many goroutines above the baseline are
	// accepted at the end. Default DefaultGoroutineTolerance.
	GoroutineTolerance int
	// Progress receives a line per stage (nil: none).
	Progress io.Writer
}

// DefaultRSSBound is the accepted RSS growth, end minus post-warm-up
// baseline.
//
// Why 64 MiB: the baseline is taken after a warm-up that ran every
// scenario, opened twice the client concurrency in upstream connections
// and stalled as many bodies at once as there are clients, so the pools'
// buffers are already in it. What may legitimately grow afterwards is the
// Go heap's headroom (GOGC=100 lets the heap reach twice the live data
// before a collection, and the runtime returns freed pages to the OS only
// gradually) and fragmentation under a different mix of in-flight
// requests. The live data of 64 concurrent requests is a few MiB (a 32 KiB
// read buffer per plain body, a few KiB per AI request, at most a 16 KiB
// buffer per stalled body), so an honest run stays far below the bound: in
// our runs of the default 30 s at 64 clients, RSS ended between 5 MiB
// below and 1 MiB above a baseline of 26 to 29 MiB. The bound is
// generous for a shared machine and still catches a per-request leak: the
// default run sends about 30,000 requests, so anything over about 2 KiB
// per request (a retained body or buffer, a goroutine's stack of at least
// 8 KiB) crosses it. Goroutine leaks are caught more precisely by the
// goroutine check, and a body buffer grown ahead of the bytes received by
// the stalled-bodies check.
const DefaultRSSBound = 64 << 20

// DefaultGoroutineTolerance is how many goroutines above the baseline are
// accepted at the end. Both counts are phasegate's go_goroutines minus
// goroutinesPerConn per idle phasegate→mock connection (counted in
// /proc/net/tcp), since that pool grows and shrinks with the traffic
// (every cancelled upstream request closes its connection); the clients'
// own connections are closed before each reading. What is left is the
// process's fixed set (about 10), which an honest run returns to exactly;
// the slack covers a runtime or timer goroutine caught mid-flight. A leak
// of one goroutine per request, or per failed attempt, would be hundreds
// even in the 5-second test.
const DefaultGoroutineTolerance = 8

func (o *Options) setDefaults() {
	if o.Duration <= 0 {
		o.Duration = 30 * time.Second
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 64
	}
	if o.RSSBound <= 0 {
		o.RSSBound = DefaultRSSBound
	}
	if o.GoroutineTolerance <= 0 {
		o.GoroutineTolerance = DefaultGoroutineTolerance
	}
	if o.Seed == 0 {
		o.Seed = rand.Uint64()
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
}

// hostileClients is how many of n concurrent clients are hostile: an
// eighth, and at least one of two or more. Hostile clients pick only
// hostile scenarios, so that the seconds each of them holds do not thin
// out the ordinary traffic.
func hostileClients(n int) int {
	if n < 2 {
		return 0
	}
	return max(1, n/8)
}

// Timeouts of the run's stages.
const (
	quiesceTimeout = 15 * time.Second // for the gauges to fall and the counters to catch up
	settleTimeout  = 10 * time.Second // for goroutines to fall back after the clients' connections close
	// settleQuiet is how long the goroutine count must hold still to be
	// read as settled: longer than net/http lingers (500 ms) on a
	// connection it answered with Connection: close, as a 408 is.
	settleQuiet      = time.Second
	reloadTimeout    = 10 * time.Second // for a reload's log line
	terminateTimeout = 20 * time.Second // for phasegate to exit after SIGTERM (shutdown_timeout is 10s)
	startTimeout     = 15 * time.Second // for phasegate's "phasegate serving" line
	requestTimeout   = 30 * time.Second // per request: a scenario that outlives it is unexpected
)

// record is one request sent: what the soak expects of its access-log line.
type record struct {
	id       string
	scenario int
	code     int     // the status phasegate should have recorded
	want     logWant // what else its access-log line must show
}

// runState is shared by the workers, the reloader and the sampler.
type runState struct {
	opts      Options
	cl        *client
	base      *picker // for the ordinary clients
	hostile   *picker // for the hostile ones
	site      *site   // the path games' upstream
	seq       atomic.Uint64
	reloaded  atomic.Bool
	mu        sync.Mutex
	tally     Tally
	records   []record
	runs      []int // per scenario
	unexpect  []int // per scenario
	samples   []string
	maxActive float64 // peak of phasegate_http_active_requests seen by the sampler
	maxLLM    float64
}

// do runs scenario i once and accounts for it.
func (st *runState) do(ctx context.Context, i int, rng *rand.Rand) {
	sc := scenarios[i]
	// A client that sends no complete request still gets an id, for the
	// part of a head it sends.
	ids := make([]string, max(sc.logged(), 1))
	wants := make([]logWant, len(ids))
	for k := range ids {
		ids[k] = fmt.Sprintf("soak-%07d", st.seq.Add(1))
		wants[k] = sc.want
	}
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	status, err := sc.run(&call{ctx: rctx, cl: st.cl, id: ids[0], ids: ids, want: wants, rng: rng, site: st.site})
	cancel()
	code := status
	if code == 0 {
		code = sc.code
	}
	if err == nil && code != sc.code {
		err = fmt.Errorf("status %d, want %d", code, sc.code)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	st.runs[i]++
	for k, id := range ids[:sc.logged()] {
		st.tally.Add(sc.route, code)
		st.records = append(st.records, record{id: id, scenario: i, code: code, want: wants[k]})
	}
	if err != nil {
		st.unexpect[i]++
		if len(st.samples) < 12 {
			st.samples = append(st.samples, fmt.Sprintf("%s %s: %v", sc.name, ids[0], err))
		}
	}
}

// Run runs the soak. It returns an error when the soak could not run
// (building or starting phasegate, a cancelled ctx); otherwise the Report
// says whether the run passed (Report.OK). phasegate is ended on every
// path.
func Run(ctx context.Context, opts Options) (rep *Report, err error) {
	opts.setDefaults()
	start := time.Now()
	var progressMu sync.Mutex
	progress := func(format string, args ...any) {
		progressMu.Lock()
		defer progressMu.Unlock()
		fmt.Fprintf(opts.Progress, "soak %6.1fs: %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	rep = &Report{Duration: opts.Duration, Concurrency: opts.Concurrency, Seed: opts.Seed}

	workDir, ownDir := opts.WorkDir, false
	if workDir == "" {
		if workDir, err = os.MkdirTemp("", "phasegate-soak-"); err != nil {
			return nil, err
		}
		ownDir = true
	}
	defer func() {
		// Keep our own directory only when it holds something to look at.
		_, logErr := os.Stat(filepath.Join(workDir, "phasegate.log"))
		switch {
		case !ownDir:
		case err != nil && logErr == nil:
			err = fmt.Errorf("%w (config and phasegate log kept in %s)", err, workDir)
		case err == nil && !rep.OK():
			rep.WorkDir = workDir
		default:
			os.RemoveAll(workDir)
		}
	}()

	// Each client holds a connection to phasegate, which holds one to the
	// mock, which holds the other end: a few descriptors per client, and
	// more for pools and stragglers.
	if note := harness.RaiseNoFile(uint64(16*opts.Concurrency + 1024)); note != "" {
		progress("%s", note)
	}

	bin := opts.Binary
	if bin == "" {
		progress("building ./cmd/phasegate")
		root, err := harness.ModuleRoot(ctx)
		if err != nil {
			return nil, err
		}
		if bin, err = harness.Build(ctx, root, workDir, nil); err != nil {
			return nil, err
		}
	}
	rep.Binary = bin

	mockAddr, err := freePort()
	if err != nil {
		return nil, err
	}
	deadAddr, err := freePort()
	if err != nil {
		return nil, err
	}
	st := &runState{
		opts:     opts,
		base:     newPicker(scenarios, 0, len(ordinaryScenarios)),
		hostile:  newPicker(scenarios, len(ordinaryScenarios), len(scenarios)),
		tally:    Tally{},
		runs:     make([]int, len(scenarios)),
		unexpect: make([]int, len(scenarios)),
	}
	if st.site, err = startSite(); err != nil {
		return nil, err
	}
	defer st.site.close()
	params := configParams{Mock: mockAddr, Dead: deadAddr, Site: st.site.addr(), Version: 1}
	cfgPath := filepath.Join(workDir, "phasegate.yaml")
	if err := soakConfig(params).WriteFile(cfgPath); err != nil {
		return nil, err
	}
	if err := harness.Validate(ctx, bin, cfgPath); err != nil {
		return nil, err
	}
	// The reload's config must be valid too, and the invalid one invalid,
	// before the run relies on it.
	v2 := params
	v2.Version = 2
	bad := v2
	bad.Invalid = true
	for _, p := range []configParams{v2, bad} {
		probe := filepath.Join(workDir, fmt.Sprintf("probe-v%d-%t.yaml", p.Version, p.Invalid))
		if err := soakConfig(p).WriteFile(probe); err != nil {
			return nil, err
		}
		err := harness.Validate(ctx, bin, probe)
		if p.Invalid != (err != nil) {
			return nil, fmt.Errorf("config probe (version %d, invalid %t): validate says %v", p.Version, p.Invalid, err)
		}
	}

	gw, err := harness.Start(ctx, harness.Spec{
		Name: "phasegate", Dir: workDir, Path: bin, Args: []string{"run", "-c", cfgPath},
		Ready: harness.PhasegateReady, ReadyTimeout: startTimeout,
	})
	if err != nil {
		return nil, err
	}
	defer gw.Kill()
	progress("phasegate serving on %s (admin %s, mock LLM %s)", gw.Listen, gw.Admin, mockAddr)

	// The clients close idle connections before phasegate's idle_timeout
	// does, so that no request is written to a connection being closed.
	clientTransport := harness.NewTransport(4*opts.Concurrency+16, idleTimeout/2)
	defer clientTransport.CloseIdleConnections()
	adminTransport := harness.NewTransport(2, idleTimeout/2)
	defer adminTransport.CloseIdleConnections()
	admin := &http.Client{Transport: adminTransport, Timeout: 10 * time.Second}
	metricsURL := "http://" + gw.Admin + "/metrics"

	st.cl = &client{base: "http://" + gw.Listen, addr: gw.Listen, hc: &http.Client{Transport: clientTransport}}

	// Warm-up: every scenario once, all at once; then twice the
	// concurrency of slow requests at once, so that the upstream pools and
	// their buffers are as large as the run will need before the RSS
	// baseline is taken; then as many stalled bodies at once, to read what
	// they cost.
	progress("warm-up")
	if err := st.warmUp(ctx); err != nil {
		return nil, err
	}
	if rep.Stall, err = st.stallBodies(ctx, admin, metricsURL, opts.Concurrency); err != nil {
		return nil, fmt.Errorf("stalled bodies: %w", err)
	}
	progress("%d bodies stalled at once: %s", rep.Stall.Bodies, rep.Stall)
	rep.WarmUpRequests = len(st.records)
	clientTransport.CloseIdleConnections()
	mockPort := port(mockAddr)
	base, err := settle(ctx, admin, metricsURL, mockPort, nil)
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	rep.BaselineGoroutines, rep.BaselinePooled = base.goroutines, base.pooled
	rep.BaselineRSS, _ = base.m.Value(harness.MetricRSS)
	progress("baseline: %d goroutines (%d pooled upstream connections), RSS %s", int(rep.BaselineGoroutines), rep.BaselinePooled, mib(rep.BaselineRSS))

	// The load.
	rep.Hostile = hostileClients(opts.Concurrency)
	progress("load: %s at %d concurrent clients, %d of them hostile (seed %d)", opts.Duration, opts.Concurrency, rep.Hostile, opts.Seed)
	loadStart := time.Now()
	loadCtx, stopLoad := context.WithTimeout(ctx, opts.Duration)
	defer stopLoad()
	var wg sync.WaitGroup
	for w := range opts.Concurrency {
		p := st.base
		if w < rep.Hostile {
			p = st.hostile
		}
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(opts.Seed, uint64(w)))
			for loadCtx.Err() == nil {
				// A request is not cut by the end of the load: it runs to
				// its own end, so that its expectation holds.
				st.do(ctx, p.pick(rng, st.reloaded.Load()), rng)
			}
		})
	}
	reloadDone := make(chan reloadResult, 1)
	go func() { reloadDone <- st.reload(ctx, loadCtx, gw, cfgPath, v2, bad, opts.Duration/2, progress) }()
	samplerDone := make(chan struct{})
	go func() { defer close(samplerDone); st.sample(loadCtx, admin, metricsURL) }()
	wg.Wait()
	rep.LoadTime = time.Since(loadStart)
	stopLoad()
	<-samplerDone
	rl := <-reloadDone
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rep.LoadRequests = len(st.records) - rep.WarmUpRequests
	progress("load done: %d requests in %s", rep.LoadRequests, rep.LoadTime.Round(time.Millisecond))

	// Quiescence: every request has ended on the client; wait until
	// phasegate has finished them too.
	final, quiet, err := quiesce(ctx, admin, metricsURL, len(st.records))
	if err != nil {
		return nil, fmt.Errorf("scraping after the load: %w", err)
	}
	clientTransport.CloseIdleConnections()
	// Connections the clients closed take a moment to end on the server.
	end, err := settle(ctx, admin, metricsURL, mockPort, func(own float64) bool { return own <= base.own() })
	if err != nil {
		return nil, fmt.Errorf("scraping after the load: %w", err)
	}
	rep.EndGoroutines, rep.EndPooled = end.goroutines, end.pooled
	rep.EndRSS, _ = end.m.Value(harness.MetricRSS)
	adminTransport.CloseIdleConnections()

	// SIGTERM: phasegate drains (nothing is in flight) and exits 0.
	exitCode, termErr := gw.Stop(terminateTimeout)
	progress("phasegate exited with code %d", exitCode)

	al, err := readAccessLog(gw.LogPath())
	if err != nil {
		return nil, fmt.Errorf("reading phasegate's log: %w", err)
	}
	rep.Stderr = gw.Stderr()
	st.fill(rep, final, quiet, rl, al, exitCode, termErr)
	return rep, nil
}

// StallResult is what phasegate held with many request bodies stalled at
// once.
type StallResult struct {
	Bodies     int     // stalled bodies sent at once, each declaring maxBodyBytes
	Active     float64 // phasegate_http_active_requests when the heap was read
	HeapGrowth float64 // go_memstats_heap_alloc_bytes then, minus before the bodies
	RSSGrowth  float64 // process_resident_memory_bytes likewise
}

// perBody is the heap growth per stalled body in flight.
func (s StallResult) perBody() float64 { return s.HeapGrowth / max(s.Active, 1) }

func (s StallResult) String() string {
	return fmt.Sprintf("%g in flight, heap %+.1f MiB (%.0f KiB per body, bound %d KiB), RSS %+.1f MiB",
		s.Active, s.HeapGrowth/(1<<20), s.perBody()/(1<<10), stallHeapBound>>10, s.RSSGrowth/(1<<20))
}

// stallHeapBound is the heap a stalled body may cost phasegate: its
// connection, goroutine, request and a body buffer grown with the bytes
// received, tens of KiB in all. A buffer grown to the declared length
// would be 8 MiB each.
const stallHeapBound = 512 << 10

// stallBodies runs n slow bodies at once, alternately through an AI route
// (which buffers the body) and a plain one (which streams it upstream),
// and reads phasegate's heap while all of them are stalled.
func (st *runState) stallBodies(ctx context.Context, admin *http.Client, url string, n int) (StallResult, error) {
	res := StallResult{Bodies: n}
	before, err := harness.Scrape(ctx, admin, url)
	if err != nil {
		return res, err
	}
	ai, plain := scenarioIndex("slow_body"), scenarioIndex("plain_slow_body")
	var wg sync.WaitGroup
	defer wg.Wait()
	for k := range n {
		i := ai
		if k%2 == 1 {
			i = plain
		}
		wg.Go(func() { st.do(ctx, i, rand.New(rand.NewPCG(st.opts.Seed, uint64(3000+k)))) })
	}
	// The bodies are all stalled once phasegate has all of them in
	// flight; none is answered before body_timeout.
	var during harness.Metrics
	deadline := time.Now().Add(bodyTimeout / 2)
	for {
		m, err := harness.Scrape(ctx, admin, url)
		if err != nil {
			return res, err
		}
		if during == nil || m.Sum(harness.MetricHTTPActive) > during.Sum(harness.MetricHTTPActive) {
			during = m
		}
		if during.Sum(harness.MetricHTTPActive) >= float64(n) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	res.Active = during.Sum(harness.MetricHTTPActive)
	res.HeapGrowth = during.Sum(harness.MetricHeapAlloc) - before.Sum(harness.MetricHeapAlloc)
	res.RSSGrowth = during.Sum(harness.MetricRSS) - before.Sum(harness.MetricRSS)
	return res, nil
}

// warmUp runs every scenario available before the reload once,
// concurrently, then 2×concurrency slow requests at once.
func (st *runState) warmUp(ctx context.Context) error {
	var wg sync.WaitGroup
	for i, sc := range scenarios {
		if sc.afterReload {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			st.do(ctx, i, rand.New(rand.NewPCG(st.opts.Seed, uint64(1000+i))))
		}()
	}
	wg.Wait()
	slow := scenarioIndex("ai_slow_first_byte")
	for w := range 2 * st.opts.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st.do(ctx, slow, rand.New(rand.NewPCG(st.opts.Seed, uint64(2000+w))))
		}()
	}
	wg.Wait()
	return ctx.Err()
}

func scenarioIndex(name string) int {
	for i, sc := range scenarios {
		if sc.name == name {
			return i
		}
	}
	panic("soak: no scenario " + name)
}

// reloadResult is what happened to the mid-run reloads.
type reloadResult struct {
	At       time.Duration // when the valid reload was confirmed, from the start of the load
	Reloaded int           // "config reloaded" lines seen (2 expected)
	Rejected int           // "reload rejected" lines seen (1 expected)
	Err      error
}

// reload waits until after (unless the load ends first), then installs v2 (SIGHUP, "config reloaded"),
// sends an invalid file (SIGHUP, "reload rejected") and restores v2
// (SIGHUP, "config reloaded").
func (st *runState) reload(ctx, loadCtx context.Context, gw *harness.Proc, path string, v2, bad configParams, after time.Duration, progress func(string, ...any)) (r reloadResult) {
	begin := time.Now()
	select {
	case <-time.After(after):
	case <-loadCtx.Done():
		r.Err = errors.New("the load ended before the reload")
		return r
	}
	steps := []struct {
		p    configParams
		want string
		n    *int
	}{
		{v2, "config reloaded", &r.Reloaded},
		{bad, "reload rejected; the previous config keeps serving", &r.Rejected},
		{v2, "config reloaded", &r.Reloaded},
	}
	for i, s := range steps {
		if err := soakConfig(s.p).WriteFile(path); err != nil {
			r.Err = err
			return r
		}
		if err := gw.Signal(syscall.SIGHUP); err != nil {
			r.Err = err
			return r
		}
		if _, err := gw.WaitLog(ctx, s.want, reloadTimeout); err != nil {
			r.Err = fmt.Errorf("reload step %d: %w", i+1, err)
			return r
		}
		*s.n++
		if i == 0 {
			r.At = time.Since(begin)
			st.reloaded.Store(true)
			progress("config reloaded: route %q added, deny_message changed", routeReloaded)
		}
	}
	progress("invalid config rejected, valid config restored")
	return r
}

// sample scrapes the metrics every second during the load, recording the
// peaks of the active gauges.
func (st *runState) sample(ctx context.Context, admin *http.Client, url string) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		m, err := harness.Scrape(ctx, admin, url)
		if err != nil {
			continue
		}
		st.mu.Lock()
		st.maxActive = max(st.maxActive, m.Sum(harness.MetricHTTPActive))
		st.maxLLM = max(st.maxLLM, m.Sum(harness.MetricLLMActive))
		st.mu.Unlock()
	}
}

// reading is a scrape with phasegate's goroutine count and its pooled
// connections to the mock at that moment.
type reading struct {
	m          harness.Metrics
	goroutines float64
	pooled     int // -1: unknown
}

// own is the goroutine count without the idle connections to the mock:
// those come and go with the traffic (a cancelled upstream request closes
// its connection, a burst opens new ones), and each costs exactly
// goroutinesPerConn goroutines in phasegate's process, which runs the
// mock too.
func (r reading) own() float64 {
	if r.pooled < 0 {
		return r.goroutines
	}
	return r.goroutines - float64(goroutinesPerConn*r.pooled)
}

func read(ctx context.Context, admin *http.Client, url string, mockPort int) (reading, error) {
	m, err := harness.Scrape(ctx, admin, url)
	if err != nil {
		return reading{}, err
	}
	g, ok := m.Value(harness.MetricGoroutines)
	if !ok {
		return reading{}, fmt.Errorf("no %s in /metrics", harness.MetricGoroutines)
	}
	return reading{m: m, goroutines: g, pooled: pooledConns(mockPort)}, nil
}

// settle scrapes every 100 ms until phasegate's own goroutine count has
// not changed for settleQuiet, or done (when not nil) accepts it, at most
// settleTimeout, and returns the last reading.
func settle(ctx context.Context, admin *http.Client, url string, mockPort int, done func(own float64) bool) (reading, error) {
	deadline := time.Now().Add(settleTimeout)
	var last float64
	var since time.Time
	for {
		r, err := read(ctx, admin, url, mockPort)
		if err != nil {
			return r, err
		}
		if own := r.own(); since.IsZero() || own != last {
			last, since = own, time.Now()
		}
		if done != nil && done(last) || time.Since(since) >= settleQuiet || time.Now().After(deadline) {
			return r, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// quiesce scrapes until both active gauges read 0 everywhere and
// phasegate_http_requests_total adds up to sent, or quiesceTimeout passes.
// It returns the last scrape and whether it was quiescent.
func quiesce(ctx context.Context, admin *http.Client, url string, sent int) (harness.Metrics, bool, error) {
	deadline := time.Now().Add(quiesceTimeout)
	for {
		m, err := harness.Scrape(ctx, admin, url)
		if err != nil {
			return nil, false, err
		}
		quiet := len(m.NonZero(harness.MetricHTTPActive)) == 0 && len(m.NonZero(harness.MetricLLMActive)) == 0 &&
			m.Sum(harness.MetricRequests) == float64(sent)
		if quiet || time.Now().After(deadline) {
			return m, quiet, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// port returns the port of a host:port address (0 if none).
func port(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}

// fill computes the report's checks.
func (st *runState) fill(rep *Report, final harness.Metrics, quiet bool, rl reloadResult, al *accessLog, exitCode int, termErr error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	rep.Requests = len(st.records)
	rep.PeakActive, rep.PeakLLM = st.maxActive, st.maxLLM
	for i, sc := range scenarios {
		rep.Scenarios = append(rep.Scenarios, ScenarioCount{
			Name: sc.name, Route: sc.route, Code: sc.code, Runs: st.runs[i], Requests: st.runs[i] * sc.logged(),
			Unexpected: st.unexpect[i],
		})
	}
	rep.Causes = al.causes
	rep.Samples = st.samples

	// 1. Active gauges.
	var nonZero []string
	nHTTP, nLLM := len(final.Samples(harness.MetricHTTPActive)), len(final.Samples(harness.MetricLLMActive))
	for _, name := range []string{harness.MetricHTTPActive, harness.MetricLLMActive} {
		for _, s := range final.NonZero(name) {
			nonZero = append(nonZero, name+s.String())
		}
	}
	// Every AI route, each door included, must have raised (and lowered)
	// its LLM series for the check to cover it.
	llmRoutes := map[string]bool{}
	for _, s := range final.Samples(harness.MetricLLMActive) {
		llmRoutes[s.Labels["route"]] = true
	}
	var noLLM []string
	for _, route := range aiRoutes() {
		if !llmRoutes[route] {
			noLLM = append(noLLM, route)
		}
	}
	detail := fmt.Sprintf("%s: %d samples, %s: %d samples on %d AI routes, all 0",
		harness.MetricHTTPActive, nHTTP, harness.MetricLLMActive, nLLM, len(llmRoutes))
	if len(nonZero) > 0 {
		detail = fmt.Sprintf("%d samples not 0 after %s: %s", len(nonZero), quiesceTimeout, firstFew(nonZero, 6))
	} else if nHTTP == 0 || len(noLLM) > 0 {
		nonZero = append(nonZero, "missing")
		detail = fmt.Sprintf("a gauge is missing: %s %d samples, %s none on routes %q", harness.MetricHTTPActive, nHTTP, harness.MetricLLMActive, noLLM)
	}
	rep.check("every active gauge sample is 0", len(nonZero) == 0, detail)

	// 2. Requests by route and code.
	mm := CompareTally(st.tally, requestsByRouteCode(final))
	detail = fmt.Sprintf("%d (route, code) series, %d requests, equal", len(st.tally), st.tally.Total())
	if len(mm) > 0 {
		var lines []string
		for _, m := range mm {
			lines = append(lines, m.String())
		}
		detail = fmt.Sprintf("%d series differ (quiescent: %t): %s", len(mm), quiet, firstFew(lines, 8))
	}
	rep.check(harness.MetricRequests+" by route and code = clients' tally", len(mm) == 0, detail)
	rep.Tally = st.tally

	// 3. Access log: one line per request.
	probs := al.match(st.records)
	detail = fmt.Sprintf("%d access lines for %d requests; each request id exactly once", al.lines, len(st.records))
	if len(probs.ids) > 0 || al.lines != len(st.records) {
		detail = fmt.Sprintf("%d access lines for %d requests; %s", al.lines, len(st.records), firstFew(probs.ids, 6))
	}
	rep.check("one access-log line per request", len(probs.ids) == 0 && al.lines == len(st.records), detail)
	detail = "route, status and cause; path, model, exit_plugin, consumer, client_protocol, provider_protocol and upstream_ms where a scenario says"
	if len(probs.fields) > 0 {
		detail = fmt.Sprintf("%d lines differ: %s", probs.nFields, firstFew(probs.fields, 6))
	}
	rep.check("access-log fields per request as each scenario expects", probs.nFields == 0, detail)

	// 4. Goroutines.
	tol := float64(st.opts.GoroutineTolerance)
	baseOwn := reading{goroutines: rep.BaselineGoroutines, pooled: rep.BaselinePooled}.own()
	endOwn := reading{goroutines: rep.EndGoroutines, pooled: rep.EndPooled}.own()
	detail = fmt.Sprintf("baseline %d, end %d (tolerance +%d)", int(rep.BaselineGoroutines), int(rep.EndGoroutines), int(tol))
	if rep.BaselinePooled >= 0 && rep.EndPooled >= 0 {
		detail = fmt.Sprintf("baseline %d = %d + %d×%d idle upstream connections, end %d = %d + %d×%d; %d → %d (tolerance +%d)",
			int(rep.BaselineGoroutines), int(baseOwn), goroutinesPerConn, rep.BaselinePooled,
			int(rep.EndGoroutines), int(endOwn), goroutinesPerConn, rep.EndPooled, int(baseOwn), int(endOwn), int(tol))
	}
	rep.check("goroutines back to the baseline", endOwn <= baseOwn+tol, detail)

	// 5. RSS.
	growth := rep.EndRSS - rep.BaselineRSS
	rep.check("RSS growth under the bound",
		rep.BaselineRSS > 0 && growth < float64(st.opts.RSSBound),
		fmt.Sprintf("baseline %s, end %s, growth %s (bound %s)", mib(rep.BaselineRSS), mib(rep.EndRSS), mib(growth), mib(float64(st.opts.RSSBound))))

	// 6. Stalled bodies.
	s := rep.Stall
	rep.check("heap per stalled body under the bound",
		s.Active >= float64(s.Bodies)/2 && s.perBody() < stallHeapBound,
		fmt.Sprintf("%d bodies of %s declared, stalled at once: %s", s.Bodies, mib(maxBodyBytes), s))

	// 7. Unexpected responses.
	nUnexpected := 0
	for _, n := range st.unexpect {
		nUnexpected += n
	}
	rep.check("zero unexpected statuses or bodies", nUnexpected == 0, fmt.Sprintf("%d unexpected of %d", nUnexpected, len(st.records)))

	// 8. Reloads.
	detail = fmt.Sprintf("reloaded at %.1fs of the load; invalid file rejected; valid file restored", rl.At.Seconds())
	ok := rl.Err == nil && rl.Reloaded == 2 && rl.Rejected == 1 && al.reloaded == 2 && al.rejected == 1
	if !ok {
		detail = fmt.Sprintf("%v (log: %d reloaded, %d rejected)", rl.Err, al.reloaded, al.rejected)
	}
	if n := st.runs[scenarioIndex("plain_reloaded_route")]; ok && n == 0 {
		ok, detail = false, "the reloaded route was never used"
	}
	rep.check("config reload mid-run (SIGHUP)", ok, detail)

	// 9. No recovered panic.
	rep.check("no recovered panic in the log", al.panics == 0, fmt.Sprintf("%d recovered panics", al.panics))

	// 10. SIGTERM.
	detail = "exit code 0, \"phasegate stopped\" logged"
	ok = termErr == nil && exitCode == 0 && al.stopped
	if !ok {
		detail = fmt.Sprintf("exit code %d, %v, stopped logged %t", exitCode, termErr, al.stopped)
	}
	rep.check("SIGTERM: drained and exited 0", ok, detail)
	rep.LogLevels = al.levels

	end := endState{final: final, log: al, site: st.site.log()}
	for _, c := range endChecks {
		rep.Checks = append(rep.Checks, c(end))
	}
}

// endState is what the end checks read.
type endState struct {
	final harness.Metrics // the scrape once phasegate was quiescent
	log   *accessLog
	site  siteLog
}

// endChecks are the end-of-run checks beyond the fixed ones of fill, one
// for each effect of the traffic that phasegate counts in its metrics or
// that an upstream sees.
var endChecks = []func(endState) Check{checkAborts, checkProtocols, checkModelLabels, checkAdminUpstream, checkSiteRequests}

// checkAborts compares phasegate_lifecycle_aborts_total with the access
// log: every request that ended because its client left or broke a bound
// is counted once, under its route and cause.
func checkAborts(e endState) Check {
	got := map[routeCause]float64{}
	for _, s := range e.final.Samples(harness.MetricAborts) {
		got[routeCause{s.Labels["route"], s.Labels["cause"]}] += s.Value
	}
	var diff []string
	byCause := map[string]int{}
	for _, k := range sortedRouteCauses(got, e.log.aborts) {
		if got[k] != float64(e.log.aborts[k]) {
			diff = append(diff, fmt.Sprintf("%s: metric %g, access log %d", k, got[k], e.log.aborts[k]))
		}
		byCause[k.Cause] += e.log.aborts[k]
	}
	c := Check{Name: harness.MetricAborts + " by route and cause = access-log aborts", OK: len(diff) == 0}
	c.Detail = fmt.Sprintf("%s over %d (route, cause) series, equal", countLine(byCause), len(got))
	if !c.OK {
		c.Detail = fmt.Sprintf("%d series differ: %s", len(diff), firstFew(diff, 6))
	}
	return c
}

func firstFew(s []string, n int) string {
	if len(s) > n {
		return fmt.Sprintf("%v … (%d more)", s[:n], len(s)-n)
	}
	return fmt.Sprint(s)
}

func mib(b float64) string { return fmt.Sprintf("%.1f MiB", b/(1<<20)) }

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
