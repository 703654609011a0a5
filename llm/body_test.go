package llm_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/phasegate/phasegate/llm"
	"github.com/phasegate/phasegate/phases"
)

// failing is a request body whose read fails.
type failing struct{}

func (failing) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestReadRequest(t *testing.T) {
	c, err := phases.NewChain(phases.Options{MaxRequestBodyBytes: 32}, guard{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		body       io.Reader
		length     int64 // -1: chunked
		wantStatus int
		wantBody   string
	}{
		{"ok", strings.NewReader(`{"model":"m"}`), 13, 200, "model m"},
		{"declared too large", strings.NewReader(strings.Repeat("x", 33)), 33, 413, llm.MsgTooLarge},
		{"chunked too large", strings.NewReader(strings.Repeat("x", 40)), -1, 413, llm.MsgTooLarge},
		{"unreadable", failing{}, -1, 400, llm.MsgUnreadable},
		{"does not parse", strings.NewReader(`[1]`), 3, 400, "request body must be a JSON object"},
	} {
		req := httptest.NewRequest(http.MethodPost, "/", tc.body)
		req.ContentLength = tc.length
		rec := httptest.NewRecorder()
		c.ServeHTTP(rec, req)
		if rec.Code != tc.wantStatus || !strings.Contains(rec.Body.String(), tc.wantBody) {
			t.Errorf("%s: got %d %q, want %d with %q", tc.name, rec.Code, rec.Body, tc.wantStatus, tc.wantBody)
		}
		if tc.wantStatus != 200 && !strings.Contains(rec.Body.String(), llm.TypeInvalidRequest) {
			t.Errorf("%s: body %q lacks the type %s", tc.name, rec.Body, llm.TypeInvalidRequest)
		}
	}
}
