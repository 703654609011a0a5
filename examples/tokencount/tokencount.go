// Package tokencount is the external plugin that docs/writing-plugins.md
// walks through, built in its own module on phasegate's public packages
// only. It counts the content tokens a route streams to each consumer, and
// holds a per-consumer gauge of the streams in flight as a binding, so the
// gauge falls exactly once however the request ends.
package tokencount

import (
	"context"
	"fmt"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/phasegate/phasegate/llm/openai"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/pluginsdk"
)

// Anonymous is the consumer label of requests no plugin authenticated.
const Anonymous = "anonymous"

// Config is the plugin's YAML config: `token-count: { chars_per_token: 4 }`.
type Config struct {
	// CharsPerToken is how many characters of streamed content count as one
	// token (rounded up per event). Default 4, the usual English average.
	CharsPerToken int `yaml:"chars_per_token"`
}

// Validate is called by the gateway after decoding; each error is reported
// at its field's file, line and column.
func (c *Config) Validate() []pluginsdk.FieldError {
	if c.CharsPerToken < 1 {
		return []pluginsdk.FieldError{{Field: "chars_per_token", Msg: fmt.Sprintf("must be at least 1, got %d", c.CharsPerToken)}}
	}
	return nil
}

// Spec registers the plugin with a gateway:
// registry := plugins.Builtins(); registry.Register(tokencount.Spec).
var Spec = pluginsdk.Typed(pluginsdk.Spec{Name: "token-count"},
	func() Config { return Config{CharsPerToken: 4} },
	func(c Config, env pluginsdk.Env) (phases.Plugin, error) { return New(c, env.Registerer) })

// Metric names.
const (
	TokensMetric  = "tokencount_streamed_tokens_total"
	StreamsMetric = "tokencount_streams_in_flight"
)

// Counter is the plugin. One value serves all of a route's requests; what
// belongs to one request lives in its Values and its Scope.
type Counter struct {
	charsPerToken int
	tokens        *prometheus.CounterVec
	streams       phases.BoundGauge
}

// New builds a counter registering its metrics on reg.
func New(cfg Config, reg prometheus.Registerer) (*Counter, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("token-count: %s: %s", errs[0].Field, errs[0].Msg)
	}
	tokens, err := pluginsdk.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: TokensMetric,
		Help: "Content tokens streamed to clients (approximated from characters).",
	}, []string{"route", "consumer"}))
	if err != nil {
		return nil, err
	}
	streams, err := pluginsdk.Register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: StreamsMetric,
		Help: "Streaming requests in flight.",
	}, []string{"route", "consumer"}))
	if err != nil {
		return nil, err
	}
	return &Counter{charsPerToken: cfg.CharsPerToken, tokens: tokens, streams: phases.BoundGauge{Name: StreamsMetric, Vec: streams}}, nil
}

// Name identifies the plugin in logs, metrics and traces.
func (c *Counter) Name() string { return "token-count" }

// Priority runs the counter after key-auth (2500) has published the
// consumer, and before the AI plugins (≤ 1100).
func (c *Counter) Priority() int { return 2000 }

// consumer is the request's consumer label, read once in Access so that
// every hook of the request uses the same one.
var consumer = phases.NewKey[string]("tokencount consumer")

// Access notes the consumer and, for a request asking for a stream, raises
// the in-flight gauge. The binding lowers it when the request's scope ends:
// no hook has to remember to, on any path.
func (c *Counter) Access(ctx context.Context, r *phases.Request) phases.Exit {
	who, ok := pluginsdk.Consumer.Get(r.Values)
	if !ok || who == "" {
		who = Anonymous
	}
	consumer.Set(r.Values, who)
	// An unreadable body is left to the upstream, which answers it in the
	// client's protocol; such a request streams nothing.
	body, err := r.Body()
	if err != nil {
		return phases.Exit{}
	}
	if req, err := openai.ParseChatRequest(body); err == nil && req.Stream {
		c.streams.Acquire(r.Scope, r.Route, who)
	}
	return phases.Exit{}
}

// BodyFilter counts the content of each streamed chat.completion.chunk as
// it passes on to the client. An exit's body (an error, a refusal) is not
// model output and is not counted.
func (c *Counter) BodyFilter(ctx context.Context, b *phases.BodyChunk) phases.BodyResult {
	if !b.SSE || b.Exit || len(b.Event) == 0 {
		return phases.BodyResult{}
	}
	if n := c.Tokens(b.Event); n > 0 {
		who, _ := consumer.Get(b.Values)
		c.tokens.WithLabelValues(b.Request.Route, who).Add(float64(n))
	}
	return phases.BodyResult{}
}

// Tokens is the count of one event's data: its delta content's characters
// divided by chars_per_token, rounded up.
func (c *Counter) Tokens(event []byte) int {
	var buf [256]byte
	chars := utf8.RuneCount(openai.AppendChunkDeltaText(buf[:0], event))
	return (chars + c.charsPerToken - 1) / c.charsPerToken
}

var (
	_ phases.AccessHook = (*Counter)(nil)
	_ phases.BodyFilter = (*Counter)(nil)
)
