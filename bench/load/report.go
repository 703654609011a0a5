package main

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/phasegate/phasegate/bench/harness"
)

// Targets of the issue (docs/benchmarks.md): ratios to the bare proxy of
// the same run.
const (
	targetPlainRatio    = 1.20                   // plain route, requests/s (GET and chat, not streamed)
	targetAIRatio       = 1.10                   // AI route, requests/s (chat, not streamed)
	targetAIBurstRatio  = 1.00                   // AI route, requests/s (stream, events back to back)
	targetAIBurstCPU    = 1.00                   // AI route, server CPU per content event (at most)
	targetAddedTTFTOver = 100 * time.Microsecond // time to first token (p50) added over the bare proxy's
)

// table is a markdown table, padded so that it also reads well as plain
// text.
type table struct {
	Title  string
	Notes  []string
	Header []string
	Rows   [][]string
}

func (t *table) add(cells ...string) { t.Rows = append(t.Rows, cells) }

// markdown renders the table (title and notes above it when set).
func (t *table) markdown() string {
	var b strings.Builder
	if t.Title != "" {
		fmt.Fprintf(&b, "%s\n\n", t.Title)
	}
	for _, n := range t.Notes {
		fmt.Fprintf(&b, "%s\n", n)
	}
	if len(t.Notes) > 0 {
		b.WriteString("\n")
	}
	width := make([]int, len(t.Header))
	for i, h := range t.Header {
		width[i] = max(3, utf8.RuneCountInString(h))
	}
	for _, r := range t.Rows {
		for i, c := range r {
			if i < len(width) {
				width[i] = max(width[i], utf8.RuneCountInString(c))
			}
		}
	}
	line := func(cells []string, numeric bool) {
		b.WriteString("|")
		for i := range width {
			c := ""
			if i < len(cells) {
				c = cells[i]
			}
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			if numeric && i > 0 && i < len(width)-1 {
				fmt.Fprintf(&b, " %s%s |", pad, c)
			} else {
				fmt.Fprintf(&b, " %s%s |", c, pad)
			}
		}
		b.WriteString("\n")
	}
	line(t.Header, false)
	b.WriteString("|")
	for i, w := range width {
		if i > 0 && i < len(width)-1 {
			fmt.Fprintf(&b, "%s:|", strings.Repeat("-", w+1))
		} else {
			fmt.Fprintf(&b, "%s|", strings.Repeat("-", w+2))
		}
	}
	b.WriteString("\n")
	for _, r := range t.Rows {
		line(r, true)
	}
	return b.String()
}

// check is one target of the issue and whether this run met it.
type check struct {
	What  string // "plain route ÷ bare proxy, requests/s (GET /plain)"
	Want  string // "≥ 0.90×"
	Got   string
	OK    bool
	Known bool // false: could not be measured
}

func verdict(ok bool) string {
	if ok {
		return "✔"
	}
	return "✘ MISSED"
}

// Formatting.

func fmtDur(d time.Duration) string {
	us := float64(d) / float64(time.Microsecond)
	switch {
	case us < 10:
		return fmt.Sprintf("%.1f µs", us)
	case us < 1000:
		return fmt.Sprintf("%.0f µs", us)
	case us < 10_000:
		return fmt.Sprintf("%.2f ms", us/1000)
	case us < 1_000_000:
		return fmt.Sprintf("%.1f ms", us/1000)
	}
	return fmt.Sprintf("%.2f s", us/1e6)
}

// fmtDelta is a signed difference of durations.
func fmtDelta(d time.Duration) string {
	if d < 0 {
		return "−" + fmtDur(-d)
	}
	return "+" + fmtDur(d)
}

func fmtRatio(r float64) string {
	if math.IsNaN(r) || math.IsInf(r, 0) {
		return "—"
	}
	return fmt.Sprintf("%.2f×", r)
}

// fmtInt groups thousands: 12,345.
func fmtInt(v float64) string {
	s := fmt.Sprintf("%.0f", math.Round(v))
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func fmtBytes(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1<<30:
		return fmt.Sprintf("%.2f GiB", v/(1<<30))
	case a >= 1<<20:
		return fmt.Sprintf("%.1f MiB", v/(1<<20))
	case a >= 10<<10:
		return fmt.Sprintf("%.0f KiB", v/(1<<10))
	case a >= 1<<10:
		return fmt.Sprintf("%.1f KiB", v/(1<<10))
	}
	return fmt.Sprintf("%.0f B", v)
}

// report is a whole run's results.
type report struct {
	Started  time.Time
	Elapsed  time.Duration
	Command  string
	Machine  string
	Settings settings
	Sections []*section
	AINote   string // why the AI route was not measured; "" when it was
	Many     []*manyResult
	ManyNote string
	Checks   []check
	Pin      pinPlan // where the processes ran
	BarePool bool    // the bare proxy pools its copy buffers
	Overlay  string  // the go build -overlay phasegate was built with
	// ABOverlay is the overlay of the second phasegate build (B columns).
	ABOverlay string
	// NoAccessLog: phasegate ran without its access log.
	NoAccessLog bool
	// Floor: the net/http floor proxy was measured (-floor).
	Floor bool
}

// cell renders f for target key of s, "—" when s lacks it.
func cell(s *section, key string, f func(*measurement) string) string {
	m, ok := s.Results[key]
	if !ok {
		return "—"
	}
	return f(m)
}

// phasegateKeys are the phasegate targets a section has, in column order.
func phasegateKeys(s *section) []string {
	var keys []string
	for _, t := range s.Targets {
		if _, ok := shortName[t.Key]; ok {
			keys = append(keys, t.Key)
		}
	}
	return keys
}

// Target keys.
const (
	keyDirect = "direct"
	keyBare   = "bare"
	keyFloor  = "floor" // the net/http floor proxy (-floor)
	keyPlain  = "pg-plain"
	keyAI     = "pg-ai"
	// The -ab-overlay build's.
	keyPlainB = "pg-plain-b"
	keyAIB    = "pg-ai-b"
)

// shortName names the phasegate targets in ratio columns and checks.
var shortName = map[string]string{keyPlain: "plain", keyAI: "AI", keyPlainB: "plain B", keyAIB: "AI B"}

// ratioKeys are the targets a section has a "÷ bare" column for, in
// column order: the floor proxy, then phasegate's.
func ratioKeys(s *section) []string {
	keys := phasegateKeys(s)
	if slices.ContainsFunc(s.Targets, func(t *target) bool { return t.Key == keyFloor }) {
		keys = append([]string{keyFloor}, keys...)
	}
	return keys
}

// ratioName names a "÷ bare" column's target.
func ratioName(key string) string {
	if key == keyFloor {
		return "floor"
	}
	return shortName[key]
}

// isAI reports whether key is an AI route target.
func isAI(key string) bool { return key == keyAI || key == keyAIB }

// sectionTable renders a section, adding its targets' checks to r.
func (r *report) sectionTable(s *section) *table {
	t := &table{Title: "### " + s.Title, Notes: []string{"Upstream: " + s.Upstream + ". " +
		"In the ÷ bare columns, the \"added\" rows give the difference to the bare proxy instead of a ratio."}}
	t.Header = []string{"metric"}
	for _, tg := range s.Targets {
		t.Header = append(t.Header, tg.Name)
	}
	pg := phasegateKeys(s) // the targets with checks
	cols := ratioKeys(s)
	for _, k := range cols {
		t.Header = append(t.Header, ratioName(k)+" ÷ bare")
	}
	t.Header = append(t.Header, "target")

	// row adds a metric: value per target, ratio to the bare proxy per
	// phasegate target and the floor proxy, and the target column.
	row := func(name string, val func(*measurement) float64, show func(float64) string, rel func(a, b float64) string, tgt string) {
		cells := []string{name}
		for _, tg := range s.Targets {
			cells = append(cells, cell(s, tg.Key, func(m *measurement) string {
				v := val(m)
				if math.IsNaN(v) {
					return "—"
				}
				return show(v)
			}))
		}
		bare := math.NaN()
		if m, ok := s.Results[keyBare]; ok {
			bare = val(m)
		}
		for _, k := range cols {
			v := math.NaN()
			if m, ok := s.Results[k]; ok {
				v = val(m)
			}
			if math.IsNaN(v) || math.IsNaN(bare) {
				cells = append(cells, "—")
			} else {
				cells = append(cells, rel(v, bare))
			}
		}
		t.add(append(cells, tgt)...)
	}
	asRatio := func(a, b float64) string { return fmtRatio(ratio(a, b)) }
	asDelta := func(a, b float64) string { return fmtDelta(time.Duration(a - b)) }
	dur := func(v float64) string { return fmtDur(time.Duration(v)) }
	delta := func(v float64) string { return fmtDelta(time.Duration(v)) }
	direct := s.Results[keyDirect]
	added := func(get func(*measurement) time.Duration) func(*measurement) float64 {
		return func(m *measurement) float64 {
			if direct == nil {
				return math.NaN()
			}
			return float64(get(m) - get(direct))
		}
	}
	costOf := func(get func(*cost) float64) func(*measurement) float64 {
		return func(m *measurement) float64 {
			if m.Cost == nil {
				return math.NaN()
			}
			return get(m.Cost)
		}
	}
	cpu := costOf(func(c *cost) float64 { return c.CPU })
	objects := costOf(func(c *cost) float64 { return c.Objects })
	bytes := costOf(func(c *cost) float64 { return c.Bytes })
	cfg := s.settingsFor(r.Settings)
	if !s.Stream {
		conc := fmt.Sprintf("%d concurrent", cfg.concurrency)
		rate := fmt.Sprintf("%s req/s", fmtInt(cfg.rate))
		rps := func(m *measurement) float64 { return m.RPS }
		row("requests/s, "+conc, rps, fmtInt, asRatio, r.ratioChecks(s, pg, "requests/s", rps, rpsTarget(s), false))
		row("p50 latency, "+conc, func(m *measurement) float64 { return float64(m.Closed.P50) }, dur, asRatio, "")
		row("p99 latency, "+conc, func(m *measurement) float64 { return float64(m.Closed.P99) }, dur, asRatio, "")
		row("p50 latency at "+rate, func(m *measurement) float64 { return float64(m.Open.P50) }, dur, asRatio, "")
		row("p99 latency at "+rate, func(m *measurement) float64 { return float64(m.Open.P99) }, dur, asRatio, "")
		row("added p50 at "+rate+" (vs direct)", added(func(m *measurement) time.Duration { return m.Open.P50 }), delta, asDelta, "")
		row("server CPU per request", cpu, dur, asRatio, "")
		if s.Events > 0 {
			perEvent := func(m *measurement) float64 { return cpu(m) / float64(s.Events) }
			aiOnly := func(key string) (float64, bool) { return targetAIBurstCPU, isAI(key) }
			row(fmt.Sprintf("server CPU per content event (%d per stream)", s.Events), perEvent, dur, asRatio,
				r.ratioChecks(s, pg, "server CPU per content event", perEvent, aiOnly, true))
		}
		row("heap allocations per request (server)", objects, fmtInt, asRatio, "")
		row("heap bytes per request (server)", bytes, fmtBytes, asRatio, "")
	} else {
		row("time to first token, p50", func(m *measurement) float64 { return float64(m.TTFT.P50) }, dur, asRatio, "")
		row("time to first token, p99", func(m *measurement) float64 { return float64(m.TTFT.P99) }, dur, asRatio, "")
		row("added time to first token, p50 (vs direct)", added(func(m *measurement) time.Duration { return m.TTFT.P50 }), delta, asDelta,
			r.addedOverBareChecks(s, pg, "time to first token added (p50)", targetAddedTTFTOver, func(m *measurement) time.Duration { return m.TTFT.P50 }))
		row("total time per stream, p50", func(m *measurement) float64 { return float64(m.Total.P50) }, dur, asRatio, "")
		row("total time per stream, p99", func(m *measurement) float64 { return float64(m.Total.P99) }, dur, asRatio, "")
		row("added total time, p50 (vs direct)", added(func(m *measurement) time.Duration { return m.Total.P50 }), delta, asDelta, "")
		row("server CPU per stream", cpu, dur, asRatio, "")
		row("heap allocations per stream (server)", objects, fmtInt, asRatio, "")
		row("heap bytes per stream (server)", bytes, fmtBytes, asRatio, "")
	}
	errs := []string{"requests (errors)"}
	for _, tg := range s.Targets {
		errs = append(errs, cell(s, tg.Key, func(m *measurement) string {
			return fmt.Sprintf("%s (%d)", fmtInt(float64(m.N)), m.Errors)
		}))
	}
	for range cols {
		errs = append(errs, "")
	}
	t.add(append(errs, "0 errors "+verdict(r.errorsIn(s) == 0))...)
	if lo, hi := lateShare(s); hi > 0.05 {
		t.Notes = append(t.Notes, fmt.Sprintf("The machine was busy: %.0f–%.0f%% of the open-loop sends left more than 1 ms behind schedule "+
			"(latencies are measured from the actual send).", 100*lo, 100*hi))
	}
	for _, tg := range s.Targets {
		if m := s.Results[tg.Key]; m != nil && m.Errors > 0 {
			r.Checks = append(r.Checks, check{
				What: fmt.Sprintf("%s, no failed requests (%s)", tg.Name, s.Workload.Name), Want: "0",
				Got: fmt.Sprintf("%s of %s failed: %s", fmtInt(float64(m.Errors)), fmtInt(float64(m.N)), m.ErrMsg[0]), Known: true,
			})
			t.Notes = append(t.Notes, fmt.Sprintf("**%s: %d of %d requests failed** (first: %s); the figures are of the others.",
				tg.Name, m.Errors, m.N, m.ErrMsg[0]))
		}
	}
	return t
}

// lateShare is the lowest and highest share of the section's targets'
// open-loop sends that left more than 1 ms late.
func lateShare(s *section) (lo, hi float64) {
	lo = 1
	for _, m := range s.Results {
		if m.Sends == 0 {
			continue
		}
		f := float64(m.Late) / float64(m.Sends)
		lo, hi = min(lo, f), max(hi, f)
	}
	return min(lo, hi), hi
}

func (r *report) errorsIn(s *section) int {
	n := 0
	for _, m := range s.Results {
		n += m.Errors
	}
	return n
}

// ratioChecks records the ratio-to-bare targets that want gives the
// phasegate targets in pg (none when it returns false) and returns the
// target column. With atMost the ratio must not exceed the target (a
// cost), else it must reach it (a throughput).
func (r *report) ratioChecks(s *section, pg []string, what string, val func(*measurement) float64, want func(key string) (float64, bool), atMost bool) string {
	bare, ok := s.Results[keyBare]
	var parts []string
	for _, k := range pg {
		w, has := want(k)
		if !has {
			continue
		}
		c := check{What: fmt.Sprintf("%s route ÷ bare proxy, %s (%s)", shortName[k], what, s.Workload.Name), Want: fmt.Sprintf("≥ %.2f×", w)}
		if atMost {
			c.Want = fmt.Sprintf("≤ %.2f×", w)
		}
		if m, measured := s.Results[k]; ok && measured {
			q := ratio(val(m), val(bare))
			c.Got, c.Known = fmtRatio(q), true
			c.OK = q >= w
			if atMost {
				c.OK = q <= w
			}
		}
		r.Checks = append(r.Checks, c)
		parts = append(parts, fmt.Sprintf("%s %s %s", shortName[k], c.Want, verdict(c.OK)))
	}
	return strings.Join(parts, " · ")
}

// rpsTarget is the requests/s target of key in s: for streams back to
// back only the AI route has one.
func rpsTarget(s *section) func(key string) (float64, bool) {
	return func(key string) (float64, bool) {
		switch {
		case s.Events > 0:
			return targetAIBurstRatio, isAI(key)
		case isAI(key):
			return targetAIRatio, true
		}
		return targetPlainRatio, true
	}
}

// addedOverBareChecks records a target on what each phasegate target in pg
// adds to the bare proxy's figure, and returns the target column.
func (r *report) addedOverBareChecks(s *section, pg []string, what string, limit time.Duration, val func(*measurement) time.Duration) string {
	bare, ok := s.Results[keyBare]
	var parts []string
	for _, k := range pg {
		m, has := s.Results[k]
		c := check{What: fmt.Sprintf("%s route, %s over the bare proxy (%s)", shortName[k], what, s.Workload.Name), Want: "≤ " + fmtDur(limit)}
		if ok && has {
			d := val(m) - val(bare)
			c.Got, c.OK, c.Known = fmtDelta(d), d <= limit, true
		}
		r.Checks = append(r.Checks, c)
		parts = append(parts, fmt.Sprintf("%s %s %s", shortName[k], c.Want, verdict(c.OK)))
	}
	return strings.Join(parts, " · ")
}

// manyTable renders the many-streams comparison, adding its checks to r.
func (r *report) manyTable() *table {
	if len(r.Many) == 0 {
		return nil
	}
	t := &table{Title: fmt.Sprintf("### Memory under %s concurrent slow streams", fmtInt(float64(r.Many[0].N)))}
	t.Notes = append(t.Notes, fmt.Sprintf("Each stream lasts %s (20 content events, one every %s) through %s; with all of them open, "+
		"the servers' RSS, heap and goroutines are read and compared with the same fresh process idle (after a warm-up). "+
		"Then the client closes every stream.", r.Many[0].Hold, r.Many[0].Hold/20, r.Many[len(r.Many)-1].Route))
	if r.ManyNote != "" {
		t.Notes = append(t.Notes, r.ManyNote)
	}
	t.Notes = append(t.Notes, "Target: no more RSS per open stream than before; one run cannot know the before, so compare with docs/benchmarks.md.")
	t.Header = []string{"metric"}
	for _, m := range r.Many {
		t.Header = append(t.Header, m.Target)
	}
	hasBare := len(r.Many) > 1
	if hasBare {
		t.Header = append(t.Header, "phasegate ÷ bare")
	}
	t.Header = append(t.Header, "target")
	row := func(name string, f func(*manyResult) float64, show func(float64) string, rel bool) {
		cells := []string{name}
		for _, m := range r.Many {
			cells = append(cells, show(f(m)))
		}
		if hasBare {
			c := ""
			if rel {
				c = fmtRatio(ratio(f(r.Many[len(r.Many)-1]), f(r.Many[0])))
			}
			cells = append(cells, c)
		}
		t.add(append(cells, "")...)
	}
	row("streams open at once", func(m *manyResult) float64 { return float64(m.Opened) }, fmtInt, false)
	row("RSS idle", func(m *manyResult) float64 { return m.Idle.Sum(harness.MetricRSS) }, fmtBytes, true)
	row("RSS with all streams open", func(m *manyResult) float64 { return m.Open.Sum(harness.MetricRSS) }, fmtBytes, true)
	row("**RSS per stream**", func(m *manyResult) float64 { return m.perStream(harness.MetricRSS) }, fmtBytes, true)
	row("Go heap per stream (incl. not yet collected)", func(m *manyResult) float64 { return m.perStream(harness.MetricHeapAlloc) }, fmtBytes, true)
	row("goroutines per stream", func(m *manyResult) float64 { return m.perStream(harness.MetricGoroutines) }, func(v float64) string { return fmt.Sprintf("%.1f", v) }, true)
	pg := r.Many[len(r.Many)-1]
	gauges := func(m harness.Metrics) string {
		return fmt.Sprintf("http %s, llm %s", fmtInt(m.Sum(harness.MetricHTTPActive)), fmtInt(m.Sum(harness.MetricLLMActive)))
	}
	if pg.HasGauges {
		cells := []string{"active gauges, all open"}
		for range r.Many[:len(r.Many)-1] {
			cells = append(cells, "—")
		}
		cells = append(cells, gauges(pg.Open))
		if hasBare {
			cells = append(cells, "")
		}
		t.add(append(cells, "")...)
		c := check{What: "active gauges back to 0 after closing every stream", Want: "0", Known: true, OK: pg.GaugesZero}
		c.Got = gauges(pg.Closed)
		if pg.GaugesZero {
			c.Got += fmt.Sprintf(" after %s", fmtDur(pg.ZeroAfter))
		}
		r.Checks = append(r.Checks, c)
		cells = []string{"active gauges after closing"}
		for range r.Many[:len(r.Many)-1] {
			cells = append(cells, "—")
		}
		cells = append(cells, c.Got)
		if hasBare {
			cells = append(cells, "")
		}
		t.add(append(cells, "0 "+verdict(c.OK))...)
	}
	errs := 0
	cells := []string{"stream errors"}
	for _, m := range r.Many {
		cells = append(cells, fmt.Sprint(m.Errors))
		errs += m.Errors
	}
	if hasBare {
		cells = append(cells, "")
	}
	t.add(append(cells, "0 "+verdict(errs == 0))...)
	return t
}

// checksTable lists every target of the run with its verdict.
func (r *report) checksTable() *table {
	t := &table{Title: "### Targets", Header: []string{"target", "want", "got", "verdict"}}
	for _, c := range r.Checks {
		v := "not measured"
		if c.Known {
			v = verdict(c.OK)
		}
		got := c.Got
		if got == "" {
			got = "—"
		}
		t.add(c.What, c.Want, got, v)
	}
	return t
}

// missed returns the targets missed.
func (r *report) missed() []check {
	var out []check
	for _, c := range r.Checks {
		if c.Known && !c.OK {
			out = append(out, c)
		}
	}
	return out
}

// body renders everything but the heading: the run's facts, every table
// and the verdicts. Rendering records the checks, so it runs once.
func (r *report) body() string {
	r.Checks = nil
	var b strings.Builder
	cfg := r.Settings
	fmt.Fprintf(&b, "- Date: %s UTC. Machine: %s.\n", r.Started.UTC().Format("2006-01-02 15:04"), r.Machine)
	fmt.Fprintf(&b, "- Command: `%s` (%s in all).\n", r.Command, r.Elapsed.Round(time.Second))
	rounds := fmt.Sprintf("in %d rounds interleaving the targets", cfg.rounds)
	if cfg.rounds == 1 {
		rounds = "in one round"
	}
	fmt.Fprintf(&b, "- Each measurement: %s per target, %s, after a %s warm-up; "+
		"closed loop %d concurrent; open loop %s req/s; streams %s/s of %d content events %s apart.\n",
		cfg.duration, rounds, cfg.warmup, cfg.concurrency, fmtInt(cfg.rate), fmtInt(cfg.streamRate), cfg.chunks, cfg.chunkDelay)
	fmt.Fprintf(&b, "- %s; "+
		"per-request server figures are over the closed loop (streams: the stream loop): CPU is the server process's user + system time from /proc "+
		"(for direct, the upstream's own), heap figures its `go_memstats_mallocs_total` and `go_memstats_alloc_bytes_total`.\n", r.Pin.describe())
	pool := "a `BufferPool` of 32 KiB copy buffers (phasegate pools its own)"
	if !r.BarePool {
		pool = "no `BufferPool` (ReverseProxy's default: 32 KiB allocated per request)"
	}
	fmt.Fprintf(&b, "- Bare proxy: `httputil.ReverseProxy` (`Rewrite`: `SetURL`, `SetXForwarded`, the client's Host) with phasegate's upstream transport "+
		"(`forward.NewTransport`: keep-alive, 256 idle connections per host), `FlushInterval: -1`, %s, "+
		"and request bodies of known length ended at their length (without it, golang/go#40747 cuts about 5%% of streamed POSTs).\n", pool)
	if r.Floor {
		b.WriteString("- net/http floor: the least a correct HTTP/1.1 reverse proxy on the same server and transport does (`bench/load/floor.go`): " +
			"the outgoing request built directly from the incoming one, whose header map it reuses without the hop-by-hop headers, " +
			"`X-Forwarded-For`, `-Host` and `-Proto` set, the response's end-to-end headers copied, its body copied through a pooled 32 KiB buffer " +
			"with a flush after every write, 502 on a transport error. It has no target of its own.\n")
	}
	if r.Overlay != "" {
		fmt.Fprintf(&b, "- **phasegate built with the overlay `%s`**, not the tree as it is.\n", r.Overlay)
	}
	if r.ABOverlay != "" {
		fmt.Fprintf(&b, "- **A/B**: the \"B\" columns are a second phasegate process built with the overlay `%s`, measured in the same rounds.\n", r.ABOverlay)
	}
	if r.NoAccessLog {
		b.WriteString("- **phasegate ran without its access log** (`-phasegate-access-log=false`).\n")
	}
	if r.AINote != "" {
		fmt.Fprintf(&b, "- **phasegate AI route not measured**: %s\n", r.AINote)
	}
	b.WriteString("\n")
	var tables []*table
	for _, s := range r.Sections {
		tables = append(tables, r.sectionTable(s))
	}
	if mt := r.manyTable(); mt != nil {
		tables = append(tables, mt)
	} else if r.ManyNote != "" {
		tables = append(tables, &table{Title: "### Memory under many streams", Notes: []string{r.ManyNote}})
	}
	for _, t := range tables {
		b.WriteString(t.markdown())
		b.WriteString("\n")
	}
	b.WriteString(r.checksTable().markdown())
	if m := r.missed(); len(m) > 0 {
		fmt.Fprintf(&b, "\n**%d target(s) MISSED.**\n", len(m))
	} else {
		b.WriteString("\nEvery target measured was met.\n")
	}
	return b.String()
}

// machine describes this machine: CPU model, cores, kernel, Go version.
func machine() string {
	cpu := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(data)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	kernel := runtime.GOOS
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = "Linux " + strings.TrimSpace(string(data))
	}
	return fmt.Sprintf("%d cores %s, %s, %s", runtime.NumCPU(), cpu, kernel, runtime.Version())
}

// Markers of the load section in docs/benchmarks.md. The harness rewrites
// what lies between the results markers; the rest of the section (its
// heading, the prose on profiles) is written once and then left alone.
const (
	markBegin        = "<!-- load:begin -->"
	markEnd          = "<!-- load:end -->"
	markResultsBegin = "<!-- load:results:begin -->"
	markResultsEnd   = "<!-- load:results:end -->"
)

// sectionIntro opens a new load section.
const sectionIntro = `## Under load: phasegate beside a bare reverse proxy (issue: make bench)

The load harness (` + "`bench/load`" + `, our own bounded loop, no external tool)
runs every server under test in its own process against one upstream: the
upstream directly ("direct"), ` + "`httputil.ReverseProxy`" + ` with the same
keep-alive transport as phasegate ("bare proxy"), phasegate on a plain
route, and phasegate on an AI route (ai-proxy, ai-prompt-guard,
ai-content-moderation on request and response in realtime mode, metrics,
access log to a file). Ratios are to the bare proxy, measured in the same
run; "added" is the difference to direct.
`

// spliceDocs returns doc with the load section's results replaced by
// results, creating the section (at the end) or its results markers when
// missing. Nothing outside the load markers changes.
func spliceDocs(doc, results string) (string, error) {
	block := markResultsBegin + "\n" + strings.TrimSpace(results) + "\n" + markResultsEnd
	bi, ei := strings.Index(doc, markBegin), strings.Index(doc, markEnd)
	switch {
	case bi < 0 && ei < 0:
		sep := ""
		switch {
		case doc == "" || strings.HasSuffix(doc, "\n\n"):
		case strings.HasSuffix(doc, "\n"):
			sep = "\n"
		default:
			sep = "\n\n"
		}
		return doc + sep + markBegin + "\n" + sectionIntro + "\n" + block + "\n" + markEnd + "\n", nil
	case bi < 0 || ei < 0 || ei < bi:
		return "", fmt.Errorf("%s and %s: one is missing or they are out of order", markBegin, markEnd)
	}
	inner := doc[bi+len(markBegin) : ei]
	rb, re := strings.Index(inner, markResultsBegin), strings.Index(inner, markResultsEnd)
	switch {
	case rb < 0 && re < 0:
		intro := strings.TrimSpace(inner)
		if intro == "" {
			intro = strings.TrimSpace(sectionIntro)
		}
		inner = "\n" + intro + "\n\n" + block + "\n"
	case rb < 0 || re < 0 || re < rb:
		return "", fmt.Errorf("%s and %s: one is missing or they are out of order", markResultsBegin, markResultsEnd)
	default:
		inner = inner[:rb] + block + inner[re+len(markResultsEnd):]
	}
	return doc[:bi+len(markBegin)] + inner + doc[ei:], nil
}

// writeDocs rewrites the load section of the file at path.
func writeDocs(path, results string) error {
	doc, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out, err := spliceDocs(string(doc), results)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.WriteFile(path, []byte(out), 0o644)
}
