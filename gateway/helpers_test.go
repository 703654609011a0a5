package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/phasegate/phasegate/golden"
	"github.com/phasegate/phasegate/internal/plugintest"
	"github.com/phasegate/phasegate/pluginsdk"
)

var update = golden.Flag()

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// syncBuffer collects log lines from concurrent requests.
type syncBuffer struct{ plugintest.LogBuffer }

// lines returns the JSON log lines with message "access".
func (b *syncBuffer) accessLines(t testing.TB) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", sc.Text())
		}
		if m["message"] == "access" {
			out = append(out, m)
		}
	}
	return out
}

// waitAccessLines waits for n access lines: a line is written in the log
// phase, which can finish just after the client has read the whole
// response.
func (b *syncBuffer) waitAccessLines(t testing.TB, n int) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		lines := b.accessLines(t)
		if len(lines) >= n || time.Now().After(deadline) {
			if len(lines) != n {
				t.Fatalf("%d access lines, want %d:\n%s", len(lines), n, b.String())
			}
			return lines
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// testGateway is a Gateway served on a real socket, with its own registry
// and a captured log.
type testGateway struct {
	*Gateway
	srv *httptest.Server
	reg *prometheus.Registry
	log *syncBuffer
}

func newTestGateway(t *testing.T, yamlText string) *testGateway {
	t.Helper()
	return newTestGatewayWith(t, yamlText, nil)
}

func newTestGatewayWith(t *testing.T, yamlText string, plugins *pluginsdk.Registry) *testGateway {
	t.Helper()
	tg := buildTestGateway(t, yamlText, plugins)
	tg.srv = httptest.NewServer(tg.Gateway)
	t.Cleanup(func() {
		tg.srv.Close()
		if tr, ok := tg.opts.Transport.(*http.Transport); ok {
			tr.CloseIdleConnections()
		}
	})
	return tg
}

// buildTestGateway builds a Gateway for yamlText with its own registry and
// a captured log, without serving it.
func buildTestGateway(t *testing.T, yamlText string, plugins *pluginsdk.Registry) *testGateway {
	t.Helper()
	cfg, err := LoadConfig("test.yaml", []byte(yamlText), plugins, nil)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	tg := &testGateway{reg: prometheus.NewRegistry(), log: &syncBuffer{}}
	l := zerolog.New(tg.log)
	tg.Gateway, err = New(cfg, Options{Registerer: tg.reg, Logger: &l, Plugins: plugins})
	if err != nil {
		t.Fatalf("gateway: %v", err)
	}
	return tg
}

// startTestGateway is a Gateway serving yamlText on its own listeners
// (Start), so that the client: block's server-level bounds apply. The
// config must listen on port 0.
func startTestGateway(t *testing.T, yamlText string) *testGateway {
	t.Helper()
	tg := buildTestGateway(t, yamlText, nil)
	g := tg.Gateway
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = g.Shutdown(ctx)
	})
	return tg
}

func (tg *testGateway) url(path string) string {
	if tg.srv == nil {
		return "http://" + tg.Addr().String() + path
	}
	return tg.srv.URL + path
}

// waitGauge polls until every sample of the named gauge is 0, and fails
// with the exposition otherwise.
func (tg *testGateway) waitGaugesZero(t *testing.T, names ...string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		bad := nonZero(t, tg.reg, names...)
		if len(bad) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gauges not back to 0: %v", bad)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func nonZero(t *testing.T, reg *prometheus.Registry, names ...string) []string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var bad []string
	for _, mf := range mfs {
		for _, n := range names {
			if mf.GetName() != n {
				continue
			}
			for _, m := range mf.GetMetric() {
				if v := m.GetGauge().GetValue(); v != 0 {
					bad = append(bad, mf.GetName()+" "+m.String())
				}
			}
		}
	}
	return bad
}

func counter(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	return testutil.ToFloat64(c)
}

func readAll(t *testing.T, r io.Reader) string {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func zerologNop() zerolog.Logger { return zerolog.Nop() }

func httptestServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}
