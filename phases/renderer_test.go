package phases_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/phasegate/phasegate/phases"
)

// plainRenderer answers in plain text and ends streams with an "end" event.
type plainRenderer struct{ tag string }

func (p plainRenderer) Error(status int, typ, message string) (http.Header, []byte) {
	return http.Header{"Content-Type": {"text/plain"}}, fmt.Appendf(nil, "%s %d %s: %s", p.tag, status, typ, message)
}

func (p plainRenderer) EndStream(exitBody []byte) []byte {
	return fmt.Appendf(nil, "event: end\ndata: %s\n\n", exitBody)
}

// shaper does what the X-Do header says: exit in access, switch the
// request's renderer, fail the upstream, or stream two events and cut the
// stream after the first.
type shaper struct{}

func (shaper) Name() string { return "shaper" }

func (shaper) Access(ctx context.Context, r *phases.Request) phases.Exit {
	if r.Header.Get("X-Renderer") != "" {
		r.Renderer = plainRenderer{tag: r.Header.Get("X-Renderer")}
	}
	switch r.Header.Get("X-Do") {
	case "exit":
		return phases.Error(http.StatusForbidden, "forbidden", "no entry")
	case "challenge":
		return phases.Error(http.StatusUnauthorized, "unauthorized", "who are you").WithHeader("Www-Authenticate", `Key realm="r"`)
	}
	return phases.Exit{}
}

func (shaper) Upstream(ctx context.Context, r *phases.Request) (*phases.Response, error) {
	if r.Header.Get("X-Do") == "fail" {
		return nil, errors.New("connection refused")
	}
	events := []string{`{"n":1}`, `{"n":2}`}
	return &phases.Response{Status: 200, Header: http.Header{"Content-Type": {"text/event-stream"}}, SSE: true, Body: &sseBody{events: events}}, nil
}

func (shaper) BodyFilter(ctx context.Context, c *phases.BodyChunk) phases.BodyResult {
	if string(c.Event) == `{"n":2}` {
		return phases.End(phases.Error(http.StatusInternalServerError, "server_error", "cut"))
	}
	return phases.BodyResult{}
}

type sseBody struct{ events []string }

func (b *sseBody) Next() (phases.Chunk, error) {
	if len(b.events) == 0 {
		return phases.Chunk{}, io.EOF
	}
	e := b.events[0]
	b.events = b.events[1:]
	return phases.Chunk{Data: []byte("data: " + e + "\n\n"), Event: []byte(e)}, nil
}

func (b *sseBody) Close() error { return nil }

// A chain's Renderer, or the one an access hook sets for its request,
// shapes every error the client gets over the wire: an exit's, the
// framework's own 502, and the end of a stream cut after its headers.
func TestRendererShapesWhatTheClientGets(t *testing.T) {
	chain, err := phases.NewChain(phases.Options{Route: "r", Renderer: plainRenderer{tag: "CHAIN"}}, shaper{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(chain)
	defer srv.Close()
	for _, tc := range []struct {
		do, renderer string
		status       int
		contentType  string
		body         string
	}{
		{"exit", "", 403, "text/plain", "CHAIN 403 forbidden: no entry"},
		{"exit", "REQ", 403, "text/plain", "REQ 403 forbidden: no entry"},
		{"fail", "", 502, "text/plain", "CHAIN 502 "},
		{"stream", "", 200, "text/event-stream", "data: {\"n\":1}\n\nevent: end\ndata: CHAIN 500 server_error: cut\n\n"},
		{"stream", "REQ", 200, "text/event-stream", "data: {\"n\":1}\n\nevent: end\ndata: REQ 500 server_error: cut\n\n"},
	} {
		req, _ := http.NewRequest("GET", srv.URL, nil)
		req.Header.Set("X-Do", tc.do)
		if tc.renderer != "" {
			req.Header.Set("X-Renderer", tc.renderer)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		name := tc.do + "/" + tc.renderer
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != tc.contentType {
			t.Errorf("%s: %d %q, want %d %q", name, resp.StatusCode, resp.Header.Get("Content-Type"), tc.status, tc.contentType)
		}
		if tc.do == "fail" && !strings.HasPrefix(string(body), tc.body) || tc.do != "fail" && string(body) != tc.body {
			t.Errorf("%s: body %q, want %q", name, body, tc.body)
		}
	}
}

// A header an Error exit carries (WithHeader) stays when the request's
// Renderer gives its body another shape, and by default.
func TestErrorWithHeaderKeepsItsHeader(t *testing.T) {
	for _, opts := range []phases.Options{{Route: "r", Renderer: plainRenderer{tag: "CHAIN"}}, {Route: "r"}} {
		chain, err := phases.NewChain(opts, shaper{})
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("X-Do", "challenge")
		chain.ServeHTTP(rec, req)
		want := `{"error":{"message":"who are you","type":"unauthorized","code":401}}`
		if opts.Renderer != nil {
			want = "CHAIN 401 unauthorized: who are you"
		}
		if rec.Code != 401 || rec.Header().Get("Www-Authenticate") != `Key realm="r"` || rec.Body.String() != want {
			t.Errorf("renderer %v: %d %v %q, want 401 with the challenge and %q", opts.Renderer, rec.Code, rec.Header(), rec.Body, want)
		}
	}
}
