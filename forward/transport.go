package forward

import (
	"context"
	"net"
	"net/http"
	"time"
)

// Transport tuning of NewTransport.
const (
	// DialTimeout bounds connecting to a node.
	DialTimeout = 5 * time.Second
	// IdleConnTimeout is how long an idle keep-alive connection is kept.
	IdleConnTimeout = 90 * time.Second
	// MaxIdleConnsPerHost is how many idle connections are kept per node.
	MaxIdleConnsPerHost = 256
	// MaxResponseHeaderBytes bounds an upstream's response head (net/http's
	// default is 10 MiB); a larger one is a 502.
	MaxResponseHeaderBytes = 1 << 20
)

// NewTransport returns a new keep-alive transport for upstream calls, to be
// shared by all the gateway's routes: large idle pools (MaxIdleConnsPerHost
// per node), IdleConnTimeout, a DialTimeout connect timeout with TCP
// keep-alive, MaxResponseHeaderBytes, no proxy from the environment, and no
// transparent compression (Accept-Encoding and Content-Encoding pass through
// untouched). It sets no ResponseHeaderTimeout: each Upstream enforces its
// route's own timeout. The caller owns it: CloseIdleConnections releases its
// connections.
//
// Its HTTP/1 connections, plain or over TLS (which it therefore dials
// itself, honouring TLSClientConfig), follow the framing of the responses a
// WatchResponse announces: bytes beyond a response's end are dropped and the
// connection is never reused, and Watch reports them.
func NewTransport() *http.Transport {
	dialer := &net.Dialer{Timeout: DialTimeout, KeepAlive: 30 * time.Second}
	t := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &framedConn{Conn: conn}, nil
		},
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           4 * MaxIdleConnsPerHost,
		MaxIdleConnsPerHost:    MaxIdleConnsPerHost,
		IdleConnTimeout:        IdleConnTimeout,
		TLSHandshakeTimeout:    10 * time.Second,
		ExpectContinueTimeout:  1 * time.Second,
		DisableCompression:     true,
		MaxResponseHeaderBytes: MaxResponseHeaderBytes,
	}
	t.DialTLSContext = dialTLS(t, dialer.DialContext)
	return t
}
