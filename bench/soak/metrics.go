package soak

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Metric names the soak reads from the admin /metrics (docs/metrics.md).
const (
	metricRequests   = "phasegate_http_requests_total"
	metricHTTPActive = "phasegate_http_active_requests"
	metricLLMActive  = "phasegate_llm_active_connections"
	metricGoroutines = "go_goroutines"
	metricRSS        = "process_resident_memory_bytes"
)

// RouteCode is one series of phasegate_http_requests_total: a route id
// ("" for unmatched requests) and the status code label.
type RouteCode struct {
	Route string
	Code  string
}

func (rc RouteCode) String() string { return fmt.Sprintf("{route=%q,code=%q}", rc.Route, rc.Code) }

// Sample is one labelled value of a metric.
type Sample struct {
	Labels map[string]string
	Value  float64
}

func (s Sample) String() string {
	keys := make([]string, 0, len(s.Labels))
	for k := range s.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%q", k, s.Labels[k])
	}
	return fmt.Sprintf("{%s} %g", strings.Join(parts, ","), s.Value)
}

// Metrics is one parsed scrape of the Prometheus text format.
type Metrics map[string]*dto.MetricFamily

// ParseMetrics parses the Prometheus text exposition format.
func ParseMetrics(r io.Reader) (Metrics, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, err
	}
	return Metrics(fams), nil
}

// Samples returns every sample of the gauge, counter or untyped metric
// name (none when it is absent).
func (m Metrics) Samples(name string) []Sample {
	f := m[name]
	if f == nil {
		return nil
	}
	out := make([]Sample, 0, len(f.GetMetric()))
	for _, mt := range f.GetMetric() {
		s := Sample{Labels: map[string]string{}}
		for _, lp := range mt.GetLabel() {
			s.Labels[lp.GetName()] = lp.GetValue()
		}
		switch {
		case mt.Gauge != nil:
			s.Value = mt.GetGauge().GetValue()
		case mt.Counter != nil:
			s.Value = mt.GetCounter().GetValue()
		case mt.Untyped != nil:
			s.Value = mt.GetUntyped().GetValue()
		default:
			continue
		}
		out = append(out, s)
	}
	return out
}

// Value returns the value of the unlabelled metric name and whether it was
// present.
func (m Metrics) Value(name string) (float64, bool) {
	ss := m.Samples(name)
	if len(ss) != 1 {
		return 0, false
	}
	return ss[0].Value, true
}

// Sum adds up every sample of name.
func (m Metrics) Sum(name string) float64 {
	var t float64
	for _, s := range m.Samples(name) {
		t += s.Value
	}
	return t
}

// NonZero returns the samples of name whose value is not 0.
func (m Metrics) NonZero(name string) []Sample {
	var out []Sample
	for _, s := range m.Samples(name) {
		if s.Value != 0 {
			out = append(out, s)
		}
	}
	return out
}

// Requests returns phasegate_http_requests_total by (route, code).
func (m Metrics) Requests() map[RouteCode]float64 {
	out := map[RouteCode]float64{}
	for _, s := range m.Samples(metricRequests) {
		out[RouteCode{s.Labels["route"], s.Labels["code"]}] += s.Value
	}
	return out
}

// scrape fetches and parses url (the admin /metrics).
func scrape(ctx context.Context, hc *http.Client, url string) (Metrics, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	// Ask for the classic text format: that is what the parser reads.
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, b)
	}
	return ParseMetrics(resp.Body)
}

// Tally counts the requests the clients sent by the (route, code) the
// server is expected to record for each.
type Tally map[RouteCode]int

// Add counts one request.
func (t Tally) Add(route string, code int) { t[RouteCode{route, fmt.Sprint(code)}]++ }

// Total is the number of requests counted.
func (t Tally) Total() int {
	n := 0
	for _, v := range t {
		n += v
	}
	return n
}

// Merge adds o's counts to t.
func (t Tally) Merge(o Tally) {
	for k, v := range o {
		t[k] += v
	}
}

// Mismatch is one (route, code) whose server count differs from the
// clients' tally.
type Mismatch struct {
	Key    RouteCode
	Client int
	Server float64
}

func (m Mismatch) String() string {
	return fmt.Sprintf("%s clients %d, server %g", m.Key, m.Client, m.Server)
}

// CompareTally returns the (route, code) pairs where the server's
// phasegate_http_requests_total differs from the clients' tally, sorted. A
// series missing on one side counts as 0, so a series at 0 on the server
// that no client produced is no mismatch.
func CompareTally(want Tally, got map[RouteCode]float64) []Mismatch {
	keys := map[RouteCode]bool{}
	for k := range want {
		keys[k] = true
	}
	for k := range got {
		keys[k] = true
	}
	var out []Mismatch
	for k := range keys {
		if float64(want[k]) != got[k] {
			out = append(out, Mismatch{Key: k, Client: want[k], Server: got[k]})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Key.Route != out[j].Key.Route {
			return out[i].Key.Route < out[j].Key.Route
		}
		return out[i].Key.Code < out[j].Key.Code
	})
	return out
}
