package proxy

import (
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
)

// NewTransport returns a new keep-alive transport for upstream calls, to be
// shared by all the gateway's routes: large idle pools (MaxIdleConnsPerHost
// per node), IdleConnTimeout, a DialTimeout connect timeout with TCP
// keep-alive, no proxy from the environment, and no transparent compression
// (Accept-Encoding and Content-Encoding pass through untouched). It sets no
// ResponseHeaderTimeout: each Upstream enforces its route's own timeout.
// The caller owns it: CloseIdleConnections releases its connections.
func NewTransport() *http.Transport {
	dialer := &net.Dialer{Timeout: DialTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          4 * MaxIdleConnsPerHost,
		MaxIdleConnsPerHost:   MaxIdleConnsPerHost,
		IdleConnTimeout:       IdleConnTimeout,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: 1 * time.Second,
		DisableCompression:    true,
	}
}
