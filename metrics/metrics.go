// Package metrics defines phasegate's Prometheus metrics (docs/metrics.md): one
// Set per gateway, registered on the Registerer the embedding program
// passes, never on the global registry.
package metrics

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Label names.
const (
	LabelRoute       = "route"
	LabelCode        = "code"
	LabelInstance    = "instance"
	LabelModel       = "model"
	LabelRequestType = "request_type"
	LabelPhase       = "phase"
	LabelPlugin      = "plugin"
	LabelCause       = "cause"
	// LabelClientProtocol and LabelProviderProtocol take only the names of
	// the LLM protocols (openai-chat, anthropic-messages,
	// openai-responses).
	LabelClientProtocol   = "client_protocol"
	LabelProviderProtocol = "provider_protocol"
)

// Request types of the LLM metrics.
const (
	RequestTypeChat   = "ai_chat"
	RequestTypeStream = "ai_stream"
)

// MaxModelLabelBytes bounds the model label (docs/metrics.md).
const MaxModelLabelBytes = 128

// Model cuts a model name to MaxModelLabelBytes without splitting a UTF-8
// sequence.
func Model(m string) string { return Cut(m, MaxModelLabelBytes) }

// Cut returns s cut to at most n bytes without splitting a UTF-8 sequence:
// how client-supplied text is bounded in labels and log fields.
func Cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && s[cut]&0xC0 == 0x80 { // continuation byte
		cut--
	}
	return s[:cut]
}

// DefaultMaxModelsPerRoute is how many distinct model label values a route
// may have unless SetMaxModelsPerRoute says otherwise.
const DefaultMaxModelsPerRoute = 100

// ModelOther is the model label of every model beyond a route's limit.
const ModelOther = "other"

// models bounds the model label's values per route: a client that names a
// new model on every request must not grow /metrics and the heap.
type models struct {
	max    atomic.Int64
	mu     sync.RWMutex
	routes map[string]map[string]struct{} // the labels admitted, by route
}

func (m *models) label(route, model string) string {
	model = Model(model)
	m.mu.RLock()
	_, ok := m.routes[route][model]
	m.mu.RUnlock()
	if ok {
		return model
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := m.routes[route]
	if _, ok := seen[model]; ok {
		return model
	}
	if int64(len(seen)) >= m.max.Load() {
		return ModelOther
	}
	if seen == nil {
		seen = map[string]struct{}{}
		m.routes[route] = seen
	}
	seen[model] = struct{}{}
	return model
}

// Set is every metric of the contract.
type Set struct {
	HTTPRequests *prometheus.CounterVec
	HTTPDuration *prometheus.HistogramVec
	HTTPActive   *prometheus.GaugeVec

	LLMActive           *prometheus.GaugeVec
	LLMDuration         *prometheus.HistogramVec
	LLMTimeToFirstToken *prometheus.HistogramVec
	LLMPromptTokens     *prometheus.CounterVec
	LLMCompletionTokens *prometheus.CounterVec
	LLMRequests         *prometheus.CounterVec

	LifecycleExits  *prometheus.CounterVec
	LifecycleAborts *prometheus.CounterVec

	models models
}

// Names of the gauges, also used as binding names in traces.
const (
	NameHTTPActive = "phasegate_http_active_requests"
	NameLLMActive  = "phasegate_llm_active_connections"
)

var latencyBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}

// New creates the set and registers it on reg.
func New(reg prometheus.Registerer) (*Set, error) {
	llm := []string{LabelRoute, LabelInstance, LabelModel, LabelRequestType}
	s := &Set{
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "phasegate_http_requests_total",
			Help: "Requests handled, by route and final status code.",
		}, []string{LabelRoute, LabelCode}),
		HTTPDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "phasegate_http_request_duration_seconds",
			Help:    "Time from accepting a request to its log phase.",
			Buckets: latencyBuckets,
		}, []string{LabelRoute}),
		HTTPActive: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: NameHTTPActive,
			Help: "Requests between start and done.",
		}, []string{LabelRoute}),
		LLMActive: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: NameLLMActive,
			Help: "Upstream LLM attempts in flight.",
		}, llm),
		LLMDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "phasegate_llm_request_duration_seconds",
			Help:    "Duration of LLM upstream requests that answered with a status below 400, to the end of the response.",
			Buckets: latencyBuckets,
		}, llm),
		LLMTimeToFirstToken: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "phasegate_llm_time_to_first_token_seconds",
			Help:    "Time from sending a streamed LLM request to its first content event.",
			Buckets: latencyBuckets,
		}, []string{LabelRoute, LabelInstance, LabelModel}),
		LLMPromptTokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "phasegate_llm_prompt_tokens_total",
			Help: "Prompt tokens reported by LLM upstreams.",
		}, llm),
		LLMCompletionTokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "phasegate_llm_completion_tokens_total",
			Help: "Completion tokens reported by LLM upstreams.",
		}, llm),
		LLMRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "phasegate_llm_requests_total",
			Help: "LLM requests sent upstream, by the protocol the client spoke and the one the instance speaks.",
		}, []string{LabelRoute, LabelInstance, LabelClientProtocol, LabelProviderProtocol}),
		LifecycleExits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "phasegate_lifecycle_exits_total",
			Help: "Requests ended early by an exit, by the phase and plugin that exited.",
		}, []string{LabelRoute, LabelPhase, LabelPlugin}),
		LifecycleAborts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "phasegate_lifecycle_aborts_total",
			Help: "Requests aborted because the client went away, by the phase it left in.",
		}, []string{LabelRoute, LabelPhase, LabelCause}),
	}
	s.models.routes = map[string]map[string]struct{}{}
	s.models.max.Store(DefaultMaxModelsPerRoute)
	var errs []error
	for _, c := range s.collectors() {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	return s, errors.Join(errs...)
}

func (s *Set) collectors() []prometheus.Collector {
	return []prometheus.Collector{
		s.HTTPRequests, s.HTTPDuration, s.HTTPActive,
		s.LLMActive, s.LLMDuration, s.LLMTimeToFirstToken, s.LLMPromptTokens, s.LLMCompletionTokens, s.LLMRequests,
		s.LifecycleExits, s.LifecycleAborts,
	}
}

// InitRoute creates the route's always-present series at 0, so that a
// dashboard sees the route before its first request.
func (s *Set) InitRoute(route string) {
	s.HTTPActive.WithLabelValues(route)
}

// ModelLabel is the model label of the LLM metrics for model on route: the
// model cut to MaxModelLabelBytes while the route has fewer distinct model
// labels than its limit (or already has this one), else ModelOther. Labels
// once admitted stay admitted: their series exist for the set's lifetime.
func (s *Set) ModelLabel(route, model string) string { return s.models.label(route, model) }

// SetMaxModelsPerRoute sets how many distinct model labels a route may have
// before later models are recorded as ModelOther (n < 1 means 1). Lowering
// it keeps the labels already admitted.
func (s *Set) SetMaxModelsPerRoute(n int) { s.models.max.Store(int64(max(n, 1))) }
