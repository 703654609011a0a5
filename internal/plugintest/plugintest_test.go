package plugintest_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/phasegate/phasegate/internal/plugintest"
	"github.com/phasegate/phasegate/phases"
)

// recorder is a testing.TB that records a fatal failure instead of ending
// the test.
type recorder struct {
	testing.TB
	failed bool
}

func (r *recorder) Helper()               {}
func (r *recorder) Fatal(...any)          { r.failed = true }
func (r *recorder) Fatalf(string, ...any) { r.failed = true }

func TestMust(t *testing.T) {
	if got := plugintest.Must(42, nil)(t); got != 42 {
		t.Errorf("Must(42, nil) = %d", got)
	}
	r := &recorder{TB: t}
	plugintest.Must(0, errors.New("bad config"))(r)
	if !r.failed {
		t.Error("Must with an error did not fail the test")
	}
}

type static struct{}

func (static) Name() string { return "static" }
func (static) Upstream(context.Context, *phases.Request) (*phases.Response, error) {
	return &phases.Response{Status: http.StatusAccepted, Body: phases.BytesBody(nil)}, nil
}

func TestChain(t *testing.T) {
	c := plugintest.Chain(t, phases.Options{}, static{})
	rec := httptest.NewRecorder()
	c.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != http.StatusAccepted {
		t.Errorf("status %d", rec.Code)
	}
	r := &recorder{TB: t}
	plugintest.Chain(r, phases.Options{}) // no upstream
	if !r.failed {
		t.Error("a chain without an upstream did not fail the test")
	}
}

func TestChatBody(t *testing.T) {
	for _, tc := range []struct {
		got, want string
	}{
		{plugintest.ChatBody("m1", false, plugintest.User("hi")), `{"messages":[{"role":"user","content":"hi"}],"model":"m1"}`},
		{plugintest.ChatBody("m1", true), `{"messages":null,"model":"m1","stream":true}`},
		{plugintest.ChatBody("m", false, plugintest.Msg{Role: "user", Content: []map[string]string{{"type": "text", "text": "x"}}}),
			`{"messages":[{"role":"user","content":[{"text":"x","type":"text"}]}],"model":"m"}`},
	} {
		if tc.got != tc.want {
			t.Errorf("got %s, want %s", tc.got, tc.want)
		}
	}
}

func TestLogBufferConcurrent(t *testing.T) {
	var b plugintest.LogBuffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				b.Write([]byte("x\n"))
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if got := strings.Count(b.String(), "x\n"); got != 800 {
		t.Errorf("%d lines, want 800", got)
	}
}
