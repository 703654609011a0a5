package soak

import (
	"context"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/phasegate/phasegate/bench/harness"
)

func TestCheckAborts(t *testing.T) {
	log := strings.Join([]string{
		`{"level":"info","request_id":"a","route":"chat","status":408,"cause":"client_timeout","message":"access"}`,
		`{"level":"info","request_id":"b","route":"chat","status":408,"cause":"client_timeout","message":"access"}`,
		`{"level":"info","request_id":"c","route":"guard","status":200,"cause":"client_timeout","message":"access"}`,
		`{"level":"info","request_id":"d","route":"chat","status":499,"cause":"client_closed","message":"access"}`,
		`{"level":"info","request_id":"e","route":"chat","status":200,"cause":"completed","message":"access"}`,
	}, "\n")
	al, err := parseLog(strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	if want := map[routeCause]int{{"chat", "client_timeout"}: 2, {"guard", "client_timeout"}: 1, {"chat", "client_closed"}: 1}; len(al.aborts) != len(want) {
		t.Fatalf("aborts %v, want %v", al.aborts, want)
	}
	metrics := func(text string) harness.Metrics {
		m, err := harness.ParseMetrics(strings.NewReader(text))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	// The phase label splits a route's aborts; they add up.
	equal := metrics(`phasegate_lifecycle_aborts_total{cause="client_timeout",phase="access",route="chat"} 1
phasegate_lifecycle_aborts_total{cause="client_timeout",phase="upstream",route="chat"} 1
phasegate_lifecycle_aborts_total{cause="client_timeout",phase="body_filter",route="guard"} 1
phasegate_lifecycle_aborts_total{cause="client_closed",phase="upstream",route="chat"} 1
`)
	if c := checkAborts(endState{final: equal, log: al}); !c.OK || !strings.Contains(c.Detail, "client_timeout 3") {
		t.Errorf("equal counts: %+v", c)
	}
	missing := metrics(`phasegate_lifecycle_aborts_total{cause="client_timeout",phase="access",route="chat"} 2
phasegate_lifecycle_aborts_total{cause="client_closed",phase="upstream",route="plain"} 1
`)
	c := checkAborts(endState{final: missing, log: al})
	for _, want := range []string{`{route="guard",cause="client_timeout"}: metric 0, access log 1`, `{route="chat",cause="client_closed"}: metric 0, access log 1`, `{route="plain",cause="client_closed"}: metric 1, access log 0`} {
		if c.OK || !strings.Contains(c.Detail, want) {
			t.Errorf("differing counts: %+v lacks %q", c, want)
		}
	}
}

// testCall is a call to the data plane at addr.
func testCall(t *testing.T, addr string) *call {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return &call{ctx: ctx, cl: &client{addr: addr}, id: "t-1", ids: []string{"t-1", "t-2"}, rng: rand.New(rand.NewPCG(1, 2))}
}

func TestRawConn(t *testing.T) {
	ids := make(chan string, 4)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ids <- r.Header.Get("X-Request-Id")
		if r.URL.Path == pathHealth && r.Host == r.Context().Value(http.LocalAddrContextKey).(net.Addr).String() {
			io.WriteString(w, "ok")
			return
		}
		http.NotFound(w, r)
	}))
	srv.Config.IdleTimeout = 200 * time.Millisecond
	srv.Start()
	defer srv.Close()
	c := testCall(t, srv.Listener.Addr().String())

	if got, want := c.head(http.MethodPost, "/p", "h.test", "id-1", "A", "1", "B", "2"), "POST /p HTTP/1.1\r\nHost: h.test\r\nX-Request-Id: id-1\r\nA: 1\r\nB: 2\r\n\r\n"; got != want {
		t.Errorf("head = %q, want %q", got, want)
	}
	rc, err := c.dial(false)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	for _, id := range c.ids {
		if status, err := rc.healthz(c, id); status != http.StatusOK || err != nil {
			t.Fatalf("healthz %s: %d, %v", id, status, err)
		}
		if got := <-ids; got != id {
			t.Errorf("X-Request-Id %q, want %q", got, id)
		}
	}
	// The server closes the idle connection after its 200 ms.
	if err := rc.wantClosed(time.Now(), 200*time.Millisecond, "the idle timeout"); err != nil {
		t.Error(err)
	}

	// A connection the server keeps open is reported as such.
	rc2, err := c.dial(false)
	if err != nil {
		t.Fatal(err)
	}
	defer rc2.Close()
	if err := rc2.wantClosed(time.Now().Add(-boundSlack), 50*time.Millisecond, "a bound"); err == nil || !strings.Contains(err.Error(), "still open") {
		t.Errorf("wantClosed on an open connection: %v", err)
	}
	// A close well before the bound is no close by it.
	if err := rc.wantClosed(time.Now(), time.Minute, "a long bound"); err == nil || !strings.Contains(err.Error(), "well before") {
		t.Errorf("wantClosed on a closed connection, with a long bound: %v", err)
	}
	// A non-200 or a wrong body fails healthz.
	if _, err := io.WriteString(rc2, c.head(http.MethodGet, "/elsewhere", "", "t-3")); err != nil {
		t.Fatal(err)
	}
	if resp, _, err := rc2.response(http.MethodGet, time.Second); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("response to /elsewhere: %v, %v", resp, err)
	}
	<-ids
}

func TestRawConnClosesWithTheCall(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	c := &call{ctx: ctx, cl: &client{addr: ln.Addr().String()}}
	rc, err := c.dial(false)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	go func() {
		time.Sleep(50 * time.Millisecond)
		cancel()
	}()
	start := time.Now()
	if _, err := rc.header(http.MethodGet, 5*time.Second); err == nil || time.Since(start) > 2*time.Second {
		t.Errorf("a read after the call ended: %v after %s", err, time.Since(start))
	}
	if err := c.pause(time.Minute); err == nil {
		t.Error("pause outlived its call")
	}
}
