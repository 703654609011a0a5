// Package providertest holds the test fixtures shared by the tests of the AI
// upstream plugins: a gateway serving a chain on a real socket that reports
// how each request ended once it has reached done, recording upstreams, and
// checks of the LLM metrics.
package providertest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	"github.com/phasegate/phasegate/forward"
	"github.com/phasegate/phasegate/fsm"
	"github.com/phasegate/phasegate/llm"
	"github.com/phasegate/phasegate/metrics"
	"github.com/phasegate/phasegate/mockllm"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/pluginsdk"
)

// Route is the route id of the fixtures' chains.
const Route = "chat"

// NewEnv returns a plugin environment for Route with a fresh registry and
// metric set and a fresh keep-alive transport, closed when t ends.
func NewEnv(t testing.TB) (pluginsdk.Env, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	set, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	tr := forward.NewTransport()
	t.Cleanup(tr.CloseIdleConnections)
	return pluginsdk.Env{
		Route:      Route,
		Registerer: reg,
		Metrics:    set,
		Logger:     zerolog.Nop(),
		Transport:  tr,
	}, reg
}

// Outcome is how one request through a Gateway ended, taken in its log
// phase and reported once it has reached done.
type Outcome struct {
	Status     int
	Cause      phases.Cause
	ExitPhase  fsm.State
	ExitPlugin string
	Err        error
	Path       string
	// LLM is a copy of the request's LLMInfo; HasLLM reports there was one.
	LLM    llm.Info
	HasLLM bool
}

// Gateway serves a chain on a real socket.
type Gateway struct {
	URL    string
	Chain  *phases.Chain
	Client *http.Client

	outcomes chan Outcome
}

type outcomeKey struct{}

// Serve serves a chain of plugins (route Route unless opts sets one) until
// t ends.
func Serve(t testing.TB, opts phases.Options, plugins ...phases.Plugin) *Gateway {
	t.Helper()
	if opts.Route == "" {
		opts.Route = Route
	}
	opts.Hooks = opts.Hooks.Then(phases.Hooks{Finished: func(ctx context.Context, s *phases.Summary) {
		o, _ := ctx.Value(outcomeKey{}).(*Outcome)
		if o == nil {
			return
		}
		*o = Outcome{Status: s.Status, Cause: s.Cause, ExitPhase: s.ExitPhase, ExitPlugin: s.ExitPlugin, Err: s.Err, Path: fsm.Path(s.Trace)}
		if info, ok := llm.InfoKey.Get(s.Values); ok && info != nil {
			o.LLM, o.HasLLM = *info, true
		}
	}})
	chain, err := phases.NewChain(opts, plugins...)
	if err != nil {
		t.Fatal(err)
	}
	g := &Gateway{Chain: chain, outcomes: make(chan Outcome, 256)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o := &Outcome{}
		ctx := context.WithValue(r.Context(), outcomeKey{}, o)
		defer func() { g.outcomes <- *o }() // also when ServeHTTP aborts the response
		chain.ServeHTTP(w, r.WithContext(ctx))
	}))
	t.Cleanup(srv.Close)
	tr := &http.Transport{DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	g.URL = srv.URL + "/v1/chat/completions"
	g.Client = &http.Client{Transport: tr}
	return g
}

// Request builds a chat-completions request to the gateway with body and
// headers (Content-Type application/json unless headers set one).
func (g *Gateway) Request(t testing.TB, body string, headers map[string]string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, g.URL, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	return req
}

// Response is what a client got.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
	// Err is the error that ended the body early, if any.
	Err error
}

// Do sends req and reads the whole response.
func (g *Gateway) Do(t testing.TB, req *http.Request) Response {
	t.Helper()
	resp, err := g.Client.Do(req)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: body, Err: err}
}

// Post sends body with headers and reads the whole response.
func (g *Gateway) Post(t testing.TB, body string, headers map[string]string) Response {
	t.Helper()
	return g.Do(t, g.Request(t, body, headers))
}

// Wait returns the outcome of the next request to reach done.
func (g *Gateway) Wait(t testing.TB) Outcome {
	t.Helper()
	select {
	case o := <-g.outcomes:
		return o
	case <-time.After(10 * time.Second):
		t.Fatal("no request reached done within 10s")
		return Outcome{}
	}
}

// Samples returns the series of the metric family name in reg, by their
// label values joined with "|" in label-name order, and their values
// (gauge and counter values, histogram sample counts).
func Samples(t testing.TB, reg prometheus.Gatherer, name string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var vals []string
			for _, l := range m.GetLabel() {
				vals = append(vals, l.GetValue())
			}
			key := strings.Join(vals, "|")
			switch mf.GetType() {
			case dto.MetricType_GAUGE:
				out[key] = m.GetGauge().GetValue()
			case dto.MetricType_COUNTER:
				out[key] = m.GetCounter().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[key] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

// Labels joins label values as Samples keys them. The LLM metrics' labels
// sort as instance, model, request_type, route.
func Labels(values ...string) string { return strings.Join(values, "|") }

// LLMKey is the Samples key of an LLM series with the labels route,
// instance, model and request type.
func LLMKey(route, instance, model, requestType string) string {
	return Labels(instance, model, requestType, route)
}

// AssertNoneActive fails t unless every phasegate_llm_active_connections
// series reads 0.
func AssertNoneActive(t testing.TB, reg prometheus.Gatherer) {
	t.Helper()
	for k, v := range Samples(t, reg, metrics.NameLLMActive) {
		if v != 0 {
			t.Errorf("%s{%s} = %v after the request, want 0", metrics.NameLLMActive, k, v)
		}
	}
}

// Eventually polls cond every millisecond until it holds or d has passed.
func Eventually(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

var (
	idRE      = regexp.MustCompile(`"id":"[^"]*"`)
	createdRE = regexp.MustCompile(`"created":[0-9]+`)
)

// Normalize replaces the ids and creation times of completions and chunks,
// which differ between two otherwise identical replies.
func Normalize(b []byte) string {
	b = idRE.ReplaceAll(b, []byte(`"id":"X"`))
	return string(createdRE.ReplaceAll(b, []byte(`"created":0`)))
}

// Events splits an SSE body into its events (each with its blank line).
func Events(body []byte) []string {
	var out []string
	for len(body) > 0 {
		i := bytes.Index(body, []byte("\n\n"))
		if i < 0 {
			out = append(out, string(body))
			break
		}
		out = append(out, string(body[:i+2]))
		body = body[i+2:]
	}
	return out
}

// DeadAddr returns the address of a port nothing listens on.
func DeadAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// Captured is one request an Upstream received.
type Captured struct {
	Header http.Header
	Query  string
	Body   []byte
}

// Upstream is a test upstream that records the requests it gets and
// answers them with Handler (a 200 chat.completion by default).
type Upstream struct {
	URL string // its chat-completions URL

	mu       sync.Mutex
	captured []Captured
	handler  http.HandlerFunc
}

// Completion is the default answer of an Upstream.
const Completion = `{"id":"chatcmpl-up","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}`

// NewUpstream starts an upstream answering with handler (nil: Completion),
// closed when t ends.
func NewUpstream(t testing.TB, handler http.HandlerFunc) *Upstream {
	t.Helper()
	u := &Upstream{handler: handler}
	if u.handler == nil {
		u.handler = Reply(http.StatusOK, "application/json", Completion)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.captured = append(u.captured, Captured{Header: r.Header.Clone(), Query: r.URL.RawQuery, Body: body})
		u.mu.Unlock()
		u.handler(w, r)
	}))
	t.Cleanup(srv.Close)
	u.URL = srv.URL + "/v1/chat/completions"
	return u
}

// Reply is a handler answering status with a body of content type ct.
func Reply(status int, ct, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// Captured returns the requests received so far.
func (u *Upstream) Captured() []Captured {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]Captured(nil), u.captured...)
}

// Hits is the number of requests received so far.
func (u *Upstream) Hits() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.captured)
}

// Last returns the last request received; it fails t if there is none.
func (u *Upstream) Last(t testing.TB) Captured {
	t.Helper()
	c := u.Captured()
	if len(c) == 0 {
		t.Fatal("the upstream got no request")
	}
	return c[len(c)-1]
}

// Chat is a chat-completions body for model, streamed when stream is set.
func Chat(model string, stream bool) string {
	s := fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":"say hello to the gateway"}]`, model)
	if stream {
		s += `,"stream":true`
	}
	return s + "}"
}

// StartMock starts the mock LLM on a free port, closed when t ends.
func StartMock(t testing.TB) *mockllm.Server {
	t.Helper()
	m, err := mockllm.Start("127.0.0.1:0", mockllm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// InFlightProbe is a RoundTripper for the upstream calls of AI plugins
// under test. As each attempt goes out it checks the in-flight gauge
// (phasegate_llm_active_connections) of the registry it watches: the
// attempt's own series must be the only one up, so every earlier attempt's
// series is back at 0 while this one is in flight, not merely by the end of
// the request. It assumes one request at a time, as phasetest runs them.
type InFlightProbe struct {
	Base http.RoundTripper

	mu       sync.Mutex
	reg      prometheus.Gatherer
	attempts int
	problems []string
}

// Watch starts a new path: attempts count from 1 again and reg is the
// registry to read.
func (p *InFlightProbe) Watch(reg prometheus.Gatherer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reg, p.attempts, p.problems = reg, 0, nil
}

// RoundTrip checks the gauge, then sends req with Base.
func (p *InFlightProbe) RoundTrip(req *http.Request) (*http.Response, error) {
	p.mu.Lock()
	p.attempts++
	if p.reg != nil {
		up, sum := 0, 0.0
		mfs, err := p.reg.Gather()
		if err != nil {
			p.problems = append(p.problems, err.Error())
		}
		for _, mf := range mfs {
			if mf.GetName() != metrics.NameLLMActive {
				continue
			}
			for _, m := range mf.GetMetric() {
				if v := m.GetGauge().GetValue(); v != 0 {
					up++
					sum += v
				}
			}
		}
		if up != 1 || sum != 1 {
			p.problems = append(p.problems, fmt.Sprintf("as attempt %d went out, %d %s series were up, summing to %v; want only its own, at 1", p.attempts, up, metrics.NameLLMActive, sum))
		}
	}
	p.mu.Unlock()
	return p.Base.RoundTrip(req)
}

// Problems returns what the probe found wrong since Watch.
func (p *InFlightProbe) Problems() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.problems...)
}
