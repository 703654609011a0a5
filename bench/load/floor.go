package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/phasegate/phasegate/forward"
	"github.com/phasegate/phasegate/httpx"
)

// floorProxy is the least a correct HTTP/1.1 reverse proxy built on
// net/http's server and http.Transport does: the "net/http floor" target,
// how fast any such proxy can go (docs/benchmarks.md, "The net/http
// floor"). It builds the outgoing request directly from the incoming one,
// reusing its header map, and copies the response back flushing after
// every write, so that streams pass event by event. Response trailers are
// not forwarded (a recipient may discard them).
type floorProxy struct {
	host      string // the upstream, host:port, reached over http
	transport http.RoundTripper
	bufs      sync.Pool // of *[]byte, floorBufSize long
}

// floorBufSize is the copy buffer's size, ReverseProxy's own.
const floorBufSize = 32 << 10

// serveFloorProxy is the -serve-floor-proxy mode: a floorProxy to upstream
// with phasegate's upstream transport, like the bare proxy, and the same
// admin listener.
func serveFloorProxy(upstream string) error {
	if _, _, err := net.SplitHostPort(upstream); err != nil {
		return fmt.Errorf("-upstream %q: want host:port", upstream)
	}
	return serve(newFloorProxy(upstream, forward.NewTransport()), adminMux())
}

func newFloorProxy(upstream string, rt http.RoundTripper) *floorProxy {
	return &floorProxy{host: upstream, transport: rt}
}

func (p *floorProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := r.Header
	httpx.StripHop(h)
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		if prior := h["X-Forwarded-For"]; len(prior) > 0 {
			ip = strings.Join(prior, ", ") + ", " + ip
		}
		h["X-Forwarded-For"] = []string{ip}
	}
	h["X-Forwarded-Host"] = []string{r.Host}
	if r.TLS != nil {
		h["X-Forwarded-Proto"] = []string{"https"}
	} else {
		h["X-Forwarded-Proto"] = []string{"http"}
	}
	// Without one, http.Transport would send its own User-Agent.
	if _, ok := h["User-Agent"]; !ok {
		h["User-Agent"] = []string{""}
	}

	// A shallow copy keeps the context, method, header map, Host, length
	// and transfer coding; the URL, body and connection are the proxy's.
	out := new(http.Request)
	*out = *r
	out.URL = &url.URL{Scheme: "http", Host: p.host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
	out.RequestURI = ""
	out.Close = false
	if r.ContentLength > 0 {
		out.Body = &exactBody{rc: r.Body, n: r.ContentLength}
	}

	res, err := p.transport.RoundTrip(out)
	if err != nil {
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	defer res.Body.Close()
	httpx.StripHop(res.Header)
	wh := w.Header()
	for k, v := range res.Header {
		wh[k] = v
	}
	w.WriteHeader(res.StatusCode)
	if err := p.copyFlushing(w, res.Body); err != nil {
		// The status is sent: abort, so that the client sees the response
		// cut rather than complete.
		panic(http.ErrAbortHandler)
	}
}

// copyFlushing copies body to w, flushing after every write.
func (p *floorProxy) copyFlushing(w http.ResponseWriter, body io.Reader) error {
	bp, ok := p.bufs.Get().(*[]byte)
	if !ok {
		b := make([]byte, floorBufSize)
		bp = &b
	}
	defer p.bufs.Put(bp)
	buf := *bp
	f, _ := w.(http.Flusher)
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return err
			}
			if f != nil {
				f.Flush()
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}
