package gateway

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"github.com/phasegate/phasegate/golden"
)

// A known sequence of requests gives a known exposition: counters by route
// and code, exits by phase and plugin, active gauges back at 0.
func TestMetricsExpositionGolden(t *testing.T) {
	up := newUpstream(t)
	tg := newTestGateway(t, plainConfig(up.node()))
	for _, rq := range []struct{ method, path string }{
		{"GET", "/api/a"}, {"GET", "/api/b"}, {"POST", "/api/c"},
		{"GET", "/nowhere"}, {"POST", "/exact"}, {"GET", "/dead"},
	} {
		req, _ := http.NewRequest(rq.method, tg.url(rq.path), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp.Body)
		resp.Body.Close()
	}
	tg.waitGaugesZero(t, "phasegate_http_active_requests")
	names := []string{
		"phasegate_http_requests_total",
		"phasegate_http_active_requests",
		"phasegate_lifecycle_exits_total",
		"phasegate_lifecycle_aborts_total",
		"phasegate_llm_active_connections",
	}
	path := filepath.Join("testdata", "metrics.golden")
	if *update {
		mfs, err := tg.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		for _, mf := range mfs {
			for _, n := range names {
				if mf.GetName() == n {
					if _, err := expfmt.MetricFamilyToText(&buf, mf); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		golden.File(t, path, buf.String(), *update)
	}
	want, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer want.Close()
	if err := testutil.GatherAndCompare(tg.reg, want, names...); err != nil {
		t.Fatal(err)
	}
	// Every route's series exists from the start (five routes and "").
	if n := testutil.CollectAndCount(tg.Metrics().HTTPDuration); n != 6 {
		t.Fatalf("%d duration series, want 6", n)
	}
	problems, err := testutil.GatherAndLint(tg.reg)
	if err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", err, problems)
	}
}

// The whole exposition, as the admin listener serves it, passes
// `promtool check metrics` (Debian's prometheus package; installed here
// when missing and possible).
func TestExpositionPassesPromtool(t *testing.T) {
	promtool := ensurePromtool(t)
	up := newUpstream(t)
	tg := newTestGateway(t, plainConfig(up.node()))
	resp, err := http.Get(tg.url("/api/x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	srv := httptestServer(t, tg.AdminHandler())
	resp, err = http.Get(srv + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	text := readAll(t, resp.Body)
	resp.Body.Close()
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

var installOnce sync.Once

// ensurePromtool finds promtool, installing Debian's prometheus package if
// it is missing and this process may do so. It skips the test, saying why,
// only when the tool cannot be had.
func ensurePromtool(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("promtool"); err == nil {
		return p
	}
	var log []byte
	installOnce.Do(func() {
		if os.Geteuid() != 0 {
			log = []byte("not root")
			return
		}
		cmd := exec.Command("apt-get", "install", "-y", "--no-install-recommends", "prometheus")
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		log, _ = cmd.CombinedOutput()
	})
	if p, err := exec.LookPath("promtool"); err == nil {
		return p
	}
	t.Skipf("SKIP: promtool is not installed and could not be installed (apt-get install prometheus: %s)", lastLine(log))
	return ""
}

func lastLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
