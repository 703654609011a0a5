package harness

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

// Metric names the benches read from an admin /metrics (docs/metrics.md);
// the Go runtime and process ones are client_golang's collectors', which
// phasegate and the load harness's bare proxy both register.
const (
	MetricRequests   = "phasegate_http_requests_total"
	MetricHTTPActive = "phasegate_http_active_requests"
	MetricLLMActive  = "phasegate_llm_active_connections"
	MetricAborts     = "phasegate_lifecycle_aborts_total"
	MetricGoroutines = "go_goroutines"
	MetricRSS        = "process_resident_memory_bytes"
	MetricHeapAlloc  = "go_memstats_heap_alloc_bytes"
	MetricMallocs    = "go_memstats_mallocs_total"
	MetricAllocBytes = "go_memstats_alloc_bytes_total"
)

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

// Metrics is one parsed scrape, by metric family name.
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

// Has reports whether the scrape has the metric name.
func (m Metrics) Has(name string) bool { return m[name] != nil }

// Samples returns every sample of the gauge, counter or untyped metric
// name (none when it is absent).
func (m Metrics) Samples(name string) []Sample {
	f := m[name]
	if f == nil {
		return nil
	}
	out := make([]Sample, 0, len(f.GetMetric()))
	for _, mt := range f.GetMetric() {
		s := Sample{Labels: labels(mt)}
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

// Series returns the labels of every series of the metric name, whatever
// its type (none when it is absent).
func (m Metrics) Series(name string) []map[string]string {
	f := m[name]
	if f == nil {
		return nil
	}
	out := make([]map[string]string, len(f.GetMetric()))
	for i, mt := range f.GetMetric() {
		out[i] = labels(mt)
	}
	return out
}

func labels(mt *dto.Metric) map[string]string {
	l := make(map[string]string, len(mt.GetLabel()))
	for _, lp := range mt.GetLabel() {
		l[lp.GetName()] = lp.GetValue()
	}
	return l
}

// Names returns the names of the metrics whose name begins with prefix,
// sorted.
func (m Metrics) Names(prefix string) []string {
	var out []string
	for name := range m {
		if strings.HasPrefix(name, prefix) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
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

// Sum adds up every sample of name (0 when it is absent).
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

// Scrape fetches and parses url, an admin /metrics.
func Scrape(ctx context.Context, hc *http.Client, url string) (Metrics, error) {
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
