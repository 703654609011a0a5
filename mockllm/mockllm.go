package mockllm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/phasegate/phasegate/llm"
	"github.com/phasegate/phasegate/llm/anthropic"
)

// Defaults used when [Options] and the request leave a choice open.
const (
	// DefaultCompletionText is the completion text used when neither
	// [Options.DefaultContent] nor [HeaderContent] chooses one.
	DefaultCompletionText = "Hello from the phasegate mock LLM."

	// DefaultStreamChunks is the number of content chunks of a streamed
	// reply when [HeaderChunks] is absent.
	DefaultStreamChunks = 4

	// DefaultModerationModel is the model reported by moderation replies
	// when the request names none.
	DefaultModerationModel = "omni-moderation-latest"
)

// Paths served by [Mock].
const (
	PathChatCompletions = "/v1/chat/completions"
	PathModerations     = "/v1/moderations"
	PathMessages        = "/v1/messages"
	PathCountTokens     = "/v1/messages/count_tokens"
	PathHealth          = "/healthz"
)

// maxBodyBytes bounds request bodies; larger bodies get a 413.
const maxBodyBytes = 4 << 20

// splitPause is the pause between the two halves of an event written with
// [HeaderSplit].
const splitPause = 5 * time.Millisecond

// Options configures a [Mock]. The zero value is ready to use.
type Options struct {
	// ModerationWords are flagged by POST /v1/moderations when one of them
	// occurs in an input as a whole word, compared case-insensitively.
	// A nil slice selects the default ["kill", "bomb"]; an empty non-nil
	// slice flags nothing.
	ModerationWords []string

	// DefaultContent is the completion text when the request does not
	// choose one with [HeaderContent]. Empty selects
	// [DefaultCompletionText].
	DefaultContent string
}

// Stats are the request counters of a [Mock]. A snapshot is consistent:
// Requests == Active + Completed + Canceled + Aborted.
type Stats struct {
	// Requests is the number of requests received, on any path.
	Requests int64
	// Active is the number of handlers running now.
	Active int64
	// Completed is the number of handlers that returned normally, including
	// error replies and replies cut short by [Server.Close].
	Completed int64
	// Canceled is the number of handlers that stopped early because the
	// client went away (its request context was cancelled) before the
	// reply was complete.
	Canceled int64
	// Aborted is the number of connections aborted on purpose because of
	// [HeaderResetAfter].
	Aborted int64
}

// outcome classifies how a handler ended, for [Stats].
type outcome int

const (
	outcomeAborted outcome = iota
	outcomeCompleted
	outcomeCanceled
)

// Mock is the mock LLM upstream. It implements [http.Handler] and is safe
// for concurrent use. Create it with [New].
type Mock struct {
	content  string
	modWords []string // lower-cased, non-empty

	chatSeq atomic.Uint64
	msgSeq  atomic.Uint64
	toolSeq atomic.Uint64
	modSeq  atomic.Uint64

	mu    sync.Mutex
	stats Stats
}

// New returns a Mock configured by opts.
func New(opts Options) *Mock {
	m := &Mock{content: opts.DefaultContent}
	if m.content == "" {
		m.content = DefaultCompletionText
	}
	words := opts.ModerationWords
	if words == nil {
		words = []string{"kill", "bomb"}
	}
	for _, w := range words {
		if w = strings.ToLower(strings.TrimSpace(w)); w != "" {
			m.modWords = append(m.modWords, w)
		}
	}
	return m
}

// Stats returns a snapshot of the request counters. A handler's outcome is
// counted before it leaves Active, so once Active has dropped to zero the
// other counters are final for all requests received so far.
func (m *Mock) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stats
}

func (m *Mock) begin() {
	m.mu.Lock()
	m.stats.Requests++
	m.stats.Active++
	m.mu.Unlock()
}

func (m *Mock) end(o outcome) {
	m.mu.Lock()
	switch o {
	case outcomeCompleted:
		m.stats.Completed++
	case outcomeCanceled:
		m.stats.Canceled++
	default:
		m.stats.Aborted++
	}
	m.stats.Active--
	m.mu.Unlock()
}

// ServeHTTP implements [http.Handler].
func (m *Mock) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.begin()
	// A panic, in particular the deliberate http.ErrAbortHandler of
	// HeaderResetAfter, skips the assignment and counts as aborted.
	res := outcomeAborted
	defer func() { m.end(res) }()
	res = m.route(w, r)
}

func (m *Mock) route(w http.ResponseWriter, r *http.Request) outcome {
	var allow string
	var serve func(http.ResponseWriter, *http.Request, *behaviour) outcome
	d := doorOf(r.URL.Path)
	switch r.URL.Path {
	case PathChatCompletions:
		allow, serve = http.MethodPost, m.chat
	case PathModerations:
		allow, serve = http.MethodPost, m.moderate
	case PathMessages:
		allow, serve = http.MethodPost, m.messages
	case PathCountTokens:
		allow, serve = http.MethodPost, m.countTokens
	case PathHealth:
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			return methodNotAllowed(w, r, "GET, HEAD", d)
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = io.WriteString(w, "ok")
		return outcomeCompleted
	default:
		d.writeError(w, http.StatusNotFound, apiError{
			Message: fmt.Sprintf("Invalid URL (%s %s)", r.Method, r.URL.Path),
			Type:    "invalid_request_error",
		})
		return outcomeCompleted
	}
	if r.Method != allow {
		return methodNotAllowed(w, r, allow, d)
	}
	b, herr := parseBehaviour(r.Header)
	if herr != nil {
		d.writeError(w, http.StatusBadRequest, apiError{
			Message: herr.Error(),
			Type:    "invalid_request_error",
			Param:   new(herr.header),
		})
		return outcomeCompleted
	}
	return serve(w, r, &b)
}

func methodNotAllowed(w http.ResponseWriter, r *http.Request, allow string, d door) outcome {
	w.Header().Set("Allow", allow)
	d.writeError(w, http.StatusMethodNotAllowed, apiError{
		Message: fmt.Sprintf("Method %s not allowed for URL %s; allowed: %s", r.Method, r.URL.Path, allow),
		Type:    "invalid_request_error",
	})
	return outcomeCompleted
}

// readBody reads the whole request body. Reading to EOF matters beyond
// getting the bytes: net/http only starts watching the connection for a
// client disconnect, which cancels the request context, once the body has
// been consumed. On failure it writes the error reply and returns false.
func readBody(w http.ResponseWriter, r *http.Request, d door) ([]byte, outcome, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err == nil {
		return body, outcomeCompleted, true
	}
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		d.writeError(w, http.StatusRequestEntityTooLarge, apiError{
			Message: fmt.Sprintf("request body exceeds %d bytes", tooBig.Limit),
			Type:    "invalid_request_error",
		})
		return nil, outcomeCompleted, false
	}
	if r.Context().Err() != nil {
		return nil, outcomeCanceled, false
	}
	d.writeError(w, http.StatusBadRequest, apiError{
		Message: "could not read request body: " + err.Error(),
		Type:    "invalid_request_error",
	})
	return nil, outcomeCompleted, false
}

// checkJSON reports whether the request's Content-Type allows a JSON body
// (application/json, possibly with parameters, or none at all) and writes a
// 400 when it does not.
func checkJSON(w http.ResponseWriter, r *http.Request, d door) bool {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return true
	}
	if mt, _, err := mime.ParseMediaType(ct); err == nil && mt == "application/json" {
		return true
	}
	d.writeError(w, http.StatusBadRequest, apiError{
		Message: fmt.Sprintf("unsupported Content-Type %q: the request body must be application/json", ct),
		Type:    "invalid_request_error",
	})
	return false
}

// prelude applies the behaviour that precedes request validation: the
// header delay and an injected error status. It returns done == true when
// it has ended the exchange.
func prelude(w http.ResponseWriter, r *http.Request, b *behaviour, d door) (res outcome, done bool) {
	if b.headerDelay > 0 {
		if err := wait(r, b.headerDelay); err != nil {
			return interrupted(w, err, d), true
		}
	}
	if b.status != 0 {
		writeInjected(w, b, d)
		return outcomeCompleted, true
	}
	return outcomeCompleted, false
}

// readRequest begins the exchange of a POST endpoint: it reads the body,
// applies the behaviour that precedes validation (see prelude) and checks
// the Content-Type. On failure it has written the reply and returns false
// with the outcome.
func readRequest(w http.ResponseWriter, r *http.Request, b *behaviour, d door) ([]byte, outcome, bool) {
	body, res, ok := readBody(w, r, d)
	if !ok {
		return nil, res, false
	}
	if res, done := prelude(w, r, b, d); done {
		return nil, res, false
	}
	if !checkJSON(w, r, d) {
		return nil, outcomeCompleted, false
	}
	return body, outcomeCompleted, true
}

// respondJSON writes a non-streamed 200 reply with body v, honouring
// HeaderHang and HeaderResetAfter. A []byte v is sent as it is.
func respondJSON(w http.ResponseWriter, r *http.Request, b *behaviour, d door, v any) outcome {
	if b.hang {
		return interrupted(w, wait(r, -1), d)
	}
	data, ok := v.([]byte)
	if !ok {
		var err error
		if data, err = json.Marshal(v); err != nil {
			// Unreachable with the package's own types; kept as a safety net.
			d.writeError(w, http.StatusInternalServerError, apiError{Message: err.Error(), Type: "server_error"})
			return outcomeCompleted
		}
	}
	data = append(data, '\n')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	if b.reset {
		w.WriteHeader(http.StatusOK)
		_ = http.NewResponseController(w).Flush()
		abort()
	}
	if _, err := w.Write(data); err != nil {
		return outcomeCanceled
	}
	return outcomeCompleted
}

// abort tears the connection down without completing the response.
func abort() {
	panic(http.ErrAbortHandler)
}

var (
	errClientGone = errors.New("mockllm: client went away")
	errStopping   = errors.New("mockllm: server is shutting down")
)

// stopKey is the context key under which a [Server] publishes the channel
// that is closed when it shuts down.
type stopKey struct{}

// wait blocks for d, or until the client goes away (errClientGone) or the
// serving [Server] shuts down (errStopping). A negative d waits for one of
// the latter only.
func wait(r *http.Request, d time.Duration) error {
	ctx := r.Context()
	if ctx.Err() != nil {
		return errClientGone
	}
	stop, _ := ctx.Value(stopKey{}).(<-chan struct{}) // nil blocks forever
	var elapsed <-chan time.Time
	if d >= 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		elapsed = t.C
	}
	select {
	case <-ctx.Done():
		return errClientGone
	case <-stop:
		return errStopping
	case <-elapsed:
		return nil
	}
}

// interrupted ends an exchange whose wait failed with err before the
// headers were written, and returns its outcome. A nil err (a hang cannot
// end normally) is treated as a client that went away.
func interrupted(w http.ResponseWriter, err error, d door) outcome {
	if errors.Is(err, errStopping) {
		d.writeError(w, http.StatusServiceUnavailable, apiError{
			Message: "the mock server is shutting down",
			Type:    "server_error",
		})
		return outcomeCompleted
	}
	return outcomeCanceled
}

// streamOutcome maps an error that ended a stream to its outcome.
func streamOutcome(err error) outcome {
	if errors.Is(err, errStopping) {
		return outcomeCompleted
	}
	return outcomeCanceled
}

// apiError is the OpenAI error object.
type apiError struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

func writeError(w http.ResponseWriter, status int, e apiError) {
	data, err := json.Marshal(struct {
		Error apiError `json:"error"`
	}{e})
	if err != nil { // unreachable: apiError always marshals
		http.Error(w, e.Message, status)
		return
	}
	writeJSONError(w, status, data)
}

// writeJSONError writes an error reply with a JSON body.
func writeJSONError(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// writeInjected writes the error reply selected by HeaderStatus.
func writeInjected(w http.ResponseWriter, b *behaviour, d door) {
	if b.hasErrorBody {
		ct := "text/plain; charset=utf-8"
		if json.Valid([]byte(b.errorBody)) {
			ct = "application/json"
		}
		w.Header().Set("Content-Type", ct)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(b.status)
		_, _ = io.WriteString(w, b.errorBody)
		return
	}
	e := apiError{
		Message: fmt.Sprintf("mock: injected HTTP %d %s (%s)", b.status, http.StatusText(b.status), HeaderStatus),
		Type:    "invalid_request_error",
	}
	switch {
	case b.status == http.StatusUnauthorized:
		e.Code = new("invalid_api_key")
	case b.status == http.StatusTooManyRequests:
		e.Type, e.Code = "requests", new("rate_limit_exceeded")
	case b.status >= 500:
		e.Type = "server_error"
	}
	d.writeError(w, b.status, e)
}

// door is the protocol a request came in by, which shapes its error
// replies.
type door uint8

const (
	doorOpenAI door = iota
	doorAnthropic
)

// doorOf returns the door of a request path: Anthropic's for the Messages
// paths and anything under them, OpenAI's for the rest.
func doorOf(path string) door {
	if path == PathMessages || strings.HasPrefix(path, PathMessages+"/") {
		return doorAnthropic
	}
	return doorOpenAI
}

// writeError writes e in the door's error shape. Anthropic's error type
// follows from the status, as anthropic.ErrorType maps it.
func (d door) writeError(w http.ResponseWriter, status int, e apiError) {
	if d == doorOpenAI {
		writeError(w, status, e)
		return
	}
	body := anthropic.Codec{}.EncodeError(&llm.Error{Status: status, Message: e.Message})
	writeJSONError(w, status, body)
}

// withStop returns a copy of ctx carrying stop, a channel closed when the
// serving [Server] shuts down; wait gives up when it is closed.
func withStop(ctx context.Context, stop <-chan struct{}) context.Context {
	return context.WithValue(ctx, stopKey{}, stop)
}
