package airatelimiting

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/phasegate/phasegate/fsm"
	"github.com/phasegate/phasegate/llm/provider"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/pluginsdk"
	"github.com/phasegate/phasegate/ratelimit"
)

// InstanceLimit limits the attempts on one upstream instance of the route
// (an ai-proxy-multi instance by name, or "ai-proxy"): each attempt
// reserves its estimate on the attempt's own scope, and an instance over
// its limit is skipped as if it had failed. Counters are kept per route.
type InstanceLimit struct {
	// Tokens or Requests is the limit; set exactly one.
	Tokens   int64 `yaml:"tokens"`
	Requests int64 `yaml:"requests"`
	// Window is the limit's fixed window. Required.
	Window time.Duration `yaml:"window"`
}

// instancePrefix starts the store and metric name of an instance limit;
// configured limit names cannot contain its ':'.
const instancePrefix = "instance:"

// validateInstances reports the problems of c.Instances, each at its field.
func (c *Config) validateInstances() []pluginsdk.FieldError {
	var errs []pluginsdk.FieldError
	names := make([]string, 0, len(c.Instances))
	for n := range c.Instances {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		il := c.Instances[n]
		at := fmt.Sprintf("instances[%q]", n)
		if !validName(n) {
			errs = append(errs, pluginsdk.FieldError{Field: at, Msg: fmt.Sprintf("an instance limit needs an instance name of 1 to 64 letters, digits, '-' or '_', got %q", n)})
			continue
		}
		if (il.Tokens != 0) == (il.Requests != 0) {
			errs = append(errs, pluginsdk.FieldError{Field: at, Msg: "exactly one of tokens or requests must be set"})
			continue
		}
		lc := LimitConfig{Name: n, Key: "route", Tokens: il.Tokens, Requests: il.Requests, Window: il.Window}
		for _, e := range lc.validate() {
			if e.Field != "" {
				e.Field = "." + e.Field
			}
			errs = append(errs, pluginsdk.FieldError{Field: at + e.Field, Msg: e.Msg})
		}
	}
	return errs
}

// instanceLimits builds the instance limits of cfg with their series.
func instanceLimits(cfg Config, route string, reserved *prometheus.GaugeVec, committed, rejected *prometheus.CounterVec) map[string]*limit {
	if len(cfg.Instances) == 0 {
		return nil
	}
	out := make(map[string]*limit, len(cfg.Instances))
	for n, il := range cfg.Instances {
		name := instancePrefix + n
		l := &limit{
			name: name, key: keySpec{kind: keyRoute}, window: il.Window, strategy: StrategyTotal,
			kind: ratelimit.Tokens, max: il.Tokens,
			reserved:  reserved.WithLabelValues(route, name),
			committed: committed.WithLabelValues(route, name),
			rejected:  rejected.WithLabelValues(route, name),
		}
		if il.Requests != 0 {
			l.kind, l.max = ratelimit.Requests, il.Requests
		}
		out[n] = l
	}
	return out
}

// Admit implements provider.AttemptGate: an attempt on an instance with a
// limit reserves on it, bound to the attempt's scope, or the instance is
// skipped.
func (st *state) Admit(ctx context.Context, r *phases.Request, in *provider.Instance, _ string, scope *fsm.Scope) phases.Exit {
	p := st.p
	l, ok := p.instances[in.Name()]
	if !ok {
		return phases.Exit{}
	}
	item := ratelimit.Item{
		Limit:  ratelimit.Limit{Name: l.name, Key: r.Route, Kind: l.kind, Max: l.max, Window: l.window},
		Amount: st.amount(l, st.prompt, st.reserved, true),
	}
	d, err := p.keeper.Reserve(context.WithoutCancel(ctx), []ratelimit.Item{item})
	switch {
	case err != nil:
		p.storeErrors.Inc()
		p.log.Warn().Str("route", p.route).Str("instance", in.Name()).Err(err).Str("on_store_error", p.cfg.OnStoreError).Msg("rate-limit store unavailable")
		if p.cfg.OnStoreError == FailClosed {
			return phases.Error(http.StatusServiceUnavailable, TypeServiceUnavailable, "the rate-limit store is unavailable; try again later")
		}
		return phases.Exit{}
	case !d.Admitted():
		l.rejected.Inc()
		ex := phases.Error(p.cfg.RejectedCode, TypeRateLimited, fmt.Sprintf("rate limit %q exceeded", l.name))
		h := ex.Header()
		h.Set("Retry-After", strconv.FormatInt(max(d.States[0].RetryAfter(), 1), 10))
		return phases.Reply(ex.Status(), h, ex.Body())
	}
	l.reserved.Add(float64(item.Amount))
	hold := &attemptHold{st: st, l: l, res: d.Reservation, amount: item.Amount}
	scope.Acquire(fsm.Resource{Name: "ratelimit attempt reservation", Labels: []string{p.route, in.Name()}}, hold.release)
	return phases.Exit{}
}

// attemptHold is one attempt's reservation on its instance's limit.
type attemptHold struct {
	st     *state
	l      *limit
	res    *ratelimit.Reservation
	amount int64
}

// release commits the attempt's actual cost when its scope ends: nothing
// in tokens for an attempt whose answer the client did not get as a
// success (it failed, or the request ended before a response), else the
// request's usage or estimate; one request for any attempt sent.
func (h *attemptHold) release() {
	st := h.st
	var prompt, completion int64
	if st.status >= http.StatusOK && st.status < http.StatusBadRequest {
		prompt, completion = st.delivered()
	}
	actual := min(st.amount(h.l, prompt, completion, true), maxAmount)
	h.l.reserved.Sub(float64(h.amount))
	h.l.committed.Add(float64(actual))
	st.p.commitSoon(h.res, []int64{actual})
}
