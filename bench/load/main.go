// Command load is phasegate's load benchmark harness (make bench): it
// measures, in one run and against one upstream, the upstream directly, a
// bare httputil.ReverseProxy, phasegate on a plain route and phasegate on
// an AI route (ai-proxy, ai-prompt-guard, ai-content-moderation, metrics,
// access log), and reports each figure beside the bare proxy's, with the
// issue's targets:
//
//   - requests/s at a fixed concurrency (closed loop): the plain route at
//     least 1.2× the bare proxy on GET and on a chat completion, the AI
//     route at least 1.1× on a chat completion and 1.0× on a stream whose
//     events come back to back, with server CPU per content event no more
//     than the bare proxy's;
//   - p50 latency added to the direct p50 at a fixed moderate rate (open
//     loop);
//   - for streams, time to first token: at most 0.1 ms (p50) added over
//     the bare proxy's; and total time per stream;
//   - CPU time (from /proc, steadier than throughput on a shared machine),
//     heap allocations and heap bytes per request of each server;
//   - the RSS and goroutines per stream with many slow streams open at
//     once (-streams), and phasegate's active gauges back at 0 after they
//     close.
//
// Usage, from the module root:
//
//	go run ./bench/load                               # defaults, under 3 minutes
//	go run ./bench/load -streams 2000 -write-docs     # the 2,000 streams; results into docs/benchmarks.md
//	go run ./bench/load -only chat -cpuprofile-phasegate /tmp/prof
//	go run ./bench/load -only plain -ab-overlay fix/overlay.json
//
// -cpuprofile-phasegate DIR profiles phasegate and the bare proxy (CPU and
// allocations) under each workload after the measurements, with a pprof
// listener that a go build -overlay adds to the phasegate binary for the
// run only: nothing in the tree serves pprof. -ab-overlay FILE measures a
// second phasegate built with a go build -overlay (a candidate fix, kept
// outside the tree) as "B" columns in the same rounds, which is how a
// before/after is recorded on a noisy machine; -phasegate-overlay FILE
// replaces the build measured instead.
//
// -pin (default on with two or more CPUs) measures the way issue 12's
// figures were taken: the load generator on CPU 0 and every server on CPU
// 1, each with GOMAXPROCS=1 (the harness pins its own threads with
// sched_setaffinity and starts the servers under taskset). The upstream
// goes beside the load generator (-pin-upstream load), so that the server
// measured, one at a time, has its core to itself; -pin-upstream server
// puts it on CPU 1 instead.
//
// -floor adds a target "net/http floor": the least a correct HTTP/1.1
// reverse proxy on net/http's server and http.Transport does (floor.go),
// how fast any proxy on them can go. It gets a value and a "floor ÷ bare"
// column in the plain and chat sections and in both stream sections, and
// no target of its own.
//
// Every server runs in its own process so that none shares a Go runtime
// with the load generator: the upstream and the bare and floor proxies
// are this binary re-executed in a server mode (-serve-upstream,
// -serve-bare-proxy, -serve-floor-proxy), and phasegate is ./cmd/phasegate
// built once into a temporary directory and run on generated configs on
// port 0. The processes are torn down at the end, on errors and on Ctrl-C
// (and die with the harness if it is killed).
//
// The machine is assumed shared and noisy (pinning keeps the harness off
// the server's core, not other work): targets are measured in
// interleaved rounds and compared within the run; ratios matter, absolute
// figures do not. A missed target is printed as MISSED but the exit status
// stays 0: this is a measurement, not a test. Harness errors exit 1: a
// server failing stops the run; failed requests are counted, shown in the
// tables (and in the docs with -write-docs) and make the exit status 1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/phasegate/phasegate/bench/harness"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// options are the command-line flags.
type options struct {
	settings
	streams     int
	streamHold  time.Duration
	burstChunks int
	// burstConcurrency is the back-to-back streams' closed-loop concurrency.
	burstConcurrency int
	writeDocs        bool
	docs             string
	profileDir       string
	keep             bool
	only             string
	barePool         bool
	overlay          string
	abOverlay        string
	accessLog        bool
	pinUpstream      string
	// floor adds the net/http floor proxy as a target.
	floor bool

	// Server modes of the re-executed binary.
	serveUpstream bool
	serveBare     bool
	serveFloor    bool
	upstream      string
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "measuring time per target for each loop (closed, open, streams)")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "warm-up per target before each loop")
	fs.IntVar(&o.rounds, "rounds", 4, "split each measurement into this many rounds, interleaving the targets")
	fs.IntVar(&o.concurrency, "concurrency", 32, "closed loop: concurrent requests")
	fs.Float64Var(&o.rate, "rate", 200, "open loop: requests per second (a moderate rate)")
	fs.Float64Var(&o.streamRate, "stream-rate", 100, "streams started per second")
	fs.IntVar(&o.chunks, "stream-chunks", 8, "content events per stream (X-Mock-Chunks)")
	fs.DurationVar(&o.chunkDelay, "chunk-delay", time.Millisecond, "delay before each content event (X-Mock-Chunk-Delay)")
	fs.IntVar(&o.burstConcurrency, "burst-concurrency", 64, "back-to-back streams: concurrent streams in the closed loop")
	fs.IntVar(&o.burstChunks, "burst-chunks", 20, "back-to-back streams: content events per stream, sent with no delay (X-Mock-Chunks)")
	fs.IntVar(&o.streams, "streams", 500, "many-streams mode: slow streams held open at once (0: skip); the issue asks for 2000")
	fs.DurationVar(&o.streamHold, "stream-hold", 20*time.Second, "many-streams mode: how long each slow stream lasts")
	fs.BoolVar(&o.writeDocs, "write-docs", false, "rewrite the load section of -docs with this run's results")
	fs.StringVar(&o.docs, "docs", "docs/benchmarks.md", "the benchmarks document (relative to the module root, or absolute)")
	fs.StringVar(&o.profileDir, "cpuprofile-phasegate", "", "after measuring, profile phasegate (CPU and allocations) under each workload into this directory")
	fs.BoolVar(&o.barePool, "bare-buffer-pool", true, "give the bare proxy a pool of copy buffers, as phasegate pools its own (false: ReverseProxy's default, 32 KiB allocated per request)")
	fs.StringVar(&o.overlay, "phasegate-overlay", "", "build phasegate with this go build -overlay file, to measure a candidate change without editing the tree (relative paths: keys to the module root, values to the file)")
	fs.StringVar(&o.abOverlay, "ab-overlay", "", "also run a second phasegate built with this go build -overlay file, as \"B\" targets in the same rounds: a before/after comparison on a noisy machine")
	fs.BoolVar(&o.accessLog, "phasegate-access-log", true, "phasegate's access log (to a file); false to measure what it costs")
	fs.BoolVar(&pin.on, "pin", pinDefault(), "pin the load generator to CPU 0 and every server to CPU 1, each with GOMAXPROCS=1 (taskset; default on with 2 or more CPUs)")
	fs.StringVar(&o.pinUpstream, "pin-upstream", "load", "with -pin, the bench upstream's core: load (CPU 0, beside the load generator) or server (CPU 1, beside the server measured)")
	fs.BoolVar(&o.floor, "floor", false, "also measure the net/http floor: the least a correct reverse proxy on net/http's server and http.Transport does, as target \"net/http floor\"")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (configs, phasegate's logs)")
	fs.StringVar(&o.only, "only", "", "comma-separated sections to run: plain, chat, stream, burst, streams (default all)")
	fs.BoolVar(&o.serveUpstream, "serve-upstream", false, "internal: run as the bench upstream")
	fs.BoolVar(&o.serveBare, "serve-bare-proxy", false, "internal: run as the bare reverse proxy to -upstream")
	fs.BoolVar(&o.serveFloor, "serve-floor-proxy", false, "internal: run as the net/http floor proxy to -upstream")
	fs.StringVar(&o.upstream, "upstream", "", "internal: the bare and floor proxies' upstream, host:port")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	switch {
	case fs.NArg() > 0:
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	case o.duration <= 0 || o.warmup < 0 || o.rounds < 1 || o.concurrency < 1 || o.rate <= 0 || o.streamRate <= 0 || o.chunks < 1 || o.burstChunks < 1 || o.burstConcurrency < 1 || o.chunkDelay < 0:
		return nil, errors.New("-duration, -rounds, -concurrency, -rate, -stream-rate, -stream-chunks, -burst-chunks and -burst-concurrency must be positive, -warmup and -chunk-delay not negative")
	case o.streams < 0 || (o.streams > 0 && o.streamHold < 4*time.Second):
		return nil, errors.New("-streams must not be negative and -stream-hold at least 4s")
	}
	up, err := parsePinUpstream(o.pinUpstream)
	if err != nil {
		return nil, err
	}
	pin.upstreamCPU = up
	for s := range strings.SplitSeq(o.only, ",") {
		switch strings.TrimSpace(s) {
		case "", "plain", "chat", "stream", "burst", "streams":
		default:
			return nil, fmt.Errorf("-only: unknown section %q (plain, chat, stream, burst, streams)", s)
		}
	}
	return o, nil
}

// wants reports whether section name is to run.
func (o *options) wants(name string) bool {
	if o.only == "" {
		return true
	}
	for s := range strings.SplitSeq(o.only, ",") {
		if strings.TrimSpace(s) == name {
			return true
		}
	}
	return false
}

func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "load:", err)
		}
		return exitUsage
	}
	switch {
	case o.serveUpstream:
		err = serveUpstream()
	case o.serveBare:
		err = serveBareProxy(o.upstream, o.barePool)
	case o.serveFloor:
		err = serveFloorProxy(o.upstream)
	default:
		return runBench(o, args, stdout, stderr)
	}
	if err != nil {
		fmt.Fprintln(stderr, "load:", err)
		return exitError
	}
	return exitOK
}

// runBench runs the whole benchmark and tears every process down.
func runBench(o *options, args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	defer procs.StopAll(8 * time.Second)
	if err := pin.setup(); err != nil {
		fmt.Fprintln(stderr, "load:", err)
		return exitError
	}
	start := time.Now()
	progress := func(msg string) {
		fmt.Fprintf(stderr, "[%6.1fs] %s\n", time.Since(start).Seconds(), msg)
	}
	r, err := measureAll(ctx, o, progress)
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(stderr, "load: interrupted; servers stopped")
		} else {
			fmt.Fprintln(stderr, "load:", err)
		}
		return exitError
	}
	r.Started = start
	r.Elapsed = time.Since(start)
	r.Command = "go run ./bench/load"
	if len(args) > 0 {
		r.Command += " " + strings.Join(args, " ")
	}
	r.Machine = machine()
	body := r.body()
	fmt.Fprintln(stdout)
	fmt.Fprint(stdout, body)

	errs := 0
	for _, s := range r.Sections {
		errs += r.errorsIn(s)
		for _, t := range s.Targets {
			if m := s.Results[t.Key]; m != nil && m.Errors > 0 {
				fmt.Fprintf(stderr, "load: %s, %s: %d failed requests, e.g. %s\n", s.Title, t.Name, m.Errors, strings.Join(m.ErrMsg, "; "))
			}
		}
	}
	for _, m := range r.Many {
		errs += m.Errors
		if m.Errors > 0 {
			fmt.Fprintf(stderr, "load: many streams, %s: %d failed streams, e.g. %s\n", m.Target, m.Errors, strings.Join(m.ErrMsg, "; "))
		}
	}
	if missed := r.missed(); len(missed) > 0 {
		fmt.Fprintf(stdout, "\nMISSED:\n")
		for _, c := range missed {
			fmt.Fprintf(stdout, "  MISSED  %s: want %s, got %s\n", c.What, c.Want, c.Got)
		}
	}
	if o.writeDocs {
		path := o.docs
		var err error
		if !filepath.IsAbs(path) {
			var root string
			root, err = harness.ModuleRoot(ctx)
			path = filepath.Join(root, path)
		}
		if err == nil {
			err = writeDocs(path, body)
		}
		if err != nil {
			fmt.Fprintln(stderr, "load: write docs:", err)
			return exitError
		}
		fmt.Fprintf(stderr, "load: wrote the results into %s\n", o.docs)
	}
	if errs > 0 {
		fmt.Fprintf(stderr, "load: %d failed requests (listed above and in the tables): exit status 1\n", errs)
		return exitError
	}
	return exitOK
}
