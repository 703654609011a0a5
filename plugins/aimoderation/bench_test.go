package aimoderation_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/phasegate/phasegate/internal/plugintest"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/plugins/aimoderation"
	"github.com/phasegate/phasegate/pluginsdk"
)

// chunkUpstream streams prepared SSE chunks.
type chunkUpstream struct{ chunks []phases.Chunk }

func (u *chunkUpstream) Name() string { return "upstream" }
func (u *chunkUpstream) Upstream(ctx context.Context, r *phases.Request) (*phases.Response, error) {
	return &phases.Response{
		Status: http.StatusOK,
		Header: http.Header{"Content-Type": {"text/event-stream"}},
		SSE:    true,
		Body:   &chunkBody{chunks: u.chunks},
	}, nil
}

type chunkBody struct {
	chunks []phases.Chunk
	i      int
}

func (b *chunkBody) Next() (phases.Chunk, error) {
	if b.i >= len(b.chunks) {
		return phases.Chunk{}, io.EOF
	}
	b.i++
	return b.chunks[b.i-1], nil
}

func (b *chunkBody) Close() error { return nil }

// discard is a ResponseWriter that keeps nothing.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(int)             {}
func (d *discard) Flush()                      {}

// streamChunks returns the chunks of a stream carrying about size bytes of
// text, in pieces of a few bytes as models stream tokens.
func streamChunks(size int) []phases.Chunk {
	words := []string{" the", " garden", " needs", " water", " and", " light", ",", " every", " day", "."}
	evs := []string{roleEvent()}
	for n, i := 0, 0; n < size; i++ {
		w := words[i%len(words)]
		evs = append(evs, contentEvent(w))
		n += len(w)
	}
	evs = append(evs, finishEvent(), "[DONE]")
	chunks := make([]phases.Chunk, len(evs))
	for i, ev := range evs {
		chunks[i] = phases.Chunk{Data: []byte("data: " + ev + "\n\n"), Event: []byte(ev)}
	}
	return chunks
}

// BenchmarkRealtimeStream moderates, in realtime mode with the default
// stream_check_cache_size, a clean stream of 1 KiB to 1 MiB of text; ns/KiB
// is the cost per KiB of text, which must not grow with the stream. The
// unmoderated case is the same stream through the same chain with
// check_response off: the cost of the lifecycle without the checks.
func BenchmarkRealtimeStream(b *testing.B) {
	for _, kib := range []int{1, 64, 1024, -64} {
		name := fmt.Sprintf("%dKiB", kib)
		if kib < 0 {
			kib, name = -kib, fmt.Sprintf("unmoderated/%dKiB", -kib)
		}
		b.Run(name, func(b *testing.B) {
			cfg := patternConfig()
			cfg.CheckRequest, cfg.CheckResponse = false, name[0] != 'u'
			if !cfg.CheckResponse {
				cfg.CheckRequest = true
			}
			cfg.StreamCheckMode = aimoderation.ModeRealtime
			up := &chunkUpstream{chunks: streamChunks(kib << 10)}
			h := handler(b, fakeProxy{}, plugintest.Must(aimoderation.New(cfg, pluginsdk.Env{}))(b), up)
			body := plugintest.ChatBody(clientModel, true, user("hi"))
			b.ReportAllocs()
			for b.Loop() {
				req, _ := http.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				h.ServeHTTP(&discard{h: http.Header{}}, req)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*kib), "ns/KiB")
		})
	}
}
