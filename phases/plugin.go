package phases

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"
)

// Plugin is implemented by every plugin. Name identifies it in logs, metrics
// (phasegate_lifecycle_exits_total's plugin label) and traces; it must be
// unique within a chain.
type Plugin interface {
	Name() string
}

// Prioritized is implemented by plugins that need a place in the order of a
// phase's hooks other than the default, 0. Higher priorities run first.
type Prioritized interface {
	Priority() int
}

// AccessHook runs in the access phase, before any upstream is contacted:
// authentication, validation, rate limits, request rewriting. Returning an
// exit skips the remaining access hooks and the upstream, and answers with
// the exit.
type AccessHook interface {
	Plugin
	Access(ctx context.Context, r *Request) Exit
}

// Upstream produces the response in the upstream phase. A chain has exactly
// one. It returns the upstream's response, whatever its status, or an
// error: the framework answers an error with 504 when it is a timeout
// (context.DeadlineExceeded or a net.Error whose Timeout is true), with 502
// otherwise, aborts when the client has gone, and uses the exit of an
// *ExitError as is. Resources held for the call belong on r.Scope() (or a
// child of it) so that they are released on every path.
type Upstream interface {
	Plugin
	Upstream(ctx context.Context, r *Request) (*Response, error)
}

// HeaderFilter runs in the header_filter phase on a response whose headers
// are unsent: the upstream's, or an exit's. It may change the status and
// headers. Returning an exit replaces the response and skips the remaining
// header filters.
type HeaderFilter interface {
	Plugin
	HeaderFilter(ctx context.Context, h *ResponseHead) Exit
}

// BodyFilter runs in the body_filter phase once per chunk of the response
// body (one server-sent event per chunk for SSE responses) and once more at
// the end of the body (c.EOS, usually with no data). On a route with body
// filters, an upstream response loses its Content-Length (the filters may
// change the length) and is sent chunked.
type BodyFilter interface {
	Plugin
	BodyFilter(ctx context.Context, c *BodyChunk) BodyResult
}

// LogHook runs exactly once per request, in the log phase, with the final
// outcome. It returns nothing: the response is over.
type LogHook interface {
	Plugin
	Log(ctx context.Context, s *Summary)
}

// BodyLimiter is implemented by plugins that set their route's request
// body limit, such as ai-proxy's max_request_body_bytes. A positive limit
// replaces Options.MaxRequestBodyBytes, raising or lowering it; when
// several plugins set one, the smallest holds. Zero leaves the chain's.
type BodyLimiter interface {
	Plugin
	MaxRequestBodyBytes() int64
}

// priority returns p's priority: its Priority method's, or 0.
func priority(p Plugin) int {
	if pr, ok := p.(Prioritized); ok {
		return pr.Priority()
	}
	return 0
}

// Chain is a route's plugins, compiled into one ordered list per phase. It
// is immutable and safe for concurrent use; build a new one to change it.
type Chain struct {
	plugins  []Plugin
	access   []AccessHook
	upstream Upstream
	header   []HeaderFilter
	body     []BodyFilter
	log      []LogHook
	hooks    Hooks
	opts     Options
	maxBody  int64 // the request body limit: a BodyLimiter's, or opts'
}

// Options tune a Chain. The zero value is usable.
type Options struct {
	// Route is the id of the route the chain serves, for logs and metrics.
	Route string
	// MaxRequestBodyBytes bounds the request body (Request.Body and
	// Request.BodyReader) unless a BodyLimiter plugin sets the limit.
	// Default 8 MiB (8 << 20).
	MaxRequestBodyBytes int64
	// Hooks are the framework's own observation points (metrics, access
	// log, tracing). Nil fields are no-ops.
	Hooks Hooks
	// BodyTimeout and SendTimeout bound the client's side of a request
	// served by ServeHTTP, with the semantics of nginx's
	// client_body_timeout and send_timeout: each is the longest gap
	// allowed between two reads of the request body, or between two
	// writes of the response, never a total, so a slow but live client is
	// not cut. A write that passes it ends the request as
	// CauseClientTimeout; a body read that does answers 408 when nothing
	// was sent. Zero means no bound.
	BodyTimeout, SendTimeout time.Duration
	// Renderer shapes the framework's own error bodies and stream endings
	// (see Renderer). Default: OpenAI's shape.
	Renderer Renderer
}

// defaultMaxRequestBodyBytes is Options.MaxRequestBodyBytes's default.
const defaultMaxRequestBodyBytes = 8 << 20

// NewChain orders plugins into a chain. Exactly one plugin must implement
// Upstream. Names must be unique and non-empty.
func NewChain(opts Options, plugins ...Plugin) (*Chain, error) {
	c := &Chain{opts: opts}
	if c.opts.MaxRequestBodyBytes <= 0 {
		c.opts.MaxRequestBodyBytes = defaultMaxRequestBodyBytes
	}
	if c.opts.Renderer == nil {
		c.opts.Renderer = defaultRenderer
	}
	c.hooks = opts.Hooks
	c.hooks.ensureDefaults()
	seen := map[string]bool{}
	var errs []error
	for _, p := range plugins {
		if p == nil {
			errs = append(errs, errors.New("phases: nil plugin"))
			continue
		}
		name := p.Name()
		switch {
		case name == "":
			errs = append(errs, fmt.Errorf("phases: plugin %T has an empty name", p))
		case seen[name]:
			errs = append(errs, fmt.Errorf("phases: plugin %q appears twice", name))
		}
		seen[name] = true
		c.plugins = append(c.plugins, p)
	}
	sortPlugins(c.plugins)
	for _, p := range c.plugins {
		if h, ok := p.(AccessHook); ok {
			c.access = append(c.access, h)
		}
		if u, ok := p.(Upstream); ok {
			if c.upstream != nil {
				errs = append(errs, fmt.Errorf("phases: plugins %q and %q both provide the upstream", c.upstream.Name(), u.Name()))
			}
			c.upstream = u
		}
		if h, ok := p.(HeaderFilter); ok {
			c.header = append(c.header, h)
		}
		if h, ok := p.(BodyFilter); ok {
			c.body = append(c.body, h)
		}
		if h, ok := p.(LogHook); ok {
			c.log = append(c.log, h)
		}
		if l, ok := p.(BodyLimiter); ok {
			if n := l.MaxRequestBodyBytes(); n > 0 && (c.maxBody == 0 || n < c.maxBody) {
				c.maxBody = n
			}
		}
	}
	if c.maxBody == 0 {
		c.maxBody = c.opts.MaxRequestBodyBytes
	}
	if c.upstream == nil && len(errs) == 0 {
		errs = append(errs, errors.New("phases: no plugin provides the upstream"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// sortPlugins orders by descending priority, then ascending name.
func sortPlugins(ps []Plugin) {
	sort.SliceStable(ps, func(i, j int) bool {
		pi, pj := priority(ps[i]), priority(ps[j])
		if pi != pj {
			return pi > pj
		}
		return ps[i].Name() < ps[j].Name()
	})
}
