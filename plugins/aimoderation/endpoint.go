package aimoderation

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// maxReplyBytes bounds a moderation reply.
const maxReplyBytes = 1 << 20

// endpoint calls an OpenAI-compatible /v1/moderations endpoint. It is
// immutable and safe for concurrent use.
type endpoint struct {
	url     string
	model   string
	header  http.Header
	timeout time.Duration
	client  *http.Client
}

func newEndpoint(m ModerationConfig, rt http.RoundTripper) *endpoint {
	if rt == nil {
		rt = http.DefaultTransport
	}
	h := http.Header{}
	for k, v := range m.Auth.Header {
		h.Set(k, v)
	}
	h.Set("Content-Type", "application/json")
	h.Set("Accept", "application/json")
	return &endpoint{
		url:     m.Endpoint,
		model:   m.Model,
		header:  h,
		timeout: m.Timeout,
		// No redirects: credentials must not follow them elsewhere.
		client: &http.Client{
			Transport:     rt,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

type moderationRequest struct {
	Input []string `json:"input"`
	Model string   `json:"model,omitempty"`
}

type moderationReply struct {
	Results []struct {
		Flagged bool `json:"flagged"`
	} `json:"results"`
}

// flagged asks the endpoint about inputs (one result each) and reports
// whether any is flagged. The call is bounded by the endpoint's timeout and
// by ctx. Errors never carry the endpoint's URL, which may hold a secret.
func (e *endpoint) flagged(ctx context.Context, inputs []string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	body, err := json.Marshal(moderationRequest{Input: inputs, Model: e.model})
	if err != nil {
		return false, fmt.Errorf("moderation endpoint: encoding the request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("moderation endpoint: %w", stripURL(err))
	}
	req.Header = e.header.Clone()
	resp, err := e.client.Do(req)
	if err != nil {
		return false, fmt.Errorf("moderation endpoint: %w", stripURL(err))
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxReplyBytes))
		_ = resp.Body.Close()
	}()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return false, fmt.Errorf("moderation endpoint: answered %d", resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxReplyBytes+1))
	if err != nil {
		return false, fmt.Errorf("moderation endpoint: reading the reply: %w", stripURL(err))
	}
	if len(data) > maxReplyBytes {
		return false, fmt.Errorf("moderation endpoint: the reply is over %d bytes", maxReplyBytes)
	}
	var reply moderationReply
	if err := json.Unmarshal(data, &reply); err != nil {
		return false, fmt.Errorf("moderation endpoint: the reply is not a moderation result: %w", err)
	}
	if len(reply.Results) != len(inputs) {
		return false, fmt.Errorf("moderation endpoint: %d results for %d inputs", len(reply.Results), len(inputs))
	}
	for _, r := range reply.Results {
		if r.Flagged {
			return true, nil
		}
	}
	return false, nil
}

// stripURL removes the URL from a *url.Error, keeping its operation and
// cause.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}
