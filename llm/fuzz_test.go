package llm_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/phasegate/phasegate/llm"
	"github.com/phasegate/phasegate/llm/llmtest"
)

// seed adds the inputs of one protocol under testdata/protocols/kind.
func seed(f *testing.F, kind string, p llm.Protocol, ext string) {
	files, _ := filepath.Glob(filepath.Join(protocolsDir, kind, "*", "in."+string(p)+ext))
	if len(files) == 0 {
		f.Fatalf("no %s seeds for %s", kind, p)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// fuzzRequest: a body either fails to decode with a 400, or decodes into a
// request that every protocol either refuses with a 400 or writes as a
// body that protocol reads back.
func fuzzRequest(f *testing.F, p llm.Protocol) {
	seed(f, "requests", p, ".json")
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := codecs[p].DecodeRequest(body)
		if err != nil {
			badRequest(t, err)
			return
		}
		for range req.Texts() {
		}
		if llm.EstimateInputTokens(req) < 1 {
			t.Fatal("estimated no tokens")
		}
		for q, codec := range codecs {
			out, err := codec.EncodeRequest(req)
			if err != nil {
				badRequest(t, err)
				continue
			}
			if !json.Valid(out) {
				t.Fatalf("%s wrote invalid JSON: %s", q, out)
			}
			if _, err := codec.DecodeRequest(out); err != nil {
				t.Fatalf("%s cannot read what it wrote: %v\n%s", q, err, out)
			}
		}
	})
}

func badRequest(t *testing.T, err error) {
	t.Helper()
	var e *llm.Error
	if !errors.As(err, &e) || e.Status != http.StatusBadRequest || e.Message == "" {
		t.Fatalf("error %v is not a 400 *llm.Error", err)
	}
}

func FuzzAnthropicRequest(f *testing.F) { fuzzRequest(f, llm.AnthropicMessages) }
func FuzzResponsesRequest(f *testing.F) { fuzzRequest(f, llm.OpenAIResponses) }
func FuzzChatRequest(f *testing.F)      { fuzzRequest(f, llm.OpenAIChat) }

// fuzzStream: whatever an upstream sends, the client gets a well-formed
// stream in its protocol.
func fuzzStream(f *testing.F, p llm.Protocol) {
	seed(f, "streams", p, ".sse")
	f.Fuzz(func(t *testing.T, in []byte) {
		for q := range codecs {
			if q == p {
				continue
			}
			out := translateStream(t, p, q, in)
			if err := llmtest.WellFormed(q, out); err != nil {
				t.Fatalf("%s to %s: %v\n%s", p, q, err, out)
			}
		}
	})
}

func FuzzAnthropicStream(f *testing.F) { fuzzStream(f, llm.AnthropicMessages) }
func FuzzChatStream(f *testing.F)      { fuzzStream(f, llm.OpenAIChat) }
func FuzzResponsesStream(f *testing.F) { fuzzStream(f, llm.OpenAIResponses) }
