package mockllm

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"
)

// shutdownTimeout bounds the graceful part of [Server.Close]. Handlers end
// within milliseconds once shutdown begins, since every wait of the mock
// observes it; the bound only guards against a stuck client connection.
const shutdownTimeout = 5 * time.Second

// Server is a [Mock] served over HTTP on a TCP listener. Create it with
// [Start].
type Server struct {
	mock *Mock
	ln   net.Listener
	srv  *http.Server

	stop     chan struct{} // closed when Close begins
	done     chan struct{} // closed when Serve has returned
	serveErr error         // Serve's error other than http.ErrServerClosed; read after done

	closeOnce sync.Once
	closeErr  error
}

// Start listens on the TCP address addr ("127.0.0.1:0" picks a free port)
// and serves a new [Mock] configured by opts in the background until
// [Server.Close] is called.
func Start(addr string, opts Options) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	stop := make(chan struct{})
	s := &Server{
		mock: New(opts),
		ln:   ln,
		stop: stop,
		done: make(chan struct{}),
	}
	baseCtx := withStop(context.Background(), stop)
	s.srv = &http.Server{
		Handler:           s.mock,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       time.Minute,
		BaseContext:       func(net.Listener) context.Context { return baseCtx },
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.serveErr = err
		}
	}()
	return s, nil
}

// Addr returns the address the server listens on, such as
// "127.0.0.1:41234".
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL returns the base URL of the server, such as "http://127.0.0.1:41234";
// append a path such as [PathChatCompletions].
func (s *Server) URL() string { return "http://" + s.Addr() }

// Mock returns the handler the server runs, for its [Mock.Stats].
func (s *Server) Mock() *Mock { return s.mock }

// Close shuts the server down gracefully: it stops accepting connections,
// makes pending waits of the mock (delays, hangs) end at once, waits for the
// running handlers to return and closes the connections. Streams cut short
// this way end without "data: [DONE]"; requests that had not yet sent
// their headers get a 503. Close is idempotent and safe for concurrent use;
// every call returns the same error.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		err := s.srv.Shutdown(ctx)
		if err != nil {
			err = errors.Join(err, s.srv.Close())
		}
		<-s.done
		s.closeErr = errors.Join(err, s.serveErr)
	})
	return s.closeErr
}

// ListenAndServe serves a new [Mock] configured by opts on the TCP address
// addr until ctx is done, then shuts down gracefully as [Server.Close]
// does. It returns nil after a shutdown caused by ctx, and otherwise the
// error that stopped it, such as a failure to listen.
func ListenAndServe(ctx context.Context, addr string, opts Options) error {
	s, err := Start(addr, opts)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return s.Close()
	case <-s.done:
		return s.Close()
	}
}
