// Command soak runs phasegate's soak test (package bench/soak) and prints
// its report; it exits 1 when a check fails and 2 when the soak cannot run.
//
//	go run ./bench/soak/cmd/soak [-duration 30s] [-concurrency 64] [-seed N] [-binary PATH]
//
// Run it from inside the module: without -binary it builds ./cmd/phasegate.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/phasegate/phasegate/bench/soak"
)

func main() {
	var o soak.Options
	flag.DurationVar(&o.Duration, "duration", 30*time.Second, "how long the load runs, after the warm-up")
	flag.IntVar(&o.Concurrency, "concurrency", 64, "concurrent clients, an eighth of them hostile")
	flag.Uint64Var(&o.Seed, "seed", 0, "seed of the scenario choices (0: random)")
	flag.StringVar(&o.Binary, "binary", "", "phasegate binary to run (default: build ./cmd/phasegate)")
	flag.StringVar(&o.WorkDir, "workdir", "", "directory for the binary, config and log (default: a temporary one, kept only on failure)")
	rss := flag.Int64("rss-bound-mib", soak.DefaultRSSBound>>20, "largest accepted RSS growth, MiB")
	flag.IntVar(&o.GoroutineTolerance, "goroutine-tolerance", soak.DefaultGoroutineTolerance, "goroutines accepted above the baseline at the end")
	flag.Parse()
	o.RSSBound = *rss << 20
	o.Progress = os.Stderr

	// SIGINT/SIGTERM cancel the run; Run still ends phasegate.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := soak.Run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(2)
	}
	rep.Print(os.Stdout)
	if !rep.OK() {
		os.Exit(1)
	}
}
