package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// Metric names read from phasegate's admin /metrics (and from the bare
// proxy's equivalent).
const (
	mMallocs      = "go_memstats_mallocs_total"
	mAllocBytes   = "go_memstats_alloc_bytes_total"
	mHeapAlloc    = "go_memstats_heap_alloc_bytes"
	mGoroutines   = "go_goroutines"
	mRSS          = "process_resident_memory_bytes"
	mActiveHTTP   = "phasegate_http_active_requests"
	mActiveLLM    = "phasegate_llm_active_connections"
	mRequestTotal = "phasegate_http_requests_total"
)

// sample is one scrape: each metric name with the sum of its series.
type sample map[string]float64

// scrape reads http://addr/metrics.
func scrape(ctx context.Context, addr string) (sample, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: status %s", addr, resp.Status)
	}
	return parseMetrics(resp.Body)
}

// parseMetrics reads the Prometheus text exposition format and sums the
// samples of each metric name over their label sets.
func parseMetrics(r io.Reader) (sample, error) {
	s := sample{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest := line, ""
		if i := strings.IndexAny(line, "{ \t"); i >= 0 {
			name, rest = line[:i], line[i:]
		}
		if strings.HasPrefix(rest, "{") {
			end := labelsEnd(rest)
			if end < 0 {
				return nil, fmt.Errorf("metrics: unterminated labels in %q", line)
			}
			rest = rest[end+1:]
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return nil, fmt.Errorf("metrics: no value in %q", line)
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics: bad value in %q", line)
		}
		s[name] += v
	}
	return s, sc.Err()
}

// labelsEnd returns the index of the '}' closing the label set that s
// starts with, skipping quoted values (with their escapes), or -1.
func labelsEnd(s string) int {
	quoted := false
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && c == '}':
			return i
		}
	}
	return -1
}

// cost is what a server spent per request over a measurement.
type cost struct {
	Objects float64 // heap allocations per request; NaN: not measured
	Bytes   float64 // heap bytes allocated per request; NaN: not measured
	CPU     float64 // CPU time per request (user + system, every thread), ns; NaN: not measured
}

// meterStart is a server's counters at the start of a measurement slice.
type meterStart struct {
	metrics sample
	cpu     time.Duration
}

// costMeter reads a server's allocation counters (from its /metrics) and
// CPU time (from /proc) around measurement slices and sums the deltas.
type costMeter struct {
	addr    string // metrics address; "" = no allocation counters
	pid     int    // 0 = no CPU time
	objects float64
	bytes   float64
	cpu     time.Duration
	reqs    int
}

// start records the counters before a measurement slice.
func (m *costMeter) start(ctx context.Context) (meterStart, error) {
	var st meterStart
	if m == nil {
		return st, nil
	}
	var err error
	if m.addr != "" {
		if st.metrics, err = scrape(ctx, m.addr); err != nil {
			return st, err
		}
	}
	if m.pid != 0 {
		if st.cpu, err = processCPU(m.pid); err != nil {
			return st, err
		}
	}
	return st, nil
}

// add accumulates the deltas since before over reqs requests.
func (m *costMeter) add(ctx context.Context, before meterStart, reqs int) error {
	if m == nil {
		return nil
	}
	if m.pid != 0 {
		cpu, err := processCPU(m.pid)
		if err != nil {
			return err
		}
		m.cpu += cpu - before.cpu
	}
	if m.addr != "" {
		after, err := scrape(ctx, m.addr)
		if err != nil {
			return err
		}
		m.objects += after[mMallocs] - before.metrics[mMallocs]
		m.bytes += after[mAllocBytes] - before.metrics[mAllocBytes]
	}
	m.reqs += reqs
	return nil
}

// result is the per-request figures, nil when nothing was measured.
func (m *costMeter) result() *cost {
	if m == nil || m.reqs == 0 {
		return nil
	}
	n := float64(m.reqs)
	c := &cost{Objects: math.NaN(), Bytes: math.NaN(), CPU: math.NaN()}
	if m.addr != "" {
		c.Objects, c.Bytes = m.objects/n, m.bytes/n
	}
	if m.pid != 0 {
		c.CPU = float64(m.cpu) / n
	}
	return c
}

// clockTick is the unit of /proc/PID/stat's times (USER_HZ, 100 on Linux
// everywhere in practice).
const clockTick = 10 * time.Millisecond

// processCPU is the user and system CPU time of every thread of process
// pid so far, from /proc/PID/stat.
func processCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(string(data))
}

// parseStatCPU reads utime and stime (fields 14 and 15) of a
// /proc/PID/stat line; the command name (field 2) may hold spaces and
// parentheses, so fields are counted after its last ')'.
func parseStatCPU(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc stat: no command name in %.60q", stat)
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state): utime is field 14, stime 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc stat: too few fields in %.60q", stat)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc stat: bad utime/stime in %.60q", stat)
	}
	return time.Duration(ut+st) * clockTick, nil
}
