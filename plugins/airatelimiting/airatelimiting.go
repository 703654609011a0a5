package airatelimiting

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/phasegate/phasegate/fsm"
	"github.com/phasegate/phasegate/llm"
	"github.com/phasegate/phasegate/llm/door"
	llmopenai "github.com/phasegate/phasegate/llm/openai"
	"github.com/phasegate/phasegate/llm/provider"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/pluginsdk"
	"github.com/phasegate/phasegate/ratelimit"
)

// Name is the plugin's name in routes' plugins mappings and in logs.
const Name = "ai-rate-limiting"

// priority runs the limits after key-auth (2500), which names the
// consumer, and ai-proxy (1100), which validates the request and records
// the model, and before ai-prompt-guard (1070) and moderation (1050).
const priority = 1080

// Error types of the plugin's answers.
const (
	TypeRateLimited        = "rate_limit_exceeded"
	TypeInsufficientQuota  = "insufficient_quota"
	TypeServiceUnavailable = "service_unavailable"
)

// Metric names.
const (
	MetricReserved    = "phasegate_ratelimit_reserved"
	MetricCommitted   = "phasegate_ratelimit_committed_total"
	MetricRejected    = "phasegate_ratelimit_rejected_total"
	MetricStoreErrors = "phasegate_ratelimit_store_errors_total"
)

// maxAmount is the largest amount a store takes.
const maxAmount = ratelimit.MaxAmount

// Spec declares ai-rate-limiting to the gateway's registry. Plugins built
// from it share one store per policy (and Redis connection) through the
// gateway's pluginsdk.Shared, so a reload that keeps a store keeps its
// counters and connections, and one that drops its last route closes it.
var Spec = pluginsdk.Typed(pluginsdk.Spec{Name: Name}, DefaultConfig,
	func(c Config, env pluginsdk.Env) (phases.Plugin, error) { return New(c, env) })

// Plugin is the ai-rate-limiting plugin. It is safe for concurrent use:
// per-request state lives in the request's values.
type Plugin struct {
	cfg    Config
	route  string
	limits []limit
	// instances are the limits of upstream instances, by instance name.
	instances map[string]*limit
	keeper    *ratelimit.Keeper
	local     bool // the store answers in process: commits need no goroutine
	stores    io.Closer
	log       zerolog.Logger

	storeErrors prometheus.Counter
	commits     sync.WaitGroup // commits in flight
	closeOnce   sync.Once
	closeErr    error
}

// limit is one configured limit with its metric series.
type limit struct {
	name     string
	key      keySpec
	kind     ratelimit.Kind
	max      int64
	window   time.Duration
	strategy string

	reserved  prometheus.Gauge
	committed prometheus.Counter
	rejected  prometheus.Counter
}

// New builds the plugin for env.Route on the store of cfg.Policy held in
// env.Shared, which the plugins of every route and config using that
// store share; Close gives the hold back. With a nil env.Shared the store
// is the plugin's own.
func New(cfg Config, env pluginsdk.Env) (*Plugin, error) {
	if err := pluginsdk.ConfigError(Name, cfg.Validate()); err != nil {
		return nil, err
	}
	sh, err := acquireStores(env.Shared, cfg, env.Logger)
	if err != nil {
		return nil, err
	}
	p, err := build(cfg, env, sh.keeper, sh.local, sh)
	if err != nil {
		return nil, errors.Join(err, sh.Close())
	}
	return p, nil
}

// NewWithStore builds the plugin on store, with a keeper of its own that
// Close stops; cfg.Policy and cfg.Redis are ignored and Close does not
// close store. Tests and embedding programs use it to choose the store.
func NewWithStore(cfg Config, env pluginsdk.Env, store ratelimit.Store) (*Plugin, error) {
	if err := pluginsdk.ConfigError(Name, cfg.Validate()); err != nil {
		return nil, err
	}
	k, err := newKeeper(store, cfg.Lease, env.Logger)
	if err != nil {
		return nil, err
	}
	_, local := store.(*ratelimit.Local)
	p, err := build(cfg, env, k, local, sharedKeeper{k})
	if err != nil {
		k.Close()
		return nil, err
	}
	return p, nil
}

func build(cfg Config, env pluginsdk.Env, k *ratelimit.Keeper, local bool, stores io.Closer) (*Plugin, error) {
	reg := env.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	reserved, err := pluginsdk.Register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: MetricReserved,
		Help: "Amounts reserved by requests in flight, in the limit's unit (requests, tokens, micro-dollars, slots).",
	}, []string{"route", "limit"}))
	if err != nil {
		return nil, err
	}
	committed, err := pluginsdk.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricCommitted,
		Help: "Amounts charged to limits when requests ended, in the limit's unit (requests, tokens, micro-dollars).",
	}, []string{"route", "limit"}))
	if err != nil {
		return nil, err
	}
	rejected, err := pluginsdk.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricRejected,
		Help: "Requests rejected by a limit.",
	}, []string{"route", "limit"}))
	if err != nil {
		return nil, err
	}
	storeErrors, err := pluginsdk.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricStoreErrors,
		Help: "Calls to the rate-limit store that failed or timed out.",
	}, []string{"route"}))
	if err != nil {
		return nil, err
	}
	p := &Plugin{
		instances:   instanceLimits(cfg, env.Route, reserved, committed, rejected),
		cfg:         cfg,
		route:       env.Route,
		keeper:      k,
		local:       local,
		stores:      stores,
		log:         env.Logger,
		storeErrors: storeErrors.WithLabelValues(env.Route),
	}
	for _, lc := range cfg.Limits {
		key, _ := parseKey(lc.Key)
		l := limit{
			name: lc.Name, key: key, window: lc.Window, strategy: lc.Strategy,
			reserved:  reserved.WithLabelValues(env.Route, lc.Name),
			committed: committed.WithLabelValues(env.Route, lc.Name),
			rejected:  rejected.WithLabelValues(env.Route, lc.Name),
		}
		switch {
		case lc.Tokens > 0:
			l.kind, l.max = ratelimit.Tokens, lc.Tokens
		case lc.Requests > 0:
			l.kind, l.max = ratelimit.Requests, lc.Requests
		case lc.Concurrent > 0:
			l.kind, l.max = ratelimit.Concurrent, lc.Concurrent
		default:
			l.kind = ratelimit.Cost
			l.max, _ = ratelimit.MicroDollars(lc.Cost)
		}
		if l.strategy == "" {
			l.strategy = StrategyTotal
		}
		p.limits = append(p.limits, l)
	}
	return p, nil
}

// Close waits for the commits in flight, then gives back the plugin's
// hold on its keeper and store: the last hold closes them. The gateway
// calls it once a reload has retired the plugin and its last request has
// ended. Close is idempotent.
func (p *Plugin) Close() error {
	p.commits.Wait()
	p.closeOnce.Do(func() { p.closeErr = p.stores.Close() })
	return p.closeErr
}

// LogFields implements pluginsdk.LogFielder: the access log's ratelimit
// (the limit that rejected the request, or ""), and reserved and committed
// by limit name.
func (p *Plugin) LogFields(s *phases.Summary, ev *zerolog.Event) {
	o := OutcomeFrom(s.Values)
	if o == nil {
		return
	}
	ev.Str("ratelimit", o.Rejected).
		Dict("reserved", amounts(o.Limits, o.Reserved)).
		Dict("committed", amounts(o.Limits, o.Committed))
}

// amounts is a limit's figures by limit name, for the access log.
func amounts(names []string, v []int64) *zerolog.Event {
	d := zerolog.Dict()
	for i, n := range names {
		if i < len(v) {
			d = d.Int64(n, v[i])
		}
	}
	return d
}

// Name implements phases.Plugin.
func (*Plugin) Name() string { return Name }

// Priority implements phases.Prioritized.
func (*Plugin) Priority() int { return priority }

// Outcome is what the plugin did to a request, for the access log: the
// limit that rejected it, and per limit (in config order) what was
// reserved and what was charged.
type Outcome struct {
	// Rejected names the limit that rejected the request, if one did.
	Rejected string
	// StoreError reports that the store failed the admission.
	StoreError bool
	// Limits, Reserved and Committed are parallel: each limit's name and
	// its amounts. Committed is set in the log phase.
	Limits    []string
	Reserved  []int64
	Committed []int64
}

// Result is the request value holding the plugin's *Outcome.
var Result = phases.NewKey[*Outcome]("ai-rate-limiting")

// OutcomeFrom returns the plugin's outcome stored in v, or nil.
func OutcomeFrom(v *phases.Values) *Outcome {
	o, _ := Result.Get(v)
	return o
}

// state is one admitted request's reservation and what is known of its
// actual cost.
type state struct {
	p        *Plugin
	res      *ratelimit.Reservation // nil when admitted by fail_open
	items    []ratelimit.Item
	model    string
	prompt   int64 // the prompt estimate
	reserved int64 // completion tokens reserved (all choices)
	hide     bool  // drop the usage chunk the client did not ask for
	out      *Outcome
	values   *phases.Values

	status   int          // the upstream's status, once seen
	proto    llm.Protocol // the client's door: what its bodies are
	dec      llm.StreamDecoder
	events   []llm.Event
	text     []byte // completion text delivered, up to textCap bytes
	textCap  int
	whole    []byte // a body that is not a stream, up to wholeCap bytes
	usage    llm.Usage
	hasUsage bool

	settled bool
	actual  []int64
}

var stateKey = phases.NewKey[*state]("ai-rate-limiting state")

// wholeCap bounds the non-stream body kept to read its usage or text.
const wholeCap = 4 << 20

// Access implements phases.AccessHook: it estimates the request's cost and
// reserves it on every limit at once, or rejects the request.
func (p *Plugin) Access(ctx context.Context, r *phases.Request) phases.Exit {
	body, err := r.Body()
	switch {
	case errors.Is(err, phases.ErrBodyTooLarge):
		return phases.Error(http.StatusRequestEntityTooLarge, "invalid_request_error", "request body too large")
	case err != nil:
		return phases.Error(http.StatusBadRequest, "invalid_request_error", "could not read the request body")
	}
	st := &state{p: p, values: r.Values, out: &Outcome{}}
	if ex := p.estimate(r, body, st); ex.Exited() {
		return ex
	}
	st.items = make([]ratelimit.Item, len(p.limits))
	for i := range p.limits {
		l := &p.limits[i]
		st.items[i] = ratelimit.Item{
			Limit:  ratelimit.Limit{Name: l.name, Key: p.keyValue(l.key, r), Kind: l.kind, Max: l.max, Window: l.window},
			Amount: st.amount(l, st.prompt, st.reserved, true),
		}
		if l.kind == ratelimit.Concurrent {
			st.items[i].Amount = 1 // the request's slot
		}
	}
	st.out.Limits = make([]string, len(p.limits))
	for i := range p.limits {
		st.out.Limits[i] = p.limits[i].name
	}
	Result.Set(r.Values, st.out)

	// The answer must arrive even when the client leaves meanwhile, so that
	// what it reserved is bound and comes back; the store bounds the call.
	d, err := p.keeper.Reserve(context.WithoutCancel(ctx), st.items)
	switch {
	case err != nil:
		p.storeErrors.Inc()
		st.out.StoreError = true
		p.log.Warn().Str("route", p.route).Err(err).Str("on_store_error", p.cfg.OnStoreError).Msg("rate-limit store unavailable")
		if p.cfg.OnStoreError == FailClosed {
			return phases.Error(http.StatusServiceUnavailable, TypeServiceUnavailable, "the rate-limit store is unavailable; try again later")
		}
	case !d.Admitted():
		return p.reject(r, d, st)
	default:
		st.res = d.Reservation
	}
	p.bind(r, st)
	if len(p.instances) > 0 {
		provider.Gate.Set(r.Values, provider.AttemptGate(st))
	}
	if err == nil {
		p.quotaHeaders(r, d)
	}
	return phases.Exit{}
}

// bind makes st's reservation a binding of the request: its release
// reconciles it to the actual cost, once, however the request ends.
func (p *Plugin) bind(r *phases.Request, st *state) {
	if st.res != nil {
		st.out.Reserved = make([]int64, len(st.items))
		for i := range st.items {
			st.out.Reserved[i] = st.items[i].Amount
			p.limits[i].reserved.Add(float64(st.items[i].Amount))
		}
	}
	// Named apart from the gauge, whose amounts are not one per binding.
	r.Scope.Acquire(fsm.Resource{Name: "ratelimit reservation", Labels: []string{p.route}}, st.release)
	stateKey.Set(r.Values, st)
}

// estimate fills in st's model, prompt estimate and completion reserve,
// and rewrites the body when the upstream must be asked for usage or a
// max_tokens.
func (p *Plugin) estimate(r *phases.Request, body []byte, st *state) phases.Exit {
	mode := p.cfg.Estimate.Prompt
	st.proto = door.Of(r).Protocol
	req, err := door.Codec(st.proto).DecodeRequest(body)
	if err != nil {
		// Not a chat request: its bytes are its prompt.
		st.prompt = rawTokens(mode, body)
		st.reserved = p.cfg.Estimate.CompletionTokens
		st.textCap = textCap(st.reserved)
		return phases.Exit{}
	}
	st.model = req.Model
	if info, ok := llm.InfoKey.Get(r.Values); ok && info != nil && info.Model != "" {
		st.model = info.Model // after ai-proxy's options.model
	}
	if mode == EstimateUpperBound {
		st.prompt = promptUpperBound(req)
	} else {
		st.prompt = llm.EstimateInputTokens(req)
	}
	completion := req.MaxTokens
	options := map[string]any{}
	if completion <= 0 {
		completion = p.cfg.Estimate.CompletionTokens
		if p.cfg.Estimate.EnforceMaxTokens {
			switch st.proto {
			case llm.OpenAIChat:
				options["max_tokens"] = completion
			case llm.OpenAIResponses:
				options["max_output_tokens"] = completion
			} // Messages requires max_tokens: the request has one
		}
	}
	st.reserved = min(completion*max(req.N, 1), maxAmount)
	st.textCap = textCap(st.reserved)
	if req.Stream && !req.IncludeUsage && st.proto == llm.OpenAIChat {
		st.hide = true
		if hasExplicitUsageOff(body) {
			options["stream_options"] = map[string]any{"include_usage": true}
		}
	}
	if len(options) > 0 {
		out, err := llmopenai.Rewrite(body, options, false)
		if err != nil {
			return phases.Error(http.StatusBadRequest, "invalid_request_error", err.Error())
		}
		r.SetBody(out)
	}
	return phases.Exit{}
}

// hasExplicitUsageOff reports whether a streamed request that does not ask
// for usage may set stream_options.include_usage itself (to false), which
// the upstream would obey; the AI upstream asks for usage otherwise.
func hasExplicitUsageOff(body []byte) bool {
	return bytes.Contains(body, []byte("include_usage"))
}

// textCap bounds the completion text kept for a reserve of n tokens: at
// eight bytes or more, any text estimates to at least n tokens, and the
// charge is capped at the reserve.
func textCap(n int64) int { return int(min(8*n+64, 64<<20)) }

// keyValue resolves a limit's key for r.
func (p *Plugin) keyValue(k keySpec, r *phases.Request) string {
	switch k.kind {
	case keyConsumer:
		return pluginsdk.Get(r.Values, pluginsdk.Consumer)
	case keyRoute:
		return r.Route
	case keyHeader:
		return r.Header.Get(k.header)
	case keyIP:
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			return r.RemoteAddr
		}
		return host
	}
	return ""
}

// reject answers a request a limit did not admit.
func (p *Plugin) reject(r *phases.Request, d ratelimit.Decision, st *state) phases.Exit {
	l := &p.limits[d.Rejected]
	l.rejected.Inc()
	st.out.Rejected = l.name
	p.quotaHeaders(r, d)
	if l.kind == ratelimit.Cost {
		return phases.Error(http.StatusTooManyRequests, TypeInsufficientQuota, fmt.Sprintf("budget %q is exhausted", l.name))
	}
	retry := d.States[d.Rejected].RetryAfter()
	if l.kind == ratelimit.Concurrent {
		retry = 1 // a slot may free at any moment
	}
	r.SetResponseHeader("Retry-After", strconv.FormatInt(max(retry, 1), 10))
	return phases.Error(p.cfg.RejectedCode, TypeRateLimited, fmt.Sprintf("rate limit %q exceeded", l.name))
}

// quotaHeaders sets every limit's X-RateLimit-* headers on the response.
func (p *Plugin) quotaHeaders(r *phases.Request, d ratelimit.Decision) {
	if !p.cfg.ShowLimitQuotaHeader {
		return
	}
	for i, s := range d.States {
		name := p.limits[i].name
		r.SetResponseHeader("X-RateLimit-Limit-"+name, strconv.FormatInt(s.Limit, 10))
		r.SetResponseHeader("X-RateLimit-Remaining-"+name, strconv.FormatInt(s.Remaining, 10))
		r.SetResponseHeader("X-RateLimit-Reset-"+name, strconv.FormatInt(s.RetryAfter(), 10))
	}
}

// HeaderFilter implements phases.HeaderFilter: it notes the upstream's
// status.
func (p *Plugin) HeaderFilter(ctx context.Context, h *phases.ResponseHead) phases.Exit {
	if st, ok := stateKey.Get(h.Values); ok && !h.Exit {
		st.status = h.Status
	}
	return phases.Exit{}
}

// BodyFilter implements phases.BodyFilter: it follows the upstream's body
// for its usage and the completion text delivered, and keeps the usage
// chunk from a streaming client that did not ask for it.
func (p *Plugin) BodyFilter(ctx context.Context, c *phases.BodyChunk) phases.BodyResult {
	st, ok := stateKey.Get(c.Values)
	if !ok || c.Exit {
		return phases.BodyResult{}
	}
	if !c.SSE {
		if len(st.whole)+len(c.Data) <= wholeCap {
			st.whole = append(st.whole, c.Data...)
		}
		if c.EOS {
			st.readWhole()
		}
		return phases.BodyResult{}
	}
	if c.Event == nil {
		return phases.BodyResult{}
	}
	if st.dec == nil {
		st.dec = door.Codec(st.proto).NewStreamDecoder()
	}
	evs, err := st.dec.Decode(st.events[:0], "", c.Event)
	st.events = evs[:0]
	if err != nil {
		return phases.BodyResult{}
	}
	usageOnly := len(evs) > 0
	for i := range evs {
		switch ev := &evs[i]; ev.Kind {
		case llm.EventUsage:
			st.usage, st.hasUsage = ev.Usage, true
		case llm.EventBlockDelta:
			st.keepText(ev.Delta)
			usageOnly = false
		default:
			usageOnly = false
		}
	}
	if usageOnly && st.hide {
		return phases.Replace(nil)
	}
	return phases.BodyResult{}
}

// keepText adds delivered completion text, up to the cap.
func (st *state) keepText(b []byte) {
	if room := st.textCap - len(st.text); room > 0 {
		st.text = append(st.text, b[:min(len(b), room)]...)
	}
}

// readWhole reads the usage, or else the text, of a body that is not a
// stream.
func (st *state) readWhole() {
	resp, err := door.Codec(st.proto).DecodeResponse(st.whole)
	st.whole = nil
	if err != nil {
		return
	}
	if resp.Usage != nil {
		st.usage, st.hasUsage = *resp.Usage, true
		return
	}
	for i := range resp.Choices {
		for _, t := range resp.Choices[i].Texts() {
			st.keepText([]byte(t))
		}
	}
}

// Log implements phases.LogHook: it settles the request's actual cost,
// for the access log; the binding commits it when the request is done.
func (p *Plugin) Log(ctx context.Context, s *phases.Summary) {
	st, ok := stateKey.Get(s.Values)
	if !ok {
		return
	}
	called := false
	for _, step := range s.Trace {
		called = called || step.To == fsm.StateUpstream
	}
	if info, ok := llm.InfoKey.Get(s.Values); ok && info != nil && info.Attempts == 0 {
		called = false // an AI upstream that sent nothing: every instance refused
	}
	st.settle(called)
}

// settle computes the actual amount of every limit, once: the upstream's
// usage; with none, nothing when no upstream was called, no tokens when
// it answered an error status, and otherwise the prompt estimate plus the
// completion text delivered (at most what was reserved).
func (st *state) settle(called bool) {
	if st.settled {
		return
	}
	st.settled = true
	if !st.hasUsage && called {
		if info, ok := llm.InfoKey.Get(st.values); ok && info != nil && info.UsageKnown {
			st.usage = llm.Usage{InputTokens: int64(info.PromptTokens), OutputTokens: int64(info.CompletionTokens)}
			st.hasUsage = true
		}
	}
	var prompt, completion int64
	if called && (st.hasUsage || st.status < http.StatusBadRequest) {
		prompt, completion = st.delivered()
	}
	st.actual = make([]int64, len(st.items))
	for i := range st.p.limits {
		st.actual[i] = min(st.amount(&st.p.limits[i], prompt, completion, called), maxAmount)
	}
	st.out.Committed = st.actual
}

// delivered is the tokens of an answer the client got: the upstream's
// usage, else the prompt estimate plus the completion text delivered (at
// most what was reserved).
func (st *state) delivered() (prompt, completion int64) {
	if !st.hasUsage {
		if info, ok := llm.InfoKey.Get(st.values); ok && info != nil && info.UsageKnown {
			st.usage = llm.Usage{InputTokens: int64(info.PromptTokens), OutputTokens: int64(info.CompletionTokens)}
			st.hasUsage = true
		}
	}
	if st.hasUsage {
		return max(st.usage.InputTokens, 0), max(st.usage.OutputTokens, 0)
	}
	return st.prompt, min(textTokens(st.p.cfg.Estimate.Prompt, st.text), st.reserved)
}

// amount is what tokens of prompt and completion count on l; called says
// whether the request reached an upstream (a request counts only then).
func (st *state) amount(l *limit, prompt, completion int64, called bool) int64 {
	switch l.kind {
	case ratelimit.Requests:
		if called {
			return 1
		}
		return 0
	case ratelimit.Concurrent:
		return 0 // the slot is released, not charged
	case ratelimit.Cost:
		return st.p.price(st.model).microDollars(prompt, completion)
	}
	switch l.strategy {
	case StrategyPrompt:
		return prompt
	case StrategyCompletion:
		return completion
	}
	return min(prompt+completion, maxAmount)
}

// price is model's price, or the "*" fallback, or zero.
func (p *Plugin) price(model string) Price {
	if pr, ok := p.cfg.Prices[model]; ok {
		return pr
	}
	return p.cfg.Prices["*"]
}

// release is the binding's release: it settles the actual cost if log
// did not (the upstream was called if it answered or an attempt was
// made), lowers the reserved gauge, counts what is charged and commits.
func (st *state) release() {
	if !st.settled {
		info, _ := llm.InfoKey.Get(st.values)
		st.settle(st.status != 0 || (info != nil && info.Attempts > 0))
	}
	p := st.p
	for i := range p.limits {
		if st.res != nil {
			p.limits[i].reserved.Sub(float64(st.items[i].Amount))
		}
		p.limits[i].committed.Add(float64(st.actual[i]))
	}
	if st.res != nil {
		p.commitSoon(st.res, st.actual)
	}
}

// commitSoon commits res at once on the local store. Nothing waits for the
// shared store: there the commit runs on its own, bounded by the store's
// timeout, retried once, else left to the lease.
func (p *Plugin) commitSoon(res *ratelimit.Reservation, actual []int64) {
	if p.local {
		p.commit(res, actual)
		return
	}
	p.commits.Add(1)
	go func() {
		defer p.commits.Done()
		p.commit(res, actual)
	}()
}

// commit commits res, retrying once; a reservation whose commit fails
// twice comes back when its lease passes.
func (p *Plugin) commit(res *ratelimit.Reservation, actual []int64) {
	err := p.keeper.Commit(context.Background(), res, actual)
	if err != nil {
		err = p.keeper.Commit(context.Background(), res, actual)
	}
	if err != nil {
		p.storeErrors.Inc()
		p.log.Warn().Str("route", p.route).Err(err).Str("reservation", res.ID()).Msg("rate-limit commit failed; its lease will return it")
	}
}

// Interface guards.
var (
	_ phases.AccessHook    = (*Plugin)(nil)
	_ phases.HeaderFilter  = (*Plugin)(nil)
	_ phases.BodyFilter    = (*Plugin)(nil)
	_ phases.LogHook       = (*Plugin)(nil)
	_ phases.Prioritized   = (*Plugin)(nil)
	_ pluginsdk.LogFielder = (*Plugin)(nil)
	_ io.Closer            = (*Plugin)(nil)
)
