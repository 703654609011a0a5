package provider_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/phasegate/phasegate/forward"
	"github.com/phasegate/phasegate/llm"
	"github.com/phasegate/phasegate/llm/provider"
	"github.com/phasegate/phasegate/llm/provider/providertest"
	"github.com/phasegate/phasegate/metrics"
	"github.com/phasegate/phasegate/mockllm"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/phases/phasetest"
)

// fallback is an AI upstream over several instances that falls back on
// every failure: the attempt scope's worst case. It keeps what Serve
// decided, and notes the rules of its own that Serve breaks.
type fallback struct {
	proxy     *provider.Proxy
	instances []*provider.Instance
	info      *llm.Info // as recorded by the access hook
	served    bool      // Serve returned an answer or an error
	refused   bool      // Serve returned an exit
	decided   llm.Info
	problems  []string
}

func (u *fallback) Name() string { return "fallback" }

func (u *fallback) Access(ctx context.Context, r *phases.Request) phases.Exit {
	ex := u.proxy.Access(r)
	u.info, _ = llm.InfoKey.Get(r.Values)
	return ex
}

func (u *fallback) Upstream(ctx context.Context, r *phases.Request) (*phases.Response, error) {
	defer func() {
		if v := recover(); v != nil {
			u.problems = append(u.problems, fmt.Sprint("Serve panicked: ", v))
			panic(v)
		}
	}()
	next := 0
	resp, err := u.proxy.Serve(ctx, r, func() *provider.Instance {
		if next == len(u.instances) {
			return nil
		}
		next++
		return u.instances[next-1]
	}, func(provider.Failure) bool { return true })
	_, u.refused = asExit(err) // here only a body Serve cannot send
	u.served = !u.refused
	return resp, err
}

func (u *fallback) Log(ctx context.Context, s *phases.Summary) {
	u.proxy.Log(s)
	info, _ := llm.InfoKey.Get(s.Values)
	if info == nil {
		return
	}
	if u.info != nil && info != u.info {
		// Plugins after access hold on to it: it must stay the one.
		u.problems = append(u.problems, "the LLMInfo of the log is not the one recorded in access")
	}
	u.decided = *info
}

// kinds of instances. The mock's own behaviours are asked for through each
// instance's auth headers, which go on every request it sends; "dead" is a
// port nothing listens on (a network error before any answer); the 400s
// come from small servers of their own.
var (
	instanceKinds  = []string{"ok", "split", "dead", "reset", "500", "429", "400", "400sse", "400usage"}
	instanceFaults = map[string]map[string]string{
		"500":   {mockllm.HeaderStatus: "500"},
		"429":   {mockllm.HeaderStatus: "429"},
		"400":   {mockllm.HeaderStatus: "400"},
		"reset": {mockllm.HeaderResetAfter: "1"}, // a network error after the answer began
		"split": {mockllm.HeaderSplit: "true"},
	}
)

// decides returns which instance Serve must settle on for a chain of
// instance kinds, all failures eligible: the first that answers below 400;
// when none does, the last that answered an error status (its answer is
// kept); else the last tried. It also returns how many attempts it takes.
func decides(kinds []string, stream bool) (served, attempts int) {
	answered := -1
	for i, k := range kinds {
		switch {
		case k == "ok", k == "split", k == "reset" && stream: // a reset stream breaks only later
			return i, i + 1
		case strings.HasPrefix(k, "400"), k == "500", k == "429":
			answered = i
		}
	}
	if answered < 0 {
		return len(kinds) - 1, len(kinds)
	}
	return answered, len(kinds)
}

// Random chains of instances that fail by network error, by status or
// not at all, under the harness's random plugins and clients: each
// attempt's in-flight series is back at 0 while the next attempt is in
// flight, each attempt's scope ends before the next opens and by the
// release of the body the client gets, Serve settles on the instance the
// fallback rules name after as many attempts, an error answer's usage is
// not taken, and no upstream request outlives its path.
func TestPropertyAttemptScopes(t *testing.T) {
	m := providertest.StartMock(t)
	usage := `"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}`
	endpoints := map[string]string{
		"dead":     "http://" + providertest.DeadAddr(t) + mockllm.PathChatCompletions,
		"400sse":   providertest.NewUpstream(t, providertest.Reply(400, "text/event-stream", "data: {"+usage+"}\n\n")).URL,
		"400usage": providertest.NewUpstream(t, providertest.Reply(400, "application/json", `{"error":{"message":"no"},`+usage+`}`)).URL,
	}
	transport := forward.NewTransport()
	defer transport.CloseIdleConnections()
	probe := &providertest.InFlightProbe{Base: transport}

	var kinds []string
	var stream bool
	var u *fallback
	phasetest.Check(t, phasetest.Config{
		AttemptScope: provider.AttemptScope,
		Request: func(rt *rapid.T) *http.Request {
			kinds = rapid.SliceOfN(rapid.SampledFrom(instanceKinds), 1, 4).Draw(rt, "instances")
			stream = rapid.Bool().Draw(rt, "stream")
			req := httptest.NewRequest(http.MethodPost, mockllm.PathChatCompletions, strings.NewReader(providertest.Chat("m1", stream)))
			req.Header.Set("Content-Type", "application/json")
			return req
		},
		Plugins: func(env *phasetest.Env) []phases.Plugin {
			set, err := metrics.New(env.Registry)
			if err != nil {
				panic(err)
			}
			probe.Watch(env.Registry)
			u = &fallback{proxy: &provider.Proxy{Route: "r", Metrics: set, Model: func(c string) string { return c }}}
			for i, kind := range kinds {
				endpoint, ok := endpoints[kind]
				if !ok {
					endpoint = m.URL() + mockllm.PathChatCompletions
				}
				in, err := provider.NewInstance(provider.Config{
					Name:              fmt.Sprintf("%s-%d", kind, i),
					Provider:          provider.ProviderOpenAICompatible,
					Endpoint:          endpoint,
					AuthHeader:        instanceFaults[kind],
					Timeout:           time.Second,
					MaxStreamDuration: time.Second,
				}, probe)
				if err != nil {
					panic(err)
				}
				u.instances = append(u.instances, in)
			}
			return []phases.Plugin{u}
		},
		Check: func(t phasetest.TB, r *phasetest.Result) {
			trace := strings.Join(r.Journal, "\n")
			if p := append(probe.Problems(), u.problems...); len(p) > 0 {
				t.Fatalf("%s\n%s", strings.Join(p, "\n"), trace)
			}
			if !providertest.Eventually(2*time.Second, func() bool { return m.Mock().Stats().Active == 0 }) {
				t.Fatalf("an upstream request outlived its path:\n%s", trace)
			}
			d := u.decided
			if u.refused && d.Attempts != 0 {
				t.Fatalf("Serve refused the request after %d attempts; a request it cannot send costs none\n%s", d.Attempts, trace)
			}
			if !u.served {
				return // the request never reached Serve, or Serve refused it
			}
			served, attempts := decides(kinds, stream)
			if want := fmt.Sprintf("%s-%d", kinds[served], served); d.Attempts != attempts || d.Instance != want {
				t.Fatalf("over %v (stream %v) Serve settled on %s after %d attempts, want %s after %d\n%s",
					kinds, stream, d.Instance, d.Attempts, want, attempts, trace)
			}
			if k := kinds[served]; d.UsageKnown && (strings.HasPrefix(k, "4") || strings.HasPrefix(k, "5")) {
				t.Fatalf("the usage of a %s answer was taken\n%s", k, trace)
			}
		},
	})
}

// asExit returns the exit an *phases.ExitError in err carries.
func asExit(err error) (phases.Exit, bool) {
	var ee *phases.ExitError
	if errors.As(err, &ee) && ee.Exit.Exited() {
		return ee.Exit, true
	}
	return phases.Exit{}, false
}
