package gateway

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/phasegate/phasegate/mockllm"
)

// BenchmarkDoors is one streamed LLM request (8 content events) over real
// sockets per door and provider, against the mock: Chat to Chat and
// Messages to Messages pass through, the others are translated. The
// difference to chat>chat is what a door costs per request.
func BenchmarkDoors(b *testing.B) {
	mock := httptest.NewServer(mockllm.New(mockllm.Options{}))
	defer mock.Close()
	url, client := benchServer(b, fmt.Sprintf(`
routes:
  - id: to-chat
    uri: /chat/*
    plugins: { ai-proxy: { provider: openai-compatible, endpoint: "%[1]s/v1/chat/completions" } }
  - id: to-messages
    uri: /anthropic/*
    plugins: { ai-proxy: { provider: anthropic, endpoint: "%[1]s/v1/messages" } }
`, mock.URL))
	bodies := map[string]string{
		"/v1/chat/completions": `{"model":"m","stream":true,"messages":[{"role":"user","content":"Hello"}]}`,
		"/v1/messages":         `{"model":"m","stream":true,"max_tokens":64,"messages":[{"role":"user","content":"Hello"}]}`,
		"/v1/responses":        `{"model":"m","stream":true,"input":"Hello"}`,
	}
	for _, tc := range []struct{ name, prefix, path string }{
		{"chat>chat", "/chat", "/v1/chat/completions"},
		{"messages>messages", "/anthropic", "/v1/messages"},
		{"messages>chat", "/chat", "/v1/messages"},
		{"chat>messages", "/anthropic", "/v1/chat/completions"},
		{"responses>chat", "/chat", "/v1/responses"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest("POST", url+tc.prefix+tc.path, strings.NewReader(bodies[tc.path]))
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set(mockllm.HeaderChunks, "8")
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
		})
	}
}
