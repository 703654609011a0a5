// Command phasegate is the phasegate gateway: an HTTP and LLM gateway whose
// every request is a state machine (see docs/lifecycle.md).
//
//	phasegate run [-c FILE]                        serve (the embedded demo without -c)
//	phasegate validate -c FILE                     check a config; exit 2 with one line per problem
//	phasegate lifecycle [--format mermaid|dot]     print the lifecycle diagram
//	phasegate mock-llm [--listen ADDR]             a standalone OpenAI-compatible mock upstream
//	phasegate version                              version and Go version
//
// run reloads its config on SIGHUP (an invalid file is rejected and the old
// config keeps serving) and drains in-flight requests on SIGTERM or SIGINT
// for up to shutdown_timeout before exiting 0.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"

	"github.com/phasegate/phasegate/fsm"
	"github.com/phasegate/phasegate/gateway"
	"github.com/phasegate/phasegate/internal/logbuf"
	"github.com/phasegate/phasegate/mockllm"
	"github.com/phasegate/phasegate/plugins"
)

// version is set at build time with -ldflags "-X main.version=…"; otherwise
// the module version from the build info is used.
var version = ""

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2 // also: invalid config
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage:
  phasegate run [-c FILE]                     serve (the embedded demo config without -c)
  phasegate validate -c FILE                  check a config file
  phasegate lifecycle [--format mermaid|dot]  print the lifecycle diagram
  phasegate mock-llm [--listen ADDR]          run the OpenAI-compatible mock LLM
  phasegate version                           print the version
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		return cmdRun(ctx, rest, stdout, stderr)
	case "validate":
		return cmdValidate(rest, stdout, stderr)
	case "lifecycle":
		return cmdLifecycle(rest, stdout, stderr)
	case "mock-llm":
		return cmdMockLLM(ctx, rest, stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintf(stdout, "phasegate %s (%s %s/%s)\n", versionString(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return exitOK
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "phasegate: unknown command %q\n%s", cmd, usage)
	return exitUsage
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("phasegate "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// loadConfig reads file, or the embedded demo when file is "".
func loadConfig(file string) (*gateway.Config, error) {
	if file == "" {
		return gateway.LoadConfig(gateway.DemoConfigName, gateway.DemoConfig, plugins.Builtins(), nil)
	}
	return gateway.LoadFile(file, plugins.Builtins())
}

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("validate", stderr)
	file := fs.String("c", "", "config file to check (required)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if *file == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: phasegate validate -c FILE")
		return exitUsage
	}
	cfg, err := loadConfig(*file)
	if err == nil {
		err = gateway.Validate(cfg, plugins.Builtins())
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	fmt.Fprintf(stdout, "%s: ok\n", *file)
	return exitOK
}

func cmdLifecycle(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("lifecycle", stderr)
	format := fs.String("format", "mermaid", "diagram format: mermaid or dot")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	d, ok := fsm.Diagram(fsm.Format(*format))
	if !ok {
		fmt.Fprintf(stderr, "phasegate lifecycle: unknown format %q (use mermaid or dot)\n", *format)
		return exitUsage
	}
	fmt.Fprint(stdout, d)
	return exitOK
}

func cmdMockLLM(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("mock-llm", stderr)
	listen := fs.String("listen", gateway.DefaultMockLLMListen, "address to listen on")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(stdout, "phasegate mock LLM on http://%s (POST /v1/chat/completions, /v1/moderations)\n", *listen)
	if err := mockllm.ListenAndServe(ctx, *listen, mockllm.Options{}); err != nil {
		fmt.Fprintln(stderr, "phasegate mock-llm:", err)
		return exitFailure
	}
	return exitOK
}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("run", stderr)
	file := fs.String("c", "", "config file (default: the embedded demo config)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	// The access log is one line per request: batch the writes (flushed
	// every 100 ms, at once for warnings, and on exit).
	out := logbuf.New(stdout, 64<<10, 100*time.Millisecond)
	defer out.Close()
	log := zerolog.New(out).With().Timestamp().Logger()
	cfg, err := loadConfig(*file)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	mock, err := startMock(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "phasegate:", err)
		return exitFailure
	}
	if mock != nil {
		// Closes after shutdown has drained the data plane, which may still
		// be streaming from the mock.
		defer mock.Close()
	}
	// The binary's registry also carries the Go runtime and process
	// collectors (goroutines, heap, RSS), which the soak test and operators
	// read; an embedding program decides that for itself.
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	g, err := gateway.New(cfg, gateway.Options{Logger: &log, Registerer: reg, Plugins: plugins.Builtins(), Version: versionString()})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	// Signals are subscribed before listening, so a signal that arrives
	// right after the listeners open is never lost.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	if err := g.Start(); err != nil {
		fmt.Fprintln(stderr, "phasegate:", err)
		return exitFailure
	}
	logTracing(log, cfg)
	for {
		select {
		case err := <-g.Err():
			log.Error().Err(err).Msg("listener failed")
			shutdown(g, cfg, log)
			return exitFailure
		case <-ctx.Done():
			return shutdown(g, g.Config(), log)
		case sig := <-sigs:
			if sig != syscall.SIGHUP {
				log.Info().Str("signal", sig.String()).Msg("draining in-flight requests")
				return shutdown(g, g.Config(), log)
			}
			reload(g, *file, log)
		}
	}
}

// tracingHint says how to send traces to a collector (docs/tracing.md).
const tracingHint = `tracing is off: to export OpenTelemetry traces, add "tracing: { otlp: { endpoint: 127.0.0.1:4317 } }" to a config file and run with -c FILE (or "tracing: {}" and OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4317); see docs/tracing.md`

// logTracing logs whether spans are exported, and how to turn them on.
func logTracing(log zerolog.Logger, cfg *gateway.Config) {
	if cfg.Tracing == nil {
		log.Info().Msg(tracingHint)
		return
	}
	log.Info().Str("endpoint", cmp.Or(cfg.Tracing.OTLP.Endpoint, "from OTEL_EXPORTER_OTLP_* or the default")).
		Msg("tracing on: spans go to the OTLP collector")
}

// startMock starts the mock LLM when cfg has a mock_llm block (the demo
// does), so its routes have an upstream before the first request; nil
// when none is configured.
func startMock(cfg *gateway.Config) (*mockllm.Server, error) {
	if cfg.MockLLM == nil {
		return nil, nil
	}
	mock, err := mockllm.Start(cfg.MockLLM.Listen, mockllm.Options{ModerationWords: cfg.MockLLM.ModerationWords})
	if err != nil {
		return nil, fmt.Errorf("mock LLM: %w", err)
	}
	return mock, nil
}

// reload applies the config file again; a bad file changes nothing.
func reload(g *gateway.Gateway, file string, log zerolog.Logger) {
	cfg, err := loadConfig(file)
	if err == nil {
		err = g.Reload(cfg)
	}
	if err != nil {
		log.Error().Str("file", file).Str("problems", err.Error()).Msg("reload rejected; the previous config keeps serving")
		return
	}
	log.Info().Str("file", file).Int("routes", len(cfg.Routes)).Msg("config reloaded")
}

func shutdown(g *gateway.Gateway, cfg *gateway.Config, log zerolog.Logger) int {
	ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	err := g.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		log.Warn().Dur("shutdown_timeout", cfg.ShutdownTimeout).Msg("requests still in flight at the shutdown timeout were cut")
	} else if err != nil {
		log.Error().Err(err).Msg("shutdown")
	}
	log.Info().Msg("phasegate stopped")
	return exitOK
}
