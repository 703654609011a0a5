package main

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/phasegate/phasegate/bench/harness"
)

var update = flag.Bool("update", false, "rewrite the golden reports in testdata/")

// goldenReport is a whole run's report with fixed results: plain, chat,
// a stream and streams back to back, and the many-streams table.
func goldenReport(t *testing.T) *report {
	t.Helper()
	metrics := func(text string) harness.Metrics {
		m, err := harness.ParseMetrics(strings.NewReader(text))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	plain := testSection(13000, 0, ms(0.45), 0)
	plain.Title, plain.Workload = "Plain HTTP: `GET /plain`", plainWorkload()
	plain.Targets = plain.Targets[:3]
	delete(plain.Results, keyAI)

	chat := testSection(12000, 10500, ms(0.45), ms(0.6))
	chat.Title = "Chat completion, not streamed"

	stream := testSection(0, 0, 0, 0)
	stream.Title, stream.Stream, stream.Workload = "Chat completion, streamed", true, streamWorkload(8, "1ms")
	for k, ttft := range map[string]float64{keyDirect: 0.2, keyBare: 0.5, keyPlain: 0.55, keyAI: 0.65} {
		stream.Results[k].TTFT = latencies{P50: ms(ttft), P99: ms(2 * ttft)}
		stream.Results[k].Total = latencies{P50: ms(10 + ttft), P99: ms(12 + ttft)}
	}

	burst := testSection(9000, 10500, ms(0.45), ms(0.6))
	burst.Title, burst.Events, burst.Concurrency, burst.Workload = "Chat completion, streamed: 20 content events back to back", 20, 64, burstWorkload(20)

	many := func(target string, rss string) *manyResult {
		return &manyResult{
			Target: target, Route: "phasegate's AI route", N: 500, Opened: 500, Hold: 20 * time.Second,
			Idle: metrics("process_resident_memory_bytes 10485760\ngo_goroutines 10\ngo_memstats_heap_alloc_bytes 1048576\n"),
			Open: metrics("process_resident_memory_bytes " + rss + "\ngo_goroutines 2010\ngo_memstats_heap_alloc_bytes 9437184\n"),
		}
	}
	pgMany := many("phasegate AI", "44040192")
	pgMany.HasGauges, pgMany.GaugesZero, pgMany.ZeroAfter = true, true, 230*time.Millisecond
	pgMany.Open = metrics("process_resident_memory_bytes 44040192\ngo_goroutines 2010\ngo_memstats_heap_alloc_bytes 9437184\n" +
		"phasegate_http_active_requests 500\nphasegate_llm_active_connections 500\n")
	pgMany.Closed = metrics("phasegate_http_active_requests 0\nphasegate_llm_active_connections 0\n")

	return &report{
		Started:  time.Date(2026, 12, 1, 4, 22, 0, 0, time.UTC),
		Elapsed:  171 * time.Second,
		Command:  "go run ./bench/load",
		Machine:  "2 cores Test CPU, Linux 6.0, go1.26",
		Settings: settings{duration: 5 * time.Second, warmup: time.Second, concurrency: 32, rate: 200, streamRate: 100, chunks: 8, chunkDelay: time.Millisecond, rounds: 4},
		Sections: []*section{plain, chat, stream, burst},
		Many:     []*manyResult{many("bare proxy", "36700160"), pgMany},
		ManyNote: "500 streams (the default run's count); the issue's 2,000 is `-streams 2000`.",
		Pin:      pinPlan{on: true, upstreamCPU: loadCPU},
		BarePool: true,
	}
}

// checkGolden compares got with testdata/name, or rewrites it with -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("the report differs from %s (go test -run %s -update rewrites it):\n%s", path, t.Name(), got)
	}
}

// A whole report renders as its golden file, byte for byte.
func TestReportGolden(t *testing.T) {
	checkGolden(t, "report.md", goldenReport(t).body())
}

// withFloor adds the net/http floor to every section of r, after the bare
// proxy, at floorRPS requests/s and 40 µs of CPU per request.
func withFloor(r *report, floorRPS float64) {
	r.Floor = true
	for _, s := range r.Sections {
		i := slices.IndexFunc(s.Targets, func(t *target) bool { return t.Key == keyBare })
		s.Targets = slices.Insert(s.Targets, i+1, &target{Name: "net/http floor", Key: keyFloor})
		bare := *s.Results[keyBare]
		m := &bare
		m.RPS = floorRPS
		m.Cost = &cost{Objects: 40, Bytes: 4096, CPU: 40e3}
		m.TTFT.P50 -= ms(0.1)
		s.Results[keyFloor] = m
	}
}

// The floor gets a value and a "floor ÷ bare" column in every section and
// a line in the run's facts, and no check: the run's verdicts are those
// of the same run without it.
func TestReportGoldenFloor(t *testing.T) {
	plain := goldenReport(t)
	plain.body()
	r := goldenReport(t)
	withFloor(r, 12500)
	got := r.body()
	checkGolden(t, "report-floor.md", got)
	if !slices.Equal(r.Checks, plain.Checks) {
		t.Errorf("checks with the floor:\n%+v\nwithout:\n%+v", r.Checks, plain.Checks)
	}
	for _, sub := range []string{
		"| metric                                | direct  | bare proxy | net/http floor | phasegate plain | floor ÷ bare | plain ÷ bare | target          |",
		"12,500 |          13,000 |        1.25× |        1.30× | plain ≥ 1.20× ✔ |",
		"- net/http floor: the least a correct HTTP/1.1 reverse proxy",
	} {
		if !strings.Contains(got, sub) {
			t.Errorf("report lacks %q", sub)
		}
	}
	if strings.Contains(got, "floor route") {
		t.Error("a check names the floor")
	}
}
