package main

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/phasegate/phasegate/bench/harness"
)

// scrape reads http://addr/metrics.
func scrape(ctx context.Context, addr string) (harness.Metrics, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	m, err := harness.Scrape(ctx, http.DefaultClient, "http://"+addr+"/metrics")
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", addr, err)
	}
	return m, nil
}

// cost is what a server spent per request over a measurement.
type cost struct {
	Objects float64 // heap allocations per request; NaN: not measured
	Bytes   float64 // heap bytes allocated per request; NaN: not measured
	CPU     float64 // CPU time per request (user + system, every thread), ns; NaN: not measured
}

// meterStart is a server's counters at the start of a measurement slice.
type meterStart struct {
	metrics harness.Metrics
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
		m.objects += after.Sum(harness.MetricMallocs) - before.metrics.Sum(harness.MetricMallocs)
		m.bytes += after.Sum(harness.MetricAllocBytes) - before.metrics.Sum(harness.MetricAllocBytes)
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
