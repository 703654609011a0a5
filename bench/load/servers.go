package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/http/pprof"
	"net/url"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/phasegate/phasegate/bench/harness"
	"github.com/phasegate/phasegate/forward"
	"github.com/phasegate/phasegate/mockllm"
)

// plainPath is the upstream's plain endpoint: a fixed small JSON body.
const plainPath = "/plain"

// plainBody is what plainPath answers.
var plainBody = []byte(`{"ok":true,"message":"hello from the phasegate bench upstream"}` + "\n")

// serveUpstream is the -serve-upstream mode: the one upstream every target
// is measured against. GET /plain answers plainBody; every other path is
// the OpenAI-compatible mock (package mockllm), with its X-Mock-* headers.
func serveUpstream() error {
	mock := mockllm.New(mockllm.Options{})
	mux := http.NewServeMux()
	mux.HandleFunc(plainPath, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(plainBody)))
		_, _ = w.Write(plainBody)
	})
	mux.Handle("/", mock)
	return serve(mux, nil)
}

// serveBareProxy is the -serve-bare-proxy mode: an httputil.ReverseProxy
// to upstream (what NewSingleHostReverseProxy builds, with Rewrite, as
// Director is deprecated: the target URL, X-Forwarded-* set, and the
// client's Host kept, as phasegate's pass_host: pass does) with the
// keep-alive transport phasegate uses (internal/forward.NewTransport:
// MaxIdleConnsPerHost 256), flushing every write (FlushInterval -1) so
// that streams pass event by event. With pooled, its copy buffers come
// from a pool, as phasegate's do; without, ReverseProxy allocates 32 KiB
// per request. Its admin listener serves /metrics from the same Go and
// process collectors as phasegate's, so that both servers' allocation,
// heap and RSS figures are computed alike, and pprof (/debug/pprof/), for
// -cpuprofile-phasegate's comparison profiles.
func serveBareProxy(upstream string, pooled bool) error {
	u, err := url.Parse("http://" + upstream)
	if err != nil || upstream == "" {
		return fmt.Errorf("-upstream %q: want host:port", upstream)
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.SetXForwarded()
			pr.Out.Host = pr.In.Host
			if pr.Out.ContentLength > 0 {
				pr.Out.Body = &exactBody{rc: pr.Out.Body, n: pr.Out.ContentLength}
			}
		},
		Transport:     forward.NewTransport(),
		FlushInterval: -1,
	}
	if pooled {
		rp.BufferPool = &bufferPool{}
	}
	return serve(rp, adminMux())
}

// adminMux is the proxies' admin listener: /metrics from the same Go and
// process collectors as phasegate's, so that every server's allocation,
// heap and RSS figures are computed alike, and pprof (/debug/pprof/).
func adminMux() *http.ServeMux {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	admin := http.NewServeMux()
	admin.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	admin.HandleFunc("/debug/pprof/", pprof.Index)
	admin.HandleFunc("/debug/pprof/profile", pprof.Profile)
	return admin
}

// serve runs handler on a free port (and admin, when not nil, on another),
// prints the Ready line, and serves until SIGTERM or SIGINT.
func serve(handler, admin http.Handler) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	errs := make(chan error, 2)
	go func() { errs <- srv.Serve(ln) }()
	ready := harness.Ready{Message: serverReady, Listen: ln.Addr().String()}
	var asrv *http.Server
	if admin != nil {
		aln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		asrv = &http.Server{Handler: admin, ReadHeaderTimeout: 10 * time.Second}
		go func() { errs <- asrv.Serve(aln) }()
		ready.Admin = aln.Addr().String()
	}
	line, _ := json.Marshal(ready)
	fmt.Println(string(line))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	select {
	case err := <-errs:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	if asrv != nil {
		_ = asrv.Close()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		_ = srv.Close()
		return nil
	}
	return err
}

// bufferPool is an httputil.BufferPool of 32 KiB buffers, ReverseProxy's
// own size.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }

// exactBody ends a request body of known length at its length, without
// reading the underlying body again. http.Transport reads once more past
// Content-Length to check for extra bytes; when the proxy has already
// started the response, net/http's server has closed the inbound body,
// that read fails, and the Transport closes the upstream connection in the
// middle of the response (golang/go#40747): about 5% of streamed POSTs
// were cut on this machine before this wrapper.
type exactBody struct {
	rc io.ReadCloser
	n  int64
}

func (b *exactBody) Read(p []byte) (int, error) {
	if b.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	k, err := b.rc.Read(p)
	b.n -= int64(k)
	if b.n == 0 && err == nil {
		err = io.EOF
	}
	return k, err
}

func (b *exactBody) Close() error { return b.rc.Close() }
