package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/phasegate/phasegate/bench/harness"
)

// procs are every process the harness started, stopped at its end, on
// errors and on Ctrl-C.
var procs harness.Group

// serverReady is the message of the Ready line the harness's own server
// modes print.
const serverReady = "bench server serving"

// startSelf re-executes the harness binary in a server mode (args select
// it) and waits for its Ready line.
// With -pin it runs on cpu.
func startSelf(ctx context.Context, name, dir string, cpu int, args ...string) (*harness.Proc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return procs.Start(ctx, pin.spec(harness.Spec{Name: name, Dir: dir, Path: exe, Args: args, Ready: serverReady}, cpu))
}

// pprofOverlay is added to cmd/phasegate, through go build -overlay and
// never on disk in the repository, for -cpuprofile-phasegate: a pprof
// listener on $PHASEGATE_BENCH_PPROF that announces its address on stderr.
const pprofOverlay = `package main

import (
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
)

func init() {
	addr := os.Getenv("PHASEGATE_BENCH_PPROF")
	if addr == "" {
		return
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench pprof:", err)
		return
	}
	fmt.Fprintf(os.Stderr, "{\"pprof\":%q}\n", ln.Addr().String())
	go func() { _ = http.Serve(ln, nil) }()
}
`

// buildPhasegate builds ./cmd/phasegate of the module at root into dir.
// overlay, when set, is a go build -overlay file (to measure a candidate
// change without touching the tree; relative paths: keys to the module
// root, values to the file); withPprof adds the pprof listener to it.
func buildPhasegate(ctx context.Context, root, dir, overlay string, withPprof bool) (string, error) {
	replace := map[string]string{}
	if overlay != "" {
		data, err := os.ReadFile(overlay)
		if err != nil {
			return "", err
		}
		var ov struct{ Replace map[string]string }
		if err := json.Unmarshal(data, &ov); err != nil {
			return "", fmt.Errorf("%s: %w", overlay, err)
		}
		for k, v := range ov.Replace {
			if !filepath.IsAbs(k) {
				k = filepath.Join(root, k)
			}
			if v != "" && !filepath.IsAbs(v) {
				v = filepath.Join(filepath.Dir(overlay), v)
			}
			replace[k] = v
		}
	}
	if withPprof {
		src := filepath.Join(dir, "zz_bench_pprof.go")
		if err := os.WriteFile(src, []byte(pprofOverlay), 0o644); err != nil {
			return "", err
		}
		replace[filepath.Join(root, "cmd", "phasegate", "zz_bench_pprof.go")] = src
	}
	return harness.Build(ctx, root, dir, replace)
}

// phasegateProc is a running phasegate and, for a profiling build, its
// pprof address.
type phasegateProc struct {
	*harness.Proc
	pprof string
}

// startPhasegate runs bin with config, stdout (the JSON log, access log
// included) to a file in dir, and waits for the "phasegate serving" line
// that gives its real addresses; with -pin on the servers' CPU. With pprof, the profiling build's pprof
// listener is enabled on a free port.
func startPhasegate(ctx context.Context, name, bin, config, dir string, pprof bool) (*phasegateProc, error) {
	s := harness.Spec{Name: name, Dir: dir, Path: bin, Args: []string{"run", "-c", config}, Ready: harness.PhasegateReady}
	if pprof {
		s.Env = []string{"PHASEGATE_BENCH_PPROF=127.0.0.1:0"}
	}
	p, err := procs.Start(ctx, pin.spec(s, serverCPU))
	if err != nil {
		return nil, err
	}
	pg := &phasegateProc{Proc: p}
	if pprof {
		line, err := p.WaitStderr(ctx, `"pprof":`, 20*time.Second)
		if err != nil {
			return nil, err
		}
		var l struct{ Pprof string }
		if err := json.Unmarshal(line, &l); err != nil || l.Pprof == "" {
			return nil, fmt.Errorf("%s: no pprof address in %q", name, line)
		}
		pg.pprof = l.Pprof
	}
	return pg, nil
}
