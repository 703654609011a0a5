package llm_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/phasegate/phasegate/llm"
	"github.com/phasegate/phasegate/llm/openai"
	"github.com/phasegate/phasegate/phases"
)

// guard is an access hook that reads the chat request and refuses what
// cannot be read, the way the built-in LLM plugins do.
type guard struct{}

func (guard) Name() string { return "guard" }

func (guard) Access(_ context.Context, r *phases.Request) phases.Exit {
	_, req, ex := llm.ReadRequest(r, openai.ParseChatRequest)
	if ex.Exited() {
		return ex
	}
	return phases.Reply(http.StatusOK, nil, []byte("model "+req.Model))
}

func (guard) Upstream(context.Context, *phases.Request) (*phases.Response, error) {
	return &phases.Response{Status: http.StatusNoContent}, nil
}

// An access hook refuses bodies over the route's limit with 413 and
// bodies that are not chat requests with 400.
func ExampleReadRequest() {
	chain, err := phases.NewChain(phases.Options{MaxRequestBodyBytes: 64}, guard{})
	if err != nil {
		panic(err)
	}
	for _, body := range []string{
		`{"model":"gpt-4o-mini","messages":[]}`,
		`{"model":"` + strings.Repeat("x", 100) + `"}`,
		`[]`,
	} {
		rec := httptest.NewRecorder()
		chain.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body)))
		fmt.Println(rec.Code, strings.TrimSpace(rec.Body.String()))
	}
	// Output:
	// 200 model gpt-4o-mini
	// 413 {"error":{"message":"request body too large","type":"invalid_request_error","code":413}}
	// 400 {"error":{"message":"request body must be a JSON object","type":"invalid_request_error","code":400}}
}
