package tokencount

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"pgregory.net/rapid"

	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/phases/phasetest"
	"github.com/phasegate/phasegate/pluginsdk"
)

// Test headers: the consumer the fake authenticator publishes, and the
// content pieces the fake upstream streams, one event each.
const (
	headerConsumer = "X-Test-Consumer"
	headerPieces   = "X-Test-Pieces"
)

// auth publishes the consumer named by a header, as key-auth does.
type auth struct{}

func (auth) Name() string  { return "test-auth" }
func (auth) Priority() int { return 2500 }
func (auth) Access(ctx context.Context, r *phases.Request) phases.Exit {
	if who := r.Header.Get(headerConsumer); who != "" {
		pluginsdk.Consumer.Set(r.Values, who)
	}
	return phases.Exit{}
}

// upstream streams chat.completion.chunk events carrying the pieces of the
// header, then [DONE]; sent, when set, records the stream's bytes.
type upstream struct{ sent *bytes.Buffer }

func (upstream) Name() string  { return "test-upstream" }
func (upstream) Priority() int { return 0 }
func (u upstream) Upstream(ctx context.Context, r *phases.Request) (*phases.Response, error) {
	var events [][]byte
	for _, p := range strings.Split(r.Header.Get(headerPieces), "|") {
		events = append(events, chunkEvent(p))
	}
	events = append(events, []byte("[DONE]"))
	if u.sent != nil {
		for _, e := range events {
			fmt.Fprintf(u.sent, "data: %s\n\n", e)
		}
	}
	h := http.Header{"Content-Type": {"text/event-stream"}}
	return &phases.Response{Status: 200, Header: h, SSE: true, Body: &events2body{events: events}}, nil
}

func chunkEvent(content string) []byte {
	return fmt.Appendf(nil, `{"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":%s}}]}`, strconv.Quote(content))
}

type events2body struct{ events [][]byte }

func (b *events2body) Next() (phases.Chunk, error) {
	if len(b.events) == 0 {
		return phases.Chunk{}, io.EOF
	}
	e := b.events[0]
	b.events = b.events[1:]
	return phases.Chunk{Data: []byte("data: " + string(e) + "\n\n"), Event: e}, nil
}
func (b *events2body) Close() error { return nil }

// streamed is the token count of every chat.completion.chunk in an SSE body.
func streamed(c *Counter, body []byte) int {
	n := 0
	for _, line := range bytes.Split(body, []byte("\n")) {
		if data, ok := bytes.CutPrefix(line, []byte("data: ")); ok {
			n += c.Tokens(data)
		}
	}
	return n
}

// The harness runs the counter through random paths — other plugins
// exiting, panicking, transforming or holding chunks in any phase, clients
// leaving at any point — and checks the lifecycle's rules after each,
// including that every gauge, the streams in flight among them, is back to
// 0. On top: the counter holds exactly the tokens the client got when it got
// the upstream's whole stream, and never fewer (a later plugin may end or
// hold back what the counter already passed on).
func TestPropertyCountsWhatIsStreamed(t *testing.T) {
	var last *Counter
	var reg *prometheus.Registry
	var sent *bytes.Buffer
	phasetest.Check(t, phasetest.Config{
		Plugins: func(env *phasetest.Env) []phases.Plugin {
			c, err := New(Config{CharsPerToken: 3}, env.Registry)
			if err != nil {
				t.Fatal(err)
			}
			last, reg, sent = c, env.Registry, new(bytes.Buffer)
			return []phases.Plugin{auth{}, c, upstream{sent: sent}}
		},
		Request: func(t *rapid.T) *http.Request {
			pieces := rapid.SliceOfN(rapid.StringMatching(`[a-zé ]{0,12}`), 1, 6).Draw(t, "pieces")
			r := httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(`{"model":"m","stream":true,"messages":[]}`))
			r.Header.Set(headerPieces, strings.Join(pieces, "|"))
			if who := rapid.SampledFrom([]string{"", "alice", "bob"}).Draw(t, "consumer"); who != "" {
				r.Header.Set(headerConsumer, who)
			}
			return r
		},
		Check: func(t phasetest.TB, r *phasetest.Result) {
			counted, err := testutil.GatherAndCount(reg, TokensMetric)
			if err != nil {
				t.Fatalf("gathering: %v", err)
			}
			total := 0.0
			if counted > 0 {
				total = sumCounter(t, last)
			}
			got := float64(streamed(last, r.Body))
			whole := !r.Aborted && r.Status == http.StatusOK && bytes.Equal(r.Body, sent.Bytes())
			if (whole && total != got) || total < got {
				t.Fatalf("counted %v tokens, the client got %v (whole stream %v)", total, got, whole)
			}
		},
	})
}

// sumCounter adds the token counter's series.
func sumCounter(t phasetest.TB, c *Counter) float64 {
	ch := make(chan prometheus.Metric, 16)
	go func() { c.tokens.Collect(ch); close(ch) }()
	sum := 0.0
	for m := range ch {
		sum += testutil.ToFloat64(m.(prometheus.Collector))
	}
	return sum
}

// The consumer key-auth published labels both series, "anonymous" when
// there is none; the gauge is 1 while the stream runs and 0 after.
func TestCountsPerConsumer(t *testing.T) {
	reg := prometheus.NewRegistry()
	c, err := New(Config{CharsPerToken: 4}, reg)
	if err != nil {
		t.Fatal(err)
	}
	var during float64
	probe := probeUpstream{during: &during, gauge: c.streams.Vec.WithLabelValues("r", "alice")}
	chain, err := phases.NewChain(phases.Options{Route: "r"}, auth{}, c, probe)
	if err != nil {
		t.Fatal(err)
	}
	for _, who := range []string{"alice", ""} {
		req := httptest.NewRequest("POST", "/", strings.NewReader(`{"stream":true}`))
		req.Header.Set(headerPieces, "12345678|abc")
		req.Header.Set(headerConsumer, who)
		chain.ServeHTTP(httptest.NewRecorder(), req)
	}
	if during != 1 {
		t.Fatalf("streams in flight during alice's stream: %v, want 1", during)
	}
	for _, who := range []string{"alice", Anonymous} {
		if n := testutil.ToFloat64(c.tokens.WithLabelValues("r", who)); n != 3 {
			t.Errorf("%s: %v tokens, want 3 (8 chars = 2, 3 chars = 1)", who, n)
		}
		if n := testutil.ToFloat64(c.streams.Vec.WithLabelValues("r", who)); n != 0 {
			t.Errorf("%s: %v streams in flight after the request", who, n)
		}
	}
}

// probeUpstream reads the gauge while its stream is being produced.
type probeUpstream struct {
	during *float64
	gauge  prometheus.Gauge
}

func (p probeUpstream) Name() string  { return "probe" }
func (p probeUpstream) Priority() int { return 0 }
func (p probeUpstream) Upstream(ctx context.Context, r *phases.Request) (*phases.Response, error) {
	if r.Header.Get(headerConsumer) == "alice" {
		*p.during = testutil.ToFloat64(p.gauge)
	}
	return upstream{}.Upstream(ctx, r)
}

func TestValidate(t *testing.T) {
	if errs := (&Config{CharsPerToken: 0}).Validate(); len(errs) != 1 || errs[0].Field != "chars_per_token" {
		t.Fatalf("Validate(chars_per_token: 0) = %v", errs)
	}
	if _, err := New(Config{}, prometheus.NewRegistry()); err == nil {
		t.Fatal("New accepted chars_per_token 0")
	}
}
