package airatelimiting

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/phasegate/phasegate/pluginsdk"
	"github.com/phasegate/phasegate/ratelimit"
)

// Values of Config.Policy.
const (
	PolicyLocal = "local"
	PolicyRedis = "redis"
)

// Values of Config.OnStoreError.
const (
	FailClosed = "fail_closed"
	FailOpen   = "fail_open"
)

// Values of Estimate.Prompt.
const (
	EstimateApprox     = "approx"
	EstimateUpperBound = "upper_bound"
)

// Values of LimitConfig.Strategy (APISIX's limit_strategy).
const (
	StrategyTotal      = "total_tokens"
	StrategyPrompt     = "prompt_tokens"
	StrategyCompletion = "completion_tokens"
)

// Defaults of Config.
const (
	DefaultLease            = 2 * time.Minute
	DefaultRejectedCode     = 429
	DefaultCompletionTokens = 256
	DefaultRedisTimeout     = 100 * time.Millisecond
	DefaultKeyPrefix        = "phasegate"
)

// Config is ai-rate-limiting's configuration. Start from DefaultConfig.
type Config struct {
	// Policy is where counters live: "local" (this process) or "redis"
	// (shared by every instance using the same server and key prefix).
	// Default local.
	Policy string `yaml:"policy"`
	// Redis configures the shared store of policy redis.
	Redis Redis `yaml:"redis"`
	// OnStoreError is what a request gets when the store does not answer
	// in time: fail_closed (503 service_unavailable, the default) or
	// fail_open (admitted; counted in the metrics and the access log only).
	OnStoreError string `yaml:"on_store_error"`
	// Lease is how long a reservation lives in the store unless its
	// request renews it (renewed every lease/3 while the request lives).
	// Default 2m.
	Lease time.Duration `yaml:"lease"`
	// RejectedCode is the status of a request over a rate limit. Default
	// 429. Cost budgets always answer 429 insufficient_quota.
	RejectedCode int `yaml:"rejected_code"`
	// ShowLimitQuotaHeader adds X-RateLimit-Limit-<name>,
	// X-RateLimit-Remaining-<name> and X-RateLimit-Reset-<name> to every
	// response. Default true.
	ShowLimitQuotaHeader bool `yaml:"show_limit_quota_header"`
	// Estimate says how a request's cost is estimated before it is sent.
	Estimate Estimate `yaml:"estimate"`
	// Limits must all admit a request. Required, names unique.
	Limits []LimitConfig `yaml:"limits" conf:"required"`
	// Instances limit the upstream instances of the route, by instance
	// name (ai-proxy-multi's names, or "ai-proxy"): an attempt on an
	// instance reserves on its limit, and an instance over its limit is
	// skipped like a failed one. Default none.
	Instances map[string]InstanceLimit `yaml:"instances"`
	// Prices are dollars per million tokens by model, for cost limits;
	// "*" is the fallback. A model without a price costs nothing.
	Prices map[string]Price `yaml:"prices"`
}

// Redis is the shared store's connection.
type Redis struct {
	// Address is host:port. Default 127.0.0.1:6379.
	Address  string `yaml:"address"`
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	DB       int    `yaml:"db"`
	// Timeout bounds every store call, connecting included. Default 100ms.
	Timeout time.Duration `yaml:"timeout"`
	// KeyPrefix starts every key. Default "phasegate".
	KeyPrefix string `yaml:"key_prefix"`
}

// Estimate configures the estimate reserved on admission.
type Estimate struct {
	// Prompt is approx (about four characters a token) or upper_bound
	// (UTF-8 bytes plus a per-message overhead: never below the real
	// count of a byte-level tokenizer). Default approx.
	Prompt string `yaml:"prompt"`
	// CompletionTokens is reserved for the completion of a request that
	// sets no max_tokens or max_completion_tokens. Default 256.
	CompletionTokens int64 `yaml:"completion_tokens"`
	// EnforceMaxTokens sets max_tokens on the upstream request to what
	// was reserved when the client set none, so the completion cannot
	// outgrow its reservation.
	EnforceMaxTokens bool `yaml:"enforce_max_tokens"`
}

// LimitConfig is one limit: a name, what it is keyed by, and exactly one
// of tokens, requests, concurrent or cost.
type LimitConfig struct {
	// Name names the limit in answers, headers, metrics and the access
	// log; it also names the counter, so routes that use the same name
	// and key share it. Required, unique; letters, digits, '-' and '_'.
	Name string `yaml:"name" conf:"required"`
	// Key is what the counter is kept per: consumer, route, global,
	// header:NAME or ip. Default global.
	Key string `yaml:"key"`
	// Tokens is the tokens a window admits, counted as Strategy says.
	Tokens int64 `yaml:"tokens"`
	// Requests is the requests a window admits.
	Requests int64 `yaml:"requests"`
	// Concurrent is the requests served at once.
	Concurrent int64 `yaml:"concurrent"`
	// Cost is the dollars a window admits, priced by Config.Prices.
	Cost float64 `yaml:"cost"`
	// Window is the fixed window of tokens, requests and cost limits,
	// aligned to the store's clock. Required for them; none for concurrent.
	Window time.Duration `yaml:"window"`
	// Strategy is what a tokens limit counts: total_tokens (default),
	// prompt_tokens or completion_tokens.
	Strategy string `yaml:"strategy"`
}

// Price is a model's price in dollars per million tokens.
type Price struct {
	Prompt     float64 `yaml:"prompt"`
	Completion float64 `yaml:"completion"`
}

// DefaultConfig returns the defaults; a config also needs limits.
func DefaultConfig() Config {
	return Config{
		Policy:               PolicyLocal,
		Redis:                Redis{Address: "127.0.0.1:6379", Timeout: DefaultRedisTimeout, KeyPrefix: DefaultKeyPrefix},
		OnStoreError:         FailClosed,
		Lease:                DefaultLease,
		RejectedCode:         DefaultRejectedCode,
		ShowLimitQuotaHeader: true,
		Estimate:             Estimate{Prompt: EstimateApprox, CompletionTokens: DefaultCompletionTokens},
	}
}

// Validate reports the config's problems, each at its field.
func (c *Config) Validate() []pluginsdk.FieldError {
	var errs []pluginsdk.FieldError
	bad := func(field, format string, args ...any) {
		errs = append(errs, pluginsdk.FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	oneOf := func(field, v string, allowed ...string) {
		for _, a := range allowed {
			if v == a {
				return
			}
		}
		bad(field, "must be one of %s, got %q", strings.Join(allowed, ", "), v)
	}
	oneOf("policy", c.Policy, PolicyLocal, PolicyRedis)
	oneOf("on_store_error", c.OnStoreError, FailClosed, FailOpen)
	oneOf("estimate.prompt", c.Estimate.Prompt, EstimateApprox, EstimateUpperBound)
	if c.Estimate.CompletionTokens < 0 || c.Estimate.CompletionTokens > ratelimit.MaxAmount {
		bad("estimate.completion_tokens", "must be in [0, 2^53), got %d", c.Estimate.CompletionTokens)
	}
	if c.Lease < 30*time.Millisecond {
		bad("lease", "must be at least 30ms, got %v", c.Lease)
	}
	if c.RejectedCode < 400 || c.RejectedCode > 599 {
		bad("rejected_code", "must be a status in [400, 599], got %d", c.RejectedCode)
	}
	if c.Policy == PolicyRedis {
		if c.Redis.Timeout <= 0 {
			bad("redis.timeout", "must be positive, got %v", c.Redis.Timeout)
		} else if c.Lease < 3*c.Redis.Timeout {
			bad("lease", "must be at least three times redis.timeout (%v), got %v", c.Redis.Timeout, c.Lease)
		}
		if c.Redis.DB < 0 {
			bad("redis.db", "must not be negative, got %d", c.Redis.DB)
		}
		if c.Redis.Address == "" {
			bad("redis.address", "is required for policy redis")
		}
	}
	if len(c.Limits) > ratelimit.MaxItems {
		bad("limits", "at most %d limits, got %d", ratelimit.MaxItems, len(c.Limits))
	}
	seen := map[string]bool{}
	hasCost := false
	for i := range c.Limits {
		l := &c.Limits[i]
		at := fmt.Sprintf("limits[%d]", i)
		for _, e := range l.validate() {
			if e.Field != "" {
				e.Field = "." + e.Field
			}
			bad(at+e.Field, "%s", e.Msg)
		}
		if seen[l.Name] {
			bad(at+".name", "%q is used twice", l.Name)
		}
		seen[l.Name] = true
		hasCost = hasCost || l.Cost > 0
	}
	for model, p := range c.Prices {
		at := fmt.Sprintf("prices[%q].", model)
		for _, f := range []struct {
			name string
			v    float64
		}{{"prompt", p.Prompt}, {"completion", p.Completion}} {
			if f.v < 0 || math.IsNaN(f.v) || f.v > 1e6 {
				bad(at+f.name, "must be a price in [0, 1000000] dollars per million tokens, got %v", f.v)
			}
		}
	}
	errs = append(errs, c.validateInstances()...)
	if hasCost && len(c.Prices) == 0 {
		bad("prices", "cost limits need prices (\"*\" is the fallback)")
	}
	return errs
}

func (l *LimitConfig) validate() []pluginsdk.FieldError {
	var errs []pluginsdk.FieldError
	bad := func(field, format string, args ...any) {
		errs = append(errs, pluginsdk.FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if !validName(l.Name) {
		bad("name", "must be 1 to 64 letters, digits, '-' or '_', got %q", l.Name)
	}
	if _, err := parseKey(l.Key); err != nil {
		bad("key", "%v", err)
	}
	set := 0
	for _, v := range []float64{float64(l.Tokens), float64(l.Requests), float64(l.Concurrent), l.Cost} {
		if v != 0 {
			set++
		}
	}
	if set != 1 {
		bad("", "exactly one of tokens, requests, concurrent or cost must be set")
	}
	for _, f := range []struct {
		name string
		v    int64
	}{{"tokens", l.Tokens}, {"requests", l.Requests}, {"concurrent", l.Concurrent}} {
		if f.v < 0 || f.v > ratelimit.MaxAmount {
			bad(f.name, "must be in [1, 2^53), got %d", f.v)
		}
	}
	if _, err := ratelimit.MicroDollars(l.Cost); err != nil || l.Cost < 0 {
		bad("cost", "must be a positive number of dollars, got %v", l.Cost)
	}
	switch {
	case l.Concurrent != 0 && l.Window != 0:
		bad("window", "a concurrent limit has no window")
	case l.Concurrent == 0 && (l.Window < time.Millisecond || l.Window%time.Millisecond != 0):
		bad("window", "must be a positive whole number of milliseconds, got %v", l.Window)
	}
	switch l.Strategy {
	case "", StrategyTotal, StrategyPrompt, StrategyCompletion:
		if l.Strategy != "" && l.Tokens == 0 {
			bad("strategy", "applies to tokens limits only")
		}
	default:
		bad("strategy", "must be one of %s, %s, %s, got %q", StrategyTotal, StrategyPrompt, StrategyCompletion, l.Strategy)
	}
	return errs
}

// validName reports whether s can name a limit in a response header.
func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// keyKind is what a limit's counter is kept per.
type keyKind uint8

const (
	keyGlobal keyKind = iota
	keyConsumer
	keyRoute
	keyHeader
	keyIP
)

// parseKey reads a limit's key; for header:NAME it returns the header name.
func parseKey(s string) (keySpec, error) {
	switch s {
	case "", "global":
		return keySpec{kind: keyGlobal}, nil
	case "consumer":
		return keySpec{kind: keyConsumer}, nil
	case "route":
		return keySpec{kind: keyRoute}, nil
	case "ip":
		return keySpec{kind: keyIP}, nil
	}
	if name, ok := strings.CutPrefix(s, "header:"); ok && name != "" && !strings.ContainsAny(name, " :\t") {
		return keySpec{kind: keyHeader, header: name}, nil
	}
	return keySpec{}, fmt.Errorf("must be consumer, route, global, header:NAME or ip, got %q", s)
}

type keySpec struct {
	kind   keyKind
	header string
}
