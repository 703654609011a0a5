package provider

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/phasegate/phasegate/httpx"
	"github.com/phasegate/phasegate/llm"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/pluginsdk"
	"github.com/phasegate/phasegate/sse"
)

// Instance is one upstream LLM endpoint. It is immutable and safe for
// concurrent use.
type Instance struct {
	name       string
	provider   string // gen_ai.provider.name of its spans
	endpoint   *url.URL
	authHeader http.Header
	authQuery  map[string]string
	query0     string // the upstream query of a client that sends none
	hasAuth    bool
	options    map[string]any
	model      string // options.model, or ""
	timeout    time.Duration
	maxResp    int64
	maxStream  time.Duration
	transport  http.RoundTripper
	protocol   llm.Protocol // what the provider speaks
}

// NewInstance builds an instance from cfg (defaults applied to a copy; an
// invalid config is an error) that calls its endpoint through transport,
// normally the gateway's shared keep-alive transport
// (forward.NewTransport); nil means http.DefaultTransport.
func NewInstance(cfg Config, transport http.RoundTripper) (*Instance, error) {
	cfg.SetDefaults()
	who := "provider"
	if cfg.Name != "" {
		who = fmt.Sprintf("provider: instance %q", cfg.Name)
	}
	if err := pluginsdk.ConfigError(who, cfg.Validate(true)); err != nil {
		return nil, err
	}
	if cfg.Name == "" {
		return nil, fmt.Errorf("%s: the instance has no name", who)
	}
	u, err := url.Parse(cfg.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("%s: endpoint: %w", who, err)
	}
	if transport == nil {
		transport = http.DefaultTransport
	}
	in := &Instance{
		name:       cfg.Name,
		provider:   cfg.Provider,
		endpoint:   u,
		authHeader: http.Header{},
		authQuery:  maps.Clone(cfg.AuthQuery),
		hasAuth:    len(cfg.AuthHeader)+len(cfg.AuthQuery) > 0,
		options:    maps.Clone(cfg.Options),
		timeout:    cfg.Timeout,
		maxResp:    cfg.MaxResponseBytes,
		maxStream:  cfg.MaxStreamDuration,
		transport:  transport,
		protocol:   Protocol(cfg.Provider),
	}
	for k, v := range cfg.AuthHeader {
		in.authHeader.Set(k, v)
	}
	if m, ok := cfg.Options["model"].(string); ok {
		in.model = m
	}
	in.query0 = in.mergeQuery("")
	return in, nil
}

// Name is the instance's name.
func (in *Instance) Name() string { return in.name }

// Model returns the model the instance sends for a client that asked for
// client: its options.model when set, else client.
func (in *Instance) Model(client string) string {
	if in.model != "" {
		return in.model
	}
	return client
}

// SetsModel reports whether the instance's options set the model.
func (in *Instance) SetsModel() bool { return in.model != "" }

// Causes of the cancellation of an attempt's context by its own timers.
var (
	errTimedOut  = errors.New("provider: upstream timed out")
	errStreamCap = errors.New("provider: stream exceeded max_stream_duration")
)

// TimeoutError is the error of an attempt whose upstream did not answer in
// time: the runner answers 504, or ends a started stream.
type TimeoutError = httpx.TimeoutError

// bodyAllowed reports whether a response of status may have a body.
func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

// outgoing builds the upstream request.
func (in *Instance) outgoing(ctx context.Context, r *phases.Request, payload []byte, countTokens bool) *http.Request {
	target := *in.endpoint
	if countTokens {
		target.Path = strings.TrimSuffix(target.Path, "/") + "/count_tokens"
		target.RawPath = ""
	}
	target.RawQuery = in.query(r.URL.RawQuery)
	out := httpx.Outgoing(ctx, http.MethodPost, &target, nil)
	out.Body = io.NopCloser(bytes.NewReader(payload))
	out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(payload)), nil }
	out.ContentLength = int64(len(payload))

	h := httpx.EndToEnd(r.Header)
	h.Del("Accept-Encoding")
	h.Del("Content-Length")
	h.Del("Host")
	h.Del("Expect") // the body is sent at once
	if in.hasAuth {
		h.Del("Authorization")
		h.Del("X-Api-Key")
	}
	if in.protocol == llm.AnthropicMessages {
		if h.Get("Anthropic-Version") == "" {
			h.Set("Anthropic-Version", DefaultAnthropicVersion)
		}
	} else {
		dropAnthropic(h)
	}
	for k, vs := range in.authHeader {
		h[k] = append([]string(nil), vs...)
	}
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", "application/json")
	}
	if _, ok := h["User-Agent"]; !ok {
		h["User-Agent"] = []string{""} // not the transport's default
	}
	out.Header = h
	out.Host = target.Host
	return out
}

// query is the upstream query: the endpoint's own parameters, then the
// client's that the endpoint and the auth do not set, then the auth's.
func (in *Instance) query(client string) string {
	if client == "" {
		return in.query0
	}
	return in.mergeQuery(client)
}

func (in *Instance) mergeQuery(client string) string {
	q := in.endpoint.Query()
	if client != "" {
		if cq, err := url.ParseQuery(client); err == nil {
			for k, vs := range cq {
				if _, set := q[k]; set {
					continue
				}
				if _, auth := in.authQuery[k]; auth {
					continue
				}
				q[k] = vs
			}
		}
	}
	for k, v := range in.authQuery {
		q.Set(k, v)
	}
	if len(q) == 0 {
		return ""
	}
	return q.Encode()
}

// translate turns the error of a call on ctx into a *TimeoutError when the
// attempt's timer cancelled it; the client's cancellation is returned as
// is, and anything else is wrapped with the instance's name (never its URL,
// which may hold a secret).
func (in *Instance) translate(ctx context.Context, err error, inBody bool) error {
	if ctx.Err() != nil {
		if errors.Is(context.Cause(ctx), errTimedOut) {
			return &TimeoutError{Upstream: in.name, Body: inBody, After: in.timeout}
		}
		return err
	}
	return fmt.Errorf("provider: instance %q: %w", in.name, stripURL(err))
}

// readAll reads a whole body, bounded by the instance's timeout per read
// and by max_response_bytes. It reads straight into the buffer it returns,
// sized from sizeHint (the response's Content-Length, or -1), so a response
// costs one allocation of about its own size (a profile under load showed
// a fresh 32 KiB copy buffer per response as most of the AI route's
// garbage).
func (in *Instance) readAll(ctx context.Context, timer *time.Timer, rc io.Reader, sizeHint int64) ([]byte, error) {
	size := 512
	if sizeHint > 0 && sizeHint < in.maxResp {
		size = int(sizeHint) + 1 // room to read the EOF without growing
	}
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)] // grow
		}
		timer.Reset(in.timeout)
		n, err := rc.Read(buf[len(buf):cap(buf)])
		timer.Stop()
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > in.maxResp {
			return nil, &phases.ExitError{Exit: in.tooLarge()}
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, in.translate(ctx, err, true)
		}
	}
}

// tooLarge is the exit of a response over max_response_bytes.
func (in *Instance) tooLarge() phases.Exit {
	return phases.Error(http.StatusBadGateway, string(phases.CauseUpstreamError),
		fmt.Sprintf("the upstream response exceeds max_response_bytes (%d)", in.maxResp))
}

// eventTooLarge is the exit of a stream event over the event size limit.
func (in *Instance) eventTooLarge(limit int) phases.Exit {
	return phases.Error(http.StatusBadGateway, string(phases.CauseUpstreamError),
		fmt.Sprintf("an upstream stream event exceeds %d bytes", limit))
}

// tooLong is the exit of a stream over max_stream_duration.
func (in *Instance) tooLong() phases.Exit {
	return phases.Error(http.StatusGatewayTimeout, string(phases.CauseTimeout),
		fmt.Sprintf("the upstream stream exceeds max_stream_duration (%s)", in.maxStream))
}

// newStream returns the body of a streamed response.
func (in *Instance) newStream(ctx context.Context, cancel context.CancelCauseFunc, timer *time.Timer, rc io.ReadCloser, a *attempt, c *call) *streamBody {
	b := &streamBody{
		in:     in,
		a:      a,
		c:      c,
		ctx:    ctx,
		cancel: cancel,
		rc:     rc,
	}
	b.reads = &timedReader{r: rc, timer: timer, timeout: in.timeout}
	b.eventLimit = int(min(in.maxResp, sse.DefaultMaxEventBytes))
	b.rd = sse.NewReader(b.reads, b.eventLimit)
	b.capTimer = time.AfterFunc(in.maxStream, func() { cancel(errStreamCap) })
	return b
}

// stripURL removes the URL from a *url.Error, keeping its operation and
// cause: the URL may carry an auth query parameter.
// dropAnthropic removes the headers of the Messages API (anthropic-version,
// anthropic-beta, x-api-key) from a request to a provider that speaks
// another protocol: they mean nothing there, and a key must not leak.
func dropAnthropic(h http.Header) {
	for k := range h {
		if strings.HasPrefix(k, "Anthropic-") || k == "X-Api-Key" {
			delete(h, k)
		}
	}
}

func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}
