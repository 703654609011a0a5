package phases_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/phasegate/phasegate/phases"
)

// apiKey is a complete access plugin: it lets a request through only with
// the right key. Its only control over the request is the exit it returns.
type apiKey struct{ key string }

func (p *apiKey) Name() string  { return "api-key" }
func (p *apiKey) Priority() int { return 2500 }

func (p *apiKey) Access(ctx context.Context, r *phases.Request) phases.Exit {
	if r.Header.Get("X-Api-Key") != p.key {
		return phases.Error(http.StatusUnauthorized, "invalid_request_error", "missing or wrong API key")
	}
	r.Header.Del("X-Api-Key") // the upstream never sees it
	return phases.Exit{}
}

// hello is an upstream that answers every request itself.
type hello struct{}

func (hello) Name() string { return "hello" }

func (hello) Upstream(ctx context.Context, r *phases.Request) (*phases.Response, error) {
	return &phases.Response{
		Status: http.StatusOK,
		Header: http.Header{"Content-Type": {"text/plain"}},
		Body:   phases.BytesBody([]byte("hello\n")),
	}, nil
}

func Example() {
	chain, err := phases.NewChain(phases.Options{Route: "hello"}, &apiKey{key: "s3cret"}, hello{})
	if err != nil {
		panic(err)
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chain.ServeHTTP(w, r)
	})

	for _, key := range []string{"wrong", "s3cret"} {
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("X-Api-Key", key)
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		fmt.Print(rec.Code, " ", rec.Body.String(), "\n")
	}
	// Output:
	// 401 {"error":{"message":"missing or wrong API key","type":"invalid_request_error","code":401}}
	// 200 hello
}

// A body filter either passes a chunk on (the zero BodyResult), replaces it,
// or ends the response: the three cannot be confused.
type redact struct{}

func (redact) Name() string { return "redact" }

func (redact) BodyFilter(ctx context.Context, c *phases.BodyChunk) phases.BodyResult {
	if string(c.Data) == "secret" {
		return phases.Replace([]byte("[redacted]"))
	}
	return phases.BodyResult{}
}

func ExampleReplace() {
	chain, _ := phases.NewChain(phases.Options{}, redact{}, secret{})
	rec := httptest.NewRecorder()
	chain.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	fmt.Println(rec.Body.String())
	// Output: [redacted]
}

type secret struct{}

func (secret) Name() string { return "secret" }
func (secret) Upstream(context.Context, *phases.Request) (*phases.Response, error) {
	return &phases.Response{Status: 200, Body: phases.BytesBody([]byte("secret"))}, nil
}

// Keys pass typed values between plugins and to the log.
func ExampleKey() {
	consumer := phases.NewKey[string]("consumer")
	var v phases.Values
	consumer.Set(&v, "alice")
	name, ok := consumer.Get(&v)
	fmt.Println(name, ok)
	// Output: alice true
}

// reader is an access hook that reads the body, as validating plugins do,
// and answers any failure to read it with 400.
type reader struct{}

func (reader) Name() string { return "reader" }
func (reader) Access(ctx context.Context, r *phases.Request) phases.Exit {
	if _, err := r.Body(); err != nil {
		return phases.Error(http.StatusBadRequest, "invalid_request_error", "unreadable body")
	}
	return phases.Exit{}
}

// A chain bounds its client's I/O with Options.BodyTimeout and SendTimeout:
// a client that sends part of its body and stalls gets a 408 once the body
// timeout passes, whatever the hook that read the body answered.
func ExampleOptions_timeouts() {
	chain, _ := phases.NewChain(phases.Options{BodyTimeout: 50 * time.Millisecond, SendTimeout: time.Second}, reader{}, hello{})
	srv := httptest.NewServer(chain)
	defer srv.Close()

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{") // then nothing
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		panic(err)
	}
	fmt.Println(resp.StatusCode, "closes the connection:", resp.Close)
	// Output: 408 closes the connection: true
}

// An error exit with a header of its own: the challenge stays whichever
// Renderer shapes the body.
func ExampleExit_WithHeader() {
	ex := phases.Error(http.StatusUnauthorized, "invalid_request_error", "Missing API key in request").
		WithHeader("Www-Authenticate", `Key realm="phasegate"`)
	fmt.Println(ex.Status(), ex.Header().Get("Www-Authenticate"))
	fmt.Println(string(ex.Body()))
	// Output:
	// 401 Key realm="phasegate"
	// {"error":{"message":"Missing API key in request","type":"invalid_request_error","code":401}}
}
