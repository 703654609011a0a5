package main

import (
	"math"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/phasegate/phasegate/bench/harness"
)

func ms(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }

func TestPercentile(t *testing.T) {
	var hundred []time.Duration
	for i := 1; i <= 100; i++ {
		hundred = append(hundred, ms(float64(i)))
	}
	for _, tc := range []struct {
		samples []time.Duration
		p       float64
		want    time.Duration
	}{
		{nil, 50, 0},
		{[]time.Duration{ms(7)}, 50, ms(7)},
		{[]time.Duration{ms(7)}, 99, ms(7)},
		{[]time.Duration{ms(1), ms(2)}, 50, ms(1)},
		{[]time.Duration{ms(1), ms(2)}, 51, ms(2)},
		{[]time.Duration{ms(1), ms(2), ms(3), ms(4)}, 50, ms(2)},
		{hundred, 50, ms(50)},
		{hundred, 99, ms(99)},
		{hundred, 100, ms(100)},
		{hundred, 0.001, ms(1)},
	} {
		if got := percentile(tc.samples, tc.p); got != tc.want {
			t.Errorf("percentile(%d samples, %v) = %v, want %v", len(tc.samples), tc.p, got, tc.want)
		}
	}
}

func TestSummarizeSorts(t *testing.T) {
	s := []time.Duration{ms(5), ms(1), ms(4), ms(2), ms(3)}
	l := summarize(s)
	if l.N != 5 || l.P50 != ms(3) || l.P99 != ms(5) || l.Max != ms(5) {
		t.Fatalf("summarize = %+v", l)
	}
	if (summarize(nil) != latencies{}) {
		t.Fatal("summarize(nil) is not zero")
	}
}

func TestRatio(t *testing.T) {
	if r := ratio(9, 10); r != 0.9 {
		t.Errorf("ratio(9, 10) = %v", r)
	}
	for _, r := range []float64{ratio(1, 0), ratio(math.NaN(), 1), ratio(1, math.NaN())} {
		if !math.IsNaN(r) {
			t.Errorf("want NaN, got %v", r)
		}
	}
	if got := fmtRatio(ratio(1, 0)); got != "—" {
		t.Errorf("fmtRatio(NaN) = %q", got)
	}
	if got := fmtRatio(0.8567); got != "0.86×" {
		t.Errorf("fmtRatio = %q", got)
	}
}

func TestFormat(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{fmtDur(3500 * time.Nanosecond), "3.5 µs"},
		{fmtDur(123456 * time.Nanosecond), "123 µs"},
		{fmtDur(ms(1.234)), "1.23 ms"},
		{fmtDur(ms(12.34)), "12.3 ms"},
		{fmtDur(1500 * time.Millisecond), "1.50 s"},
		{fmtDelta(-ms(0.25)), "−250 µs"},
		{fmtDelta(ms(0.25)), "+250 µs"},
		{fmtInt(1234567.4), "1,234,567"},
		{fmtInt(999), "999"},
		{fmtInt(-4321), "-4,321"},
		{fmtBytes(512), "512 B"},
		{fmtBytes(1536), "1.5 KiB"},
		{fmtBytes(20 << 10), "20 KiB"},
		{fmtBytes(3 << 20), "3.0 MiB"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestCostMeterResult(t *testing.T) {
	var nilMeter *costMeter
	if nilMeter.result() != nil {
		t.Error("nil meter has a result")
	}
	m := &costMeter{addr: "x", pid: 1, objects: 2000, bytes: 64000, cpu: 2 * time.Millisecond, reqs: 20}
	if c := m.result(); c.Objects != 100 || c.Bytes != 3200 || c.CPU != float64(100*time.Microsecond) {
		t.Errorf("result = %+v", c)
	}
	m = &costMeter{pid: 1, cpu: time.Millisecond, reqs: 10}
	if c := m.result(); !math.IsNaN(c.Objects) || c.CPU != float64(100*time.Microsecond) {
		t.Errorf("CPU only: result = %+v", c)
	}
}

func TestParseStatCPU(t *testing.T) {
	stat := "4242 (odd) name)) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 31 0 0 20 0 9 0 123 456 789"
	got, err := parseStatCPU(stat)
	if err != nil || got != 281*clockTick {
		t.Errorf("parseStatCPU = %v, %v; want %v", got, err, 281*clockTick)
	}
	if _, err := parseStatCPU("4242 (x) S 1 2"); err == nil {
		t.Error("short stat: no error")
	}
}

func TestSpliceDocs(t *testing.T) {
	doc := "# Benchmarks\n\nEarlier section.\n"
	out, err := spliceDocs(doc, "first results")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, doc+"\n"+markBegin+"\n## ") || !strings.HasSuffix(out, markEnd+"\n") {
		t.Fatalf("new section not appended after a blank line:\n%s", out)
	}
	if !strings.Contains(out, markResultsBegin+"\nfirst results\n"+markResultsEnd) {
		t.Fatalf("results block missing:\n%s", out)
	}
	// Hand-written prose around the results survives a rewrite, and so
	// does everything outside the section.
	edited := strings.Replace(out, markResultsEnd, markResultsEnd+"\n\nWhat the profile showed.", 1) + "\nAfter the section.\n"
	out2, err := spliceDocs(edited, "second results")
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(edited, "first results", "second results", 1)
	if out2 != want {
		t.Fatalf("rewrite:\n%s\nwant:\n%s", out2, want)
	}
	// Markers without results markers: the section's text is kept as its
	// intro.
	bare := "x\n" + markBegin + "\nMy intro.\n" + markEnd + "\ny\n"
	out3, err := spliceDocs(bare, "r")
	if err != nil {
		t.Fatal(err)
	}
	if out3 != "x\n"+markBegin+"\nMy intro.\n\n"+markResultsBegin+"\nr\n"+markResultsEnd+"\n"+markEnd+"\ny\n" {
		t.Fatalf("got:\n%s", out3)
	}
	if _, err := spliceDocs(markEnd+markBegin, "r"); err == nil {
		t.Error("markers out of order: no error")
	}
	if _, err := spliceDocs(markBegin+"\n", "r"); err == nil {
		t.Error("end marker missing: no error")
	}
}

func TestTableMarkdown(t *testing.T) {
	tb := &table{Header: []string{"metric", "a", "target"}}
	tb.add("req/s", "1,000", "≥ 0.90× ✔")
	got := tb.markdown()
	want := "" +
		"| metric | a     | target    |\n" +
		"|--------|------:|-----------|\n" +
		"| req/s  | 1,000 | ≥ 0.90× ✔ |\n"
	if got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}

// testSection is a section with fixed results and no load behind them.
func testSection(plainRPS, aiRPS float64, plainOpen, aiOpen time.Duration) *section {
	ts := []*target{{Name: "direct", Key: keyDirect}, {Name: "bare proxy", Key: keyBare}, {Name: "phasegate plain", Key: keyPlain}, {Name: "phasegate AI", Key: keyAI}}
	return &section{
		Title: "t", Upstream: "u", Workload: chatWorkload(), Targets: ts,
		Results: map[string]*measurement{
			keyDirect: {RPS: 20000, Open: latencies{P50: ms(0.3)}, N: 10},
			keyBare:   {RPS: 10000, Open: latencies{P50: ms(0.35)}, N: 10, Cost: &cost{Objects: 80, Bytes: 7000, CPU: 50e3}},
			keyPlain:  {RPS: plainRPS, Open: latencies{P50: plainOpen}, N: 10, Cost: &cost{Objects: 120, Bytes: 10000, CPU: 60e3}},
			keyAI:     {RPS: aiRPS, Open: latencies{P50: aiOpen}, N: 10, Cost: &cost{Objects: 300, Bytes: 30000, CPU: 100e3}},
		},
	}
}

func TestSectionChecks(t *testing.T) {
	r := &report{Settings: settings{concurrency: 32, rate: 200, rounds: 2}}
	tb := r.sectionTable(testSection(13000, 10500, ms(0.45), ms(0.6)))
	// plain 1.30× met (≥ 1.2×), AI 1.05× missed (≥ 1.1×); added latency
	// at the moderate rate is shown, not a target.
	got := verdicts(r)
	want := []string{"1.30× ✔", "1.05× ✘ MISSED"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("checks = %q, want %q", got, want)
	}
	if len(r.missed()) != 1 {
		t.Fatalf("missed = %v", r.missed())
	}
	md := tb.markdown()
	for _, s := range []string{"| plain ÷ bare |", "1.30×", "1.05×", "plain ≥ 1.20× ✔ · AI ≥ 1.10× ✘ MISSED", "+100 µs", "+150 µs", "1.50×", "1.20×", "0 errors ✔"} {
		if !strings.Contains(md, s) {
			t.Errorf("table lacks %q:\n%s", s, md)
		}
	}
}

// verdicts lists what each of r's checks got, and its verdict.
func verdicts(r *report) []string {
	var got []string
	for _, c := range r.Checks {
		got = append(got, c.Got+" "+verdict(c.OK))
	}
	return got
}

// Streams back to back: only the AI route has targets, on requests/s (at
// least the bare proxy's) and on CPU per content event (at most the bare
// proxy's).
func TestBurstSectionChecks(t *testing.T) {
	s := testSection(9000, 10500, ms(0.45), ms(0.6))
	s.Events = 20
	r := &report{Settings: settings{concurrency: 32, rate: 200, rounds: 2}}
	md := r.sectionTable(s).markdown()
	var got []string
	for _, c := range r.Checks {
		got = append(got, c.What+": "+c.Want+" "+c.Got+" "+verdict(c.OK))
	}
	want := []string{
		"AI route ÷ bare proxy, requests/s (POST /v1/chat/completions): ≥ 1.00× 1.05× ✔",
		"AI route ÷ bare proxy, server CPU per content event (POST /v1/chat/completions): ≤ 1.00× 2.00× ✘ MISSED",
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("checks = %q, want %q", got, want)
	}
	for _, sub := range []string{"server CPU per content event (20 per stream)", "AI ≤ 1.00× ✘ MISSED", "5.0 µs"} {
		if !strings.Contains(md, sub) {
			t.Errorf("table lacks %q:\n%s", sub, md)
		}
	}
}

// Streams: time to first token is checked against the bare proxy's, not
// against direct.
func TestStreamSectionTTFT(t *testing.T) {
	s := testSection(0, 0, 0, 0)
	s.Stream = true
	s.Results[keyDirect].TTFT.P50 = ms(0.2)
	s.Results[keyBare].TTFT.P50 = ms(0.5)
	s.Results[keyPlain].TTFT.P50 = ms(0.55)
	s.Results[keyAI].TTFT.P50 = ms(0.65)
	r := &report{Settings: settings{concurrency: 32, rate: 200, rounds: 2}}
	r.sectionTable(s)
	got := verdicts(r)
	want := []string{"+50 µs ✔", "+150 µs ✘ MISSED"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("checks = %q, want %q", got, want)
	}
}

func TestSectionWithoutAI(t *testing.T) {
	s := testSection(12500, 0, ms(0.45), 0)
	s.Targets = s.Targets[:3]
	delete(s.Results, keyAI)
	r := &report{Settings: settings{concurrency: 32, rate: 200}}
	md := r.sectionTable(s).markdown()
	if strings.Contains(md, "AI") {
		t.Errorf("a section without the AI target mentions it:\n%s", md)
	}
	if len(r.Checks) != 1 || len(r.missed()) != 0 {
		t.Errorf("checks = %+v", r.Checks)
	}
}

func TestManyPerStream(t *testing.T) {
	metrics := func(text string) harness.Metrics {
		m, err := harness.ParseMetrics(strings.NewReader(text))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	m := &manyResult{
		Opened: 100,
		Idle:   metrics("process_resident_memory_bytes 10485760\ngo_goroutines 10\n"),
		Open:   metrics("process_resident_memory_bytes 20971520\ngo_goroutines 410\n"),
	}
	if got := m.perStream(harness.MetricRSS); got != float64(10<<20)/100 {
		t.Errorf("RSS per stream = %v", got)
	}
	if got := m.perStream(harness.MetricGoroutines); got != 4 {
		t.Errorf("goroutines per stream = %v", got)
	}
	if (&manyResult{}).perStream(harness.MetricRSS) != 0 {
		t.Error("no streams: per stream is not 0")
	}
}

func TestReadStream(t *testing.T) {
	start := time.Now()
	ok := "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n" +
		": keep-alive\n\n" +
		"data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\r\n\r\n" +
		"data: [DONE]\n\n"
	if ttft, err := readStream(strings.NewReader(ok), start); err != nil || ttft <= 0 {
		t.Errorf("readStream = %v, %v", ttft, err)
	}
	// Split anywhere, it reads the same.
	if ttft, err := readStream(iotest.OneByteReader(strings.NewReader(ok)), start); err != nil || ttft <= 0 {
		t.Errorf("readStream, one byte at a time = %v, %v", ttft, err)
	}
	for name, bad := range map[string]string{
		"no [DONE]":     "data: {\"content\":\"Hi\"}\n\n",
		"no content":    "data: {\"content\":\"\"}\n\ndata: [DONE]\n\n",
		"cut mid-event": "data: {\"content\":\"Hi\"}\n\ndata: [DO",
	} {
		if _, err := readStream(strings.NewReader(bad), start); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	// The content callback fires once, at the first content event.
	n := 0
	done, err := readEvents(strings.NewReader(strings.Repeat("data: {\"content\":\"a\"}\n\n", 3)), func() { n++ })
	if done || err != nil || n != 1 {
		t.Errorf("readEvents: done %t, %v, %d calls", done, err, n)
	}
}

func TestParseFlags(t *testing.T) {
	o, err := parseFlags(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.concurrency != 32 || o.rate != 200 || o.duration != 5*time.Second || o.streams != 500 || !o.wants("stream") {
		t.Errorf("defaults = %+v", o)
	}
	o, err = parseFlags([]string{"-only", "plain, streams"}, nil)
	if err != nil || !o.wants("streams") || o.wants("chat") {
		t.Errorf("-only: %v %+v", err, o)
	}
	var sink strings.Builder
	for _, bad := range [][]string{{"-only", "nope"}, {"-rounds", "0"}, {"-streams", "10", "-stream-hold", "1s"}, {"extra"}} {
		if _, err := parseFlags(bad, &sink); err == nil {
			t.Errorf("parseFlags(%q): no error", bad)
		}
	}
}

func TestLateShare(t *testing.T) {
	s := &section{Results: map[string]*measurement{
		keyDirect: {Late: 5, Sends: 100},
		keyBare:   {Late: 20, Sends: 100},
		keyPlain:  {},
	}}
	if lo, hi := lateShare(s); lo != 0.05 || hi != 0.2 {
		t.Errorf("lateShare = %v, %v", lo, hi)
	}
	if lo, hi := lateShare(&section{}); lo != 0 || hi != 0 {
		t.Errorf("empty lateShare = %v, %v", lo, hi)
	}
}
