package gateway

import (
	"log"
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/phasegate/phasegate/fsm"
)

// AdminHandler serves the admin endpoints:
//
//	GET /metrics    the gateway's registry, Prometheus text format, or
//	                OpenMetrics (with exemplars) when the scraper asks
//	GET /healthz    200 "ok"
//	GET /lifecycle  the lifecycle diagram (?format=mermaid, the default, or dot)
func (g *Gateway) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g.opts.Gatherer, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
		// Exemplars (trace ids) reach scrapers that negotiate OpenMetrics;
		// the others get the text format, without them.
		EnableOpenMetrics: true,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /lifecycle", func(w http.ResponseWriter, r *http.Request) {
		format := fsm.Format(r.URL.Query().Get("format"))
		if format == "" {
			format = fsm.FormatMermaid
		}
		d, ok := fsm.Diagram(format)
		if !ok {
			http.Error(w, `unknown format: use "mermaid" or "dot"`, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte(d))
	})
	return mux
}

// stdLogger routes net/http's own messages into zerolog at warn level.
func stdLogger(l zerolog.Logger) *log.Logger {
	return log.New(zlWriter{l}, "", 0)
}

type zlWriter struct{ l zerolog.Logger }

func (w zlWriter) Write(p []byte) (int, error) {
	w.l.Warn().Str("source", "net/http").Msg(string(trimNL(p)))
	return len(p), nil
}

func trimNL(p []byte) []byte {
	for len(p) > 0 && p[len(p)-1] == '\n' {
		p = p[:len(p)-1]
	}
	return p
}
