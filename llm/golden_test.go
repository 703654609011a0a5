package llm_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	goldenfiles "github.com/phasegate/phasegate/golden"
	"github.com/phasegate/phasegate/llm"
	"github.com/phasegate/phasegate/llm/anthropic"
	"github.com/phasegate/phasegate/llm/llmtest"
	"github.com/phasegate/phasegate/llm/openai"
	"github.com/phasegate/phasegate/sse"
)

var update = goldenfiles.Flag()

// protocolsDir holds the translation tables: one directory per case, with
// the source as in.<protocol>.<ext> and, per other protocol, the expected
// translation as out.<protocol>.<ext> (see README.md there).
const protocolsDir = "../testdata/protocols"

// epoch is the clock of the codecs under test, so that made-up times are
// stable.
var epoch = time.Unix(1767225600, 0)

func now() time.Time { return epoch }

var codecs = map[llm.Protocol]llm.Codec{
	llm.OpenAIChat:        openai.Chat{Now: now},
	llm.AnthropicMessages: anthropic.Codec{Now: now},
	llm.OpenAIResponses:   openai.Responses{Now: now},
}

// testCase is one directory of a table.
type testCase struct {
	name string
	dir  string
	from llm.Protocol
	in   []byte
}

// cases lists the cases of table kind ("requests", "responses",
// "streams", "errors"), whose sources end in ext.
func cases(t testing.TB, kind, ext string) []testCase {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(protocolsDir, kind, "*"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no cases under %s/%s (%v)", protocolsDir, kind, err)
	}
	var out []testCase
	for _, dir := range dirs {
		ins, _ := filepath.Glob(filepath.Join(dir, "in.*"+ext))
		if len(ins) != 1 {
			t.Fatalf("%s: want exactly one in.<protocol>%s, found %d", dir, ext, len(ins))
		}
		p := llm.Protocol(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(ins[0]), "in."), ext))
		if !p.Valid() {
			t.Fatalf("%s: unknown protocol %q", ins[0], p)
		}
		in, err := os.ReadFile(ins[0])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, testCase{name: filepath.Base(dir), dir: dir, from: p, in: in})
	}
	return out
}

// golden compares got with the file name of the case, or rewrites it.
func golden(t *testing.T, c testCase, name string, got []byte) {
	t.Helper()
	path := filepath.Join(c.dir, name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./llm -update writes it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test ./llm -update rewrites it)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// indent pretty-prints a JSON body for a golden file; the test fails if it
// is not valid JSON.
func indent(t *testing.T, body []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := json.Indent(&b, body, "", "  "); err != nil {
		t.Fatalf("not valid JSON: %v\n%s", err, body)
	}
	return append(b.Bytes(), '\n')
}

// dump renders a neutral value for a golden file.
func dump(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// errorOut renders a request error as the client gets it: its status,
// then its body in the client's protocol.
func errorOut(t *testing.T, client llm.Protocol, err error) []byte {
	t.Helper()
	var e *llm.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not an *llm.Error", err)
	}
	return append([]byte("status "+strconv.Itoa(e.Status)+"\n"), indent(t, codecs[client].EncodeError(e))...)
}

// goldenRequest is the request that goldens of responses and streams
// answer: it asks for usage at the end of a stream.
var goldenRequest = &llm.Request{Model: "requested-model", Stream: true, IncludeUsage: true}

// TestRequestTranslations decodes each request and encodes it in the
// other protocols.
func TestRequestTranslations(t *testing.T) {
	for _, c := range cases(t, "requests", ".json") {
		t.Run(c.name, func(t *testing.T) {
			req, err := codecs[c.from].DecodeRequest(c.in)
			if err != nil {
				golden(t, c, "neutral.txt", errorOut(t, c.from, err))
				return
			}
			golden(t, c, "neutral.txt", dump(t, req))
			for p, codec := range codecs {
				if p == c.from {
					continue
				}
				out, err := codec.EncodeRequest(req)
				if err != nil {
					golden(t, c, "out."+string(p)+".json", errorOut(t, c.from, err))
					continue
				}
				golden(t, c, "out."+string(p)+".json", indent(t, out))
			}
		})
	}
}

// TestResponseTranslations decodes each response and encodes it in the
// other protocols.
func TestResponseTranslations(t *testing.T) {
	for _, c := range cases(t, "responses", ".json") {
		t.Run(c.name, func(t *testing.T) {
			resp, err := codecs[c.from].DecodeResponse(c.in)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, c, "neutral.txt", dump(t, resp))
			for p, codec := range codecs {
				if p != c.from {
					golden(t, c, "out."+string(p)+".json", indent(t, codec.EncodeResponse(resp, goldenRequest)))
				}
			}
		})
	}
}

// TestErrorTranslations decodes each error body (whose HTTP status is in
// the file "status") and encodes it in the other protocols.
func TestErrorTranslations(t *testing.T) {
	for _, c := range cases(t, "errors", ".json") {
		t.Run(c.name, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(c.dir, "status"))
			if err != nil {
				t.Fatal(err)
			}
			status, err := strconv.Atoi(strings.TrimSpace(string(raw)))
			if err != nil {
				t.Fatal(err)
			}
			e := codecs[c.from].DecodeError(status, c.in)
			golden(t, c, "neutral.txt", dump(t, e))
			for p, codec := range codecs {
				if p != c.from {
					golden(t, c, "out."+string(p)+".json", indent(t, codec.EncodeError(e)))
				}
			}
		})
	}
}

// TestStreamTranslations translates each recorded stream, one event at a
// time, into the other protocols; events.txt holds the neutral events.
func TestStreamTranslations(t *testing.T) {
	for _, c := range cases(t, "streams", ".sse") {
		t.Run(c.name, func(t *testing.T) {
			var events []byte
			dec := codecs[c.from].NewStreamDecoder()
			var evs []llm.Event
			forEachEvent(t, c.in, func(name string, data []byte) {
				var err error
				evs, err = dec.Decode(evs[:0], name, data)
				for i := range evs {
					events = append(events, evs[i].String()...)
					events = append(events, '\n')
				}
				if err != nil {
					events = append(events, "decode error: "+err.Error()+"\n"...)
				}
			})
			golden(t, c, "events.txt", events)
			for p := range codecs {
				if p != c.from {
					out := translateStream(t, c.from, p, c.in)
					if err := llmtest.WellFormed(p, out); err != nil {
						t.Errorf("%s: %v", p, err)
					}
					golden(t, c, "out."+string(p)+".sse", out)
				}
			}
		})
	}
}

// translateStream translates the SSE stream in from protocol from to to.
func translateStream(t testing.TB, from, to llm.Protocol, in []byte) []byte {
	tr := llm.NewStreamTranslator(codecs[from].NewStreamDecoder(), codecs[to].NewStreamEncoder(goldenRequest))
	var out []byte
	forEachEvent(t, in, func(name string, data []byte) {
		out, _ = tr.Translate(out, name, data)
	})
	return tr.Finish(out)
}

// fataler is what forEachEvent needs of a test: testing.TB and *rapid.T.
type fataler interface {
	Helper()
	Fatal(args ...any)
}

// forEachEvent calls f with each event of the SSE stream in.
func forEachEvent(t fataler, in []byte, f func(name string, data []byte)) {
	t.Helper()
	r := sse.NewReader(bytes.NewReader(in), 0)
	for {
		ev, err := r.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(ev.Raw) > 0 && len(bytes.TrimSpace(ev.Raw)) == 0 {
			continue // a stray blank line
		}
		f(ev.Event, ev.Data)
	}
}

// TestDecodersLeaveTheirInputAlone: a decoder reads the caller's buffers
// (in the gateway, the SSE reader's) and must never write to them.
func TestDecodersLeaveTheirInputAlone(t *testing.T) {
	for _, c := range cases(t, "streams", ".sse") {
		t.Run(c.name, func(t *testing.T) {
			var fed, orig [][]byte
			dec := codecs[c.from].NewStreamDecoder()
			var evs []llm.Event
			forEachEvent(t, c.in, func(name string, data []byte) {
				buf := append([]byte(nil), data...)
				fed, orig = append(fed, buf), append(orig, append([]byte(nil), data...))
				evs, _ = dec.Decode(evs[:0], name, buf)
			})
			for i := range fed {
				if !bytes.Equal(fed[i], orig[i]) {
					t.Fatalf("event %d became %q", i, fed[i])
				}
			}
		})
	}
}
