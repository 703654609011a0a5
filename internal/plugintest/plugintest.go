// Package plugintest holds the helpers the plugin and gateway tests share:
// building a plugin or a chain that must succeed, chat-completions request
// bodies, and a log buffer safe for concurrent requests. Only tests import
// it.
package plugintest

import (
	"bytes"
	"encoding/json"
	"sync"
	"testing"

	"github.com/phasegate/phasegate/phases"
)

// Must takes a constructor's results and returns a function that yields v,
// or fails t with err: plugintest.Must(keyauth.New(cfg, cs))(t).
func Must[T any](v T, err error) func(t testing.TB) T {
	return func(t testing.TB) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// Chain builds a chain of plugins with opts, failing t if it cannot.
func Chain(t testing.TB, opts phases.Options, plugins ...phases.Plugin) *phases.Chain {
	t.Helper()
	return Must(phases.NewChain(opts, plugins...))(t)
}

// Msg is a chat message of a request body; Content is a string or a list
// of content parts.
type Msg struct {
	Role    string `json:"role"`
	Content any    `json:"content"`
}

// User is a user message with text content.
func User(text string) Msg { return Msg{Role: "user", Content: text} }

// ChatBody is a chat-completions request body for model with msgs, asking
// to stream when stream is set ("stream" is absent otherwise).
func ChatBody(model string, stream bool, msgs ...Msg) string {
	body := map[string]any{"model": model, "messages": msgs}
	if stream {
		body["stream"] = true
	}
	b, err := json.Marshal(body)
	if err != nil {
		panic(err) // a Msg always encodes
	}
	return string(b)
}

// LogBuffer is a log destination that concurrent requests may write to
// while a test reads it.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what has been written so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
