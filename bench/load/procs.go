package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a server under test running in its own process.
type proc struct {
	name   string
	cmd    *exec.Cmd
	data   string // data-plane address, host:port
	admin  string // admin (metrics) address, host:port; "" when none
	pprof  string // pprof address of a profiling phasegate build
	stdout string // file receiving stdout, when redirected to a file
	stderr string // file receiving stderr, when redirected to a file
	exited chan struct{}
	err    error // Wait's result, read after exited is closed

	stopOnce sync.Once
}

// procs are every process the harness started, for teardown.
var procs struct {
	sync.Mutex
	list []*proc
}

// newCmd returns a command for a child that is torn down with the harness:
// it gets its own process group, so that a terminal's Ctrl-C reaches only
// the harness, which stops children in order, and SIGKILL when the harness
// dies without tearing down (Pdeathsig).
func newCmd(path string, args ...string) *exec.Cmd {
	cmd := exec.Command(path, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Env = os.Environ()
	return cmd
}

// launch starts cmd and registers it for teardown.
func launch(name string, cmd *exec.Cmd) (*proc, error) {
	p := &proc{name: name, cmd: cmd, exited: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	procs.Lock()
	procs.list = append(procs.list, p)
	procs.Unlock()
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// stop ends p: SIGTERM, then SIGKILL after grace. It waits for the exit.
func (p *proc) stop(grace time.Duration) {
	p.stopOnce.Do(func() {
		select {
		case <-p.exited:
			return
		default:
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(grace):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
}

// alive reports an error when p has exited.
func (p *proc) alive() error {
	select {
	case <-p.exited:
		return fmt.Errorf("%s exited unexpectedly (%v)%s", p.name, p.err, p.tail())
	default:
		return nil
	}
}

// tail returns the last lines of p's stderr and stdout files, for error
// messages.
func (p *proc) tail() string {
	var b strings.Builder
	for _, f := range []string{p.stderr, p.stdout} {
		if f == "" {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil || len(data) == 0 {
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		lines = lines[max(0, len(lines)-8):]
		fmt.Fprintf(&b, "\n  %s (%s):\n    %s", p.name, filepath.Base(f), strings.Join(lines, "\n    "))
	}
	return b.String()
}

// stopAll stops every process started, newest first.
func stopAll() {
	procs.Lock()
	list := procs.list
	procs.list = nil
	procs.Unlock()
	var wg sync.WaitGroup
	for i := len(list) - 1; i >= 0; i-- {
		wg.Go(func() { list[i].stop(8 * time.Second) })
	}
	wg.Wait()
}

// readyLine is what the harness's own server modes print on stdout once
// they listen.
type readyLine struct {
	Listen string `json:"listen"`
	Admin  string `json:"admin"`
}

// startSelf re-executes the harness binary in a server mode (args select
// it) and waits for its ready line.
func startSelf(ctx context.Context, name, dir string, args ...string) (*proc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := newCmd(exe, args...)
	stderr := filepath.Join(dir, name+".stderr")
	ef, err := os.Create(stderr)
	if err != nil {
		return nil, err
	}
	defer ef.Close()
	cmd.Stderr = ef
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p, err := launch(name, cmd)
	if err != nil {
		return nil, err
	}
	p.stderr = stderr
	lines := make(chan string, 1)
	go func() {
		br := bufio.NewReader(out)
		line, _ := br.ReadString('\n')
		lines <- line
		_, _ = io.Copy(io.Discard, br)
	}()
	select {
	case line := <-lines:
		var r readyLine
		if err := json.Unmarshal([]byte(line), &r); err != nil || r.Listen == "" {
			return nil, fmt.Errorf("%s: no ready line (got %q)%s", name, line, p.tail())
		}
		p.data, p.admin = r.Listen, r.Admin
		return p, nil
	case <-time.After(15 * time.Second):
		return nil, fmt.Errorf("%s: not ready after 15s%s", name, p.tail())
	case <-ctx.Done():
		return nil, ctx.Err()
	}
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
// change without touching the tree); withPprof adds the pprof listener to
// it.
func buildPhasegate(ctx context.Context, root, dir, overlay string, withPprof bool) (string, error) {
	bin := filepath.Join(dir, "phasegate")
	args := []string{"build", "-o", bin}
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
	if len(replace) > 0 {
		ov, _ := json.Marshal(map[string]map[string]string{"Replace": replace})
		ovFile := filepath.Join(dir, "overlay.json")
		if err := os.WriteFile(ovFile, ov, 0o644); err != nil {
			return "", err
		}
		args = append(args, "-overlay", ovFile)
	}
	args = append(args, "./cmd/phasegate")
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/phasegate: %w\n%s", err, out)
	}
	return bin, nil
}

// moduleRoot is the directory of the main module's go.mod.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("run the harness inside the phasegate module (go run ./bench/load)")
	}
	return filepath.Dir(gomod), nil
}

// validatePhasegate runs phasegate validate on a config file and returns
// its problems, nil when the config is valid.
func validatePhasegate(ctx context.Context, bin, config string) error {
	out, err := exec.CommandContext(ctx, bin, "validate", "-c", config).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s", bytes.TrimSpace(out))
	}
	return nil
}

// startPhasegate runs bin with config, stdout (the JSON log, access log
// included) appended to a file, and waits for the "phasegate serving" line
// that gives its real addresses. With pprof, the profiling build's pprof
// listener is enabled on a free port.
func startPhasegate(ctx context.Context, name, bin, config, dir string, pprof bool) (*proc, error) {
	cmd := newCmd(bin, "run", "-c", config)
	stdout := filepath.Join(dir, name+".log")
	stderr := filepath.Join(dir, name+".stderr")
	// O_APPEND, so that truncating the file between sections keeps it small
	// while phasegate keeps writing at its end.
	of, err := os.OpenFile(stdout, os.O_CREATE|os.O_WRONLY|os.O_TRUNC|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer of.Close()
	ef, err := os.Create(stderr)
	if err != nil {
		return nil, err
	}
	defer ef.Close()
	cmd.Stdout, cmd.Stderr = of, ef
	if pprof {
		cmd.Env = append(cmd.Env, "PHASEGATE_BENCH_PPROF=127.0.0.1:0")
	}
	p, err := launch(name, cmd)
	if err != nil {
		return nil, err
	}
	p.stdout, p.stderr = stdout, stderr
	deadline := time.Now().Add(20 * time.Second)
	for {
		if err := p.alive(); err != nil {
			return nil, err
		}
		if p.data == "" {
			p.data, p.admin = servingAddrs(stdout)
		}
		if pprof && p.pprof == "" {
			p.pprof = pprofAddr(stderr)
		}
		if p.data != "" && (!pprof || p.pprof != "") {
			return p, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s: no \"phasegate serving\" line after 20s%s", name, p.tail())
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// servingAddrs finds the "phasegate serving" log line in file and returns
// its listen and admin fields.
func servingAddrs(file string) (listen, admin string) {
	data, _ := os.ReadFile(file)
	for line := range bytes.Lines(data) {
		var l struct {
			Message string `json:"message"`
			Listen  string `json:"listen"`
			Admin   string `json:"admin"`
		}
		if json.Unmarshal(line, &l) == nil && l.Message == "phasegate serving" {
			return l.Listen, l.Admin
		}
	}
	return "", ""
}

// pprofAddr finds the profiling build's announcement in file.
func pprofAddr(file string) string {
	data, _ := os.ReadFile(file)
	for line := range bytes.Lines(data) {
		var l struct {
			Pprof string `json:"pprof"`
		}
		if json.Unmarshal(line, &l) == nil && l.Pprof != "" {
			return l.Pprof
		}
	}
	return ""
}

// truncateLog empties p's stdout file (the access log), which phasegate
// keeps appending to.
func (p *proc) truncateLog() {
	if p != nil && p.stdout != "" {
		_ = os.Truncate(p.stdout, 0)
	}
}
