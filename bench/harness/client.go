package harness

import (
	"encoding/json"
	"net"
	"net/http"
	"time"
)

// NewTransport is a keep-alive client transport to loopback servers:
// idle connections kept per host, idleTimeout before an idle one is closed
// (keep it below the server's own idle timeout, or a request may be
// written to a connection the server is closing), no proxy, no
// compression.
func NewTransport(idle int, idleTimeout time.Duration) *http.Transport {
	return &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        idle,
		MaxIdleConnsPerHost: idle,
		IdleConnTimeout:     idleTimeout,
		DisableCompression:  true,
	}
}

// ChatBody is a chat-completions request body of one user message.
func ChatBody(model, prompt string, stream bool) []byte {
	type message struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	}
	b, _ := json.Marshal(struct {
		Model    string    `json:"model"`
		Messages []message `json:"messages"`
		Stream   bool      `json:"stream,omitempty"`
	}{model, []message{{"user", prompt}}, stream})
	return b
}
