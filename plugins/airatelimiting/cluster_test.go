package airatelimiting_test

// Four phasegate processes share one real Redis: the tests build
// cmd/phasegate, write each process's config, and drive them with many
// concurrent clients against the mock LLM.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/phasegate/phasegate/bench/harness"
	"github.com/phasegate/phasegate/internal/redistest"
	"github.com/phasegate/phasegate/llm"
	llmopenai "github.com/phasegate/phasegate/llm/openai"
	"github.com/phasegate/phasegate/llm/provider/providertest"
	"github.com/phasegate/phasegate/mockllm"
	"github.com/phasegate/phasegate/plugins/airatelimiting"
)

// phasegateBin builds cmd/phasegate once per test binary.
var phasegateBin = sync.OnceValues(func() (string, error) {
	ctx := context.Background()
	root, err := harness.ModuleRoot(ctx)
	if err != nil {
		return "", err
	}
	dir, err := buildDir()
	if err != nil {
		return "", err
	}
	return harness.Build(ctx, root, dir, nil)
})

// cluster is phasegate processes sharing a Redis, in front of a mock LLM.
type cluster struct {
	t     *testing.T
	redis *redistest.Server
	rdb   *redis.Client
	mock  *mockllm.Server
	dir   string
	bin   string
	procs []*harness.Proc
	group harness.Group
	hc    *http.Client
	// storeTimeout is the processes' Redis timeout: generous (a third of
	// the shortest lease, the most the config allows), so that a machine
	// busy with other tests does not turn admissions into 503s, except
	// where the timeout is what a test is about.
	storeTimeout string
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("multi-process test")
	}
	rs := redistest.Start(t)
	bin, err := phasegateBin()
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, redis: rs, mock: startMock(t), dir: t.TempDir(), bin: bin, storeTimeout: "600ms"}
	c.rdb = redis.NewClient(&redis.Options{Addr: rs.Addr()})
	tr := harness.NewTransport(256, 30*time.Second)
	c.hc = &http.Client{Transport: tr, Timeout: 30 * time.Second}
	t.Cleanup(func() {
		c.group.StopAll(5 * time.Second)
		tr.CloseIdleConnections()
		_ = c.rdb.Close()
	})
	return c
}

func startMock(t *testing.T) *mockllm.Server {
	m, err := mockllm.Start("127.0.0.1:0", mockllm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// start runs one phasegate whose chat route has rl as its
// ai-rate-limiting config.
func (c *cluster) start(name string, rl map[string]any) *harness.Proc {
	c.t.Helper()
	cfg := harness.NewConfig("ai-rate-limiting cluster test")
	cfg.Log.AccessLog = false
	cfg.Routes = []harness.Route{{ID: "chat", URI: "/v1/chat/completions", Plugins: map[string]any{
		"ai-proxy":         map[string]any{"provider": "openai-compatible", "endpoint": c.mock.URL() + mockllm.PathChatCompletions, "timeout": "10s"},
		"ai-rate-limiting": rl,
	}}}
	file := filepath.Join(c.dir, name+".yaml")
	if err := cfg.WriteFile(file); err != nil {
		c.t.Fatal(err)
	}
	p, err := c.group.Start(context.Background(), harness.Spec{
		Name: name, Dir: c.dir, Path: c.bin, Args: []string{"run", "-c", file}, Ready: harness.PhasegateReady,
	})
	if err != nil {
		c.t.Fatal(err)
	}
	c.procs = append(c.procs, p)
	return p
}

// rlConfig is an ai-rate-limiting config on the cluster's Redis.
func (c *cluster) rlConfig(mode, onError, lease string, limits ...map[string]any) map[string]any {
	return map[string]any{
		"policy":         "redis",
		"redis":          map[string]any{"address": c.redis.Addr(), "timeout": c.storeTimeout, "key_prefix": "pg"},
		"on_store_error": onError,
		"lease":          lease,
		"estimate":       map[string]any{"prompt": mode},
		"limits":         limits,
	}
}

// reply is what a client got.
type reply struct {
	status int
	header http.Header
	body   []byte
	took   time.Duration
}

func (c *cluster) post(p *harness.Proc, body string, header map[string]string) reply {
	req, err := http.NewRequest(http.MethodPost, "http://"+p.Listen+"/v1/chat/completions", strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	start := time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		return reply{took: time.Since(start)}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, body: b, took: time.Since(start)}
}

// counter reads a counter's used and reserved amounts from Redis (see
// package ratelimit's doc for the key layout).
func (c *cluster) counter(name, kind string, window time.Duration, key string) (used, reserved int64) {
	c.t.Helper()
	h := fmt.Sprintf("pg:rl:%s:%s:%d:%s", name, kind, window.Milliseconds(), key)
	v, err := c.rdb.HMGet(context.Background(), h, "u", "r").Result()
	if err != nil {
		c.t.Fatal(err)
	}
	n := func(x any) int64 {
		s, _ := x.(string)
		f, _ := strconv.ParseFloat(s, 64)
		return int64(f)
	}
	return n(v[0]), n(v[1])
}

// metricSum sums a metric over the given processes' admin listeners.
func (c *cluster) metricSum(name string, procs ...*harness.Proc) float64 {
	c.t.Helper()
	var sum float64
	for _, p := range procs {
		m, err := harness.Scrape(context.Background(), c.hc, "http://"+p.Admin+"/metrics")
		if err != nil {
			c.t.Fatal(err)
		}
		sum += m.Sum(name)
	}
	return sum
}

// usageOf reads the usage of a chat.completion body.
func usageOf(t *testing.T, body []byte) llm.Usage {
	t.Helper()
	resp, err := llmopenai.Chat{}.DecodeResponse(body)
	if err != nil || resp.Usage == nil {
		t.Fatalf("no usage in %s", body)
	}
	return *resp.Usage
}

// clusterWindow is the tokens limit's window: long enough that a run
// stays inside one window of the store's clock.
const clusterWindow = 24 * time.Hour

// loadUntilRefused runs 64 clients against the processes in turn until
// each is refused three times in a row, and returns the usage of every
// admitted request.
func (c *cluster) loadUntilRefused(body string, header map[string]string) (admitted []llm.Usage, refused int) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	deadline := time.Now().Add(15 * time.Second)
	for i := range 64 {
		wg.Go(func() {
			streak := 0
			for n := i; streak < 3 && time.Now().Before(deadline); n++ {
				r := c.post(c.procs[n%len(c.procs)], body, header)
				mu.Lock()
				switch r.status {
				case http.StatusOK:
					streak = 0
					admitted = append(admitted, usageOf(c.t, r.body))
				case http.StatusTooManyRequests:
					streak++
					refused++
				default:
					c.t.Errorf("status %d: %s", r.status, r.body)
					streak = 3
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return admitted, refused
}

// Four processes, 64 clients, upper_bound estimates and max_tokens: the
// tokens used never exceed the limit, and every admitted request is
// counted, in Redis and in the processes' metrics. The same with approx
// estimates of a prompt they underestimate reports its overshoot.
func TestClusterSharedTokenLimit(t *testing.T) {
	const limit = 4000
	// The mock counts a token per word; the completion is 8 words and
	// max_tokens 8, so no request uses more than it reserved.
	prompt := strings.Repeat("a ", 40)
	body := fmt.Sprintf(`{"model":"m","max_tokens":8,"messages":[{"role":"user","content":%q}]}`, prompt)
	header := map[string]string{mockllm.HeaderContent: "one two three four five six seven eight", "X-Tenant": "acme"}
	for _, mode := range []string{airatelimiting.EstimateUpperBound, airatelimiting.EstimateApprox} {
		t.Run(mode, func(t *testing.T) {
			c := startCluster(t)
			tpm := map[string]any{"name": "tpm", "key": "header:X-Tenant", "tokens": limit, "window": clusterWindow.String()}
			for i := range 4 {
				c.start(fmt.Sprintf("pg%d", i), c.rlConfig(mode, "fail_closed", "5s", tpm))
			}
			admitted, refused := c.loadUntilRefused(body, header)
			var used int64
			for _, u := range admitted {
				used += u.TotalTokens()
			}
			// commits run after the responses: wait for them to land
			var stored, reserved int64
			deadline := time.Now().Add(5 * time.Second)
			for {
				stored, reserved = c.counter("tpm", "tokens", clusterWindow, "acme")
				if (stored == used && reserved == 0) || time.Now().After(deadline) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			t.Logf("%s: %d admitted, %d refused, %d tokens used of %d", mode, len(admitted), refused, used, limit)
			if len(admitted) == 0 || refused == 0 {
				t.Fatalf("the load did not reach the limit: %d admitted, %d refused", len(admitted), refused)
			}
			if stored != used || reserved != 0 {
				t.Fatalf("Redis counts %d used and %d reserved; the admitted requests used %d", stored, reserved, used)
			}
			if m := c.metricSum(airatelimiting.MetricCommitted, c.procs...); m != float64(used) {
				t.Fatalf("committed_total over the processes is %v, want %d", m, used)
			}
			if m := c.metricSum(airatelimiting.MetricReserved, c.procs...); m != 0 {
				t.Fatalf("reserved gauges sum to %v after the load", m)
			}
			if mode == airatelimiting.EstimateUpperBound && used > limit {
				t.Fatalf("upper_bound overshot the limit: %d > %d", used, limit)
			}
			if mode == airatelimiting.EstimateApprox {
				t.Logf("approx overshoot: %d tokens (%.1f%% of the limit)", max(used-limit, 0), 100*float64(max(used-limit, 0))/limit)
			}
		})
	}
}

// openStream starts a streamed request and reads its first event; the
// caller closes the body.
func (c *cluster) openStream(p *harness.Proc, body string, header map[string]string) (*http.Response, *bufio.Reader, error) {
	req, err := http.NewRequest(http.MethodPost, "http://"+p.Listen+"/v1/chat/completions", strings.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return nil, nil, fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	rd := bufio.NewReader(resp.Body)
	if _, err := readEvent(rd); err != nil {
		resp.Body.Close()
		return nil, nil, err
	}
	return resp, rd, nil
}

// readEvent reads one server-sent event's data.
func readEvent(rd *bufio.Reader) ([]byte, error) {
	var data []byte
	for {
		line, err := rd.ReadBytes('\n')
		if err != nil {
			return nil, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			return data, nil
		}
		if d, ok := bytes.CutPrefix(line, []byte("data: ")); ok {
			data = append(data, d...)
		}
	}
}

// kill -9 of a process holding streams: its slots and tokens come back
// within the lease, and the other processes admit again.
func TestClusterKilledInstanceReturnsItsReservations(t *testing.T) {
	c := startCluster(t)
	const lease = 2 * time.Second
	slots := map[string]any{"name": "slots", "key": "global", "concurrent": 4}
	tpm := map[string]any{"name": "tpm", "key": "global", "tokens": 1000000, "window": clusterWindow.String()}
	for i := range 4 {
		c.start(fmt.Sprintf("pg%d", i), c.rlConfig("upper_bound", "fail_closed", lease.String(), slots, tpm))
	}
	slow := map[string]string{mockllm.HeaderChunks: "100", mockllm.HeaderChunkDelay: "100ms"}
	body := `{"model":"m","stream":true,"max_tokens":50,"messages":[{"role":"user","content":"tell me"}]}`
	var open []*http.Response
	for range 4 {
		resp, _, err := c.openStream(c.procs[0], body, slow)
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, resp)
	}
	defer func() {
		for _, r := range open {
			r.Body.Close()
		}
	}()
	if r := c.post(c.procs[1], llmChat, nil); r.status != http.StatusTooManyRequests {
		t.Fatalf("a fifth request while four streams hold the slots: %d %s", r.status, r.body)
	}
	if _, reserved := c.counter("tpm", "tokens", clusterWindow, ""); reserved == 0 {
		t.Fatal("the streams reserve no tokens")
	}
	killed := time.Now()
	c.procs[0].Kill()
	for {
		r := c.post(c.procs[1+int(time.Since(killed)/time.Millisecond)%3], llmChat, nil)
		if r.status == http.StatusOK {
			break
		}
		if time.Since(killed) > lease+time.Second {
			t.Fatalf("%v after the kill, the others still refuse: %d %s", time.Since(killed), r.status, r.body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("admitted again %v after kill -9 (lease %v)", time.Since(killed).Round(time.Millisecond), lease)
	// The first admission needs one slot back; the streams' leases, renewed
	// together or taken one after another, have all passed by a lease after
	// the kill. One request then purges what they reserved, and commits its
	// own after its response, off the request's path: wait that long, never
	// for another lease.
	time.Sleep(time.Until(killed.Add(lease + 100*time.Millisecond)))
	if r := c.post(c.procs[1], llmChat, nil); r.status != http.StatusOK {
		t.Fatalf("a request a lease after the kill: %d %s", r.status, r.body)
	}
	var reserved int64
	if !providertest.Eventually(time.Second, func() bool {
		_, reserved = c.counter("tpm", "tokens", clusterWindow, "")
		return reserved == 0
	}) {
		t.Fatalf("%d tokens still reserved after the lease", reserved)
	}
}

const llmChat = `{"model":"m","max_tokens":16,"messages":[{"role":"user","content":"hello there"}]}`

// Redis stopped mid-load and started again: fail_open processes admit and
// count store errors, fail_closed ones answer 503; both recover without a
// restart, and no request waits on the store for longer than its timeout.
func TestClusterRedisOutage(t *testing.T) {
	c := startCluster(t)
	c.storeTimeout = "100ms"
	rpm := map[string]any{"name": "rpm", "key": "global", "requests": 1000000, "window": clusterWindow.String()}
	open1 := c.start("open1", c.rlConfig("approx", "fail_open", "2s", rpm))
	open2 := c.start("open2", c.rlConfig("approx", "fail_open", "2s", rpm))
	closed1 := c.start("closed1", c.rlConfig("approx", "fail_closed", "2s", rpm))
	closed2 := c.start("closed2", c.rlConfig("approx", "fail_closed", "2s", rpm))

	var phase atomic.Int32 // 0 before, 1 during, 2 after the outage
	type tally struct{ ok, unavailable, other int }
	var mu sync.Mutex
	got := map[string]*[3]tally{}
	var slowest time.Duration
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 16 {
		p := []*harness.Proc{open1, open2, closed1, closed2}[i%4]
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				ph := phase.Load()
				r := c.post(p, llmChat, nil)
				if phase.Load() != ph {
					continue // it straddled a change: count it nowhere
				}
				mu.Lock()
				if got[p.Name] == nil {
					got[p.Name] = &[3]tally{}
				}
				tl := &got[p.Name][ph]
				switch r.status {
				case http.StatusOK:
					tl.ok++
				case http.StatusServiceUnavailable:
					tl.unavailable++
				default:
					tl.other++
				}
				slowest = max(slowest, r.took)
				mu.Unlock()
			}
		})
	}
	time.Sleep(500 * time.Millisecond)
	phase.Store(1)
	c.redis.Stop()
	time.Sleep(1500 * time.Millisecond)
	c.redis.Restart()
	// let every process find the new server (the first call of a pooled
	// connection may fail), then count
	time.Sleep(500 * time.Millisecond)
	phase.Store(2)
	time.Sleep(1 * time.Second)
	close(stop)
	wg.Wait()

	for name, ph := range got {
		t.Logf("%s: before %+v, during %+v, after %+v", name, ph[0], ph[1], ph[2])
		failOpen := strings.HasPrefix(name, "open")
		if ph[0].ok == 0 || ph[0].unavailable+ph[0].other != 0 {
			t.Errorf("%s before the outage: %+v", name, ph[0])
		}
		if failOpen && (ph[1].unavailable+ph[1].other != 0 || ph[1].ok == 0) {
			t.Errorf("%s (fail_open) during the outage: %+v", name, ph[1])
		}
		if !failOpen && (ph[1].unavailable == 0 || ph[1].other != 0) {
			t.Errorf("%s (fail_closed) during the outage: %+v", name, ph[1])
		}
		if ph[2].ok == 0 || ph[2].unavailable+ph[2].other != 0 {
			t.Errorf("%s after the outage: %+v", name, ph[2])
		}
	}
	if n := c.metricSum(airatelimiting.MetricStoreErrors, open1, open2); n == 0 {
		t.Error("fail_open processes counted no store errors")
	}
	// 100ms on the store, the rest is the request's own path on a shared
	// machine
	t.Logf("slowest request: %v", slowest)
	if slowest > time.Second {
		t.Errorf("a request took %v: something waited on the store beyond its 100ms timeout", slowest)
	}
}

// A client that leaves mid-stream is charged the prompt estimate and the
// text it was sent, less than the mock's full usage.
func TestClusterDisconnectChargesWhatWasDelivered(t *testing.T) {
	c := startCluster(t)
	tpm := map[string]any{"name": "tpm", "key": "global", "tokens": 1000000, "window": clusterWindow.String()}
	p := c.start("pg0", c.rlConfig("upper_bound", "fail_closed", "5s", tpm))
	words := strings.TrimSpace(strings.Repeat("word ", 40))
	header := map[string]string{mockllm.HeaderContent: words, mockllm.HeaderChunks: "40", mockllm.HeaderChunkDelay: "50ms"}
	body := `{"model":"m","stream":true,"max_tokens":100,"messages":[{"role":"user","content":"count to forty"}]}`
	resp, rd, err := c.openStream(p, body, header)
	if err != nil {
		t.Fatal(err)
	}
	var text []byte
	for range 5 {
		data, err := readEvent(rd)
		if err != nil {
			t.Fatal(err)
		}
		var chunk struct {
			Choices []struct {
				Delta struct{ Content string } `json:"delta"`
			} `json:"choices"`
		}
		if err := json.Unmarshal(data, &chunk); err != nil {
			t.Fatalf("%s: %v", data, err)
		}
		text = append(text, chunk.Choices[0].Delta.Content...)
	}
	resp.Body.Close()

	req, err := llmopenai.Chat{}.DecodeRequest([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	prompt := int64(8 + 8*len(req.Messages)) // upper_bound's overheads
	for _, s := range req.Texts() {
		prompt += int64(len(s))
	}
	var used, reserved int64
	deadline := time.Now().Add(5 * time.Second)
	for {
		used, reserved = c.counter("tpm", "tokens", clusterWindow, "")
		if (used != 0 && reserved == 0) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	full := int64(3 + 40) // the mock's usage: prompt words and completion words
	t.Logf("received %q; charged %d (prompt estimate %d); the whole answer's usage is %d", text, used, prompt, full)
	// the gateway may have sent one more event than the client read
	if used < prompt+int64(len(text)) || used > prompt+int64(len(text))+int64(len("word ")) {
		t.Fatalf("charged %d, want the prompt estimate %d plus the %d bytes received", used, prompt, len(text))
	}
	if reserved != 0 {
		t.Fatalf("%d tokens still reserved", reserved)
	}
	if used-prompt >= int64(len(words)) {
		t.Fatalf("charged the whole completion for a cut stream")
	}
}
