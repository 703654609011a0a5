package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/phasegate/phasegate/fsm"
	"github.com/phasegate/phasegate/llm/provider/providertest"
	"github.com/phasegate/phasegate/mockllm"
)

var binary string

// TestMain builds the real binary once: the signal tests run it as a
// process, the way an operator does.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "phasegate-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "phasegate")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building phasegate: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

func runCLI(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestVersionAndUsage(t *testing.T) {
	code, out, _ := runCLI("version")
	if code != 0 || !strings.HasPrefix(out, "phasegate ") || !strings.Contains(out, "go1.") {
		t.Fatalf("version: %d %q", code, out)
	}
	if code, _, errOut := runCLI("frobnicate"); code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Fatalf("unknown command: %d %q", code, errOut)
	}
	if code, _, _ := runCLI(); code != 2 {
		t.Fatalf("no command: %d", code)
	}
}

func TestLifecycleCommandPrintsTheMachine(t *testing.T) {
	for _, f := range []string{"mermaid", "dot"} {
		code, out, _ := runCLI("lifecycle", "--format", f)
		want, _ := fsm.Diagram(fsm.Format(f))
		if code != 0 || out != want {
			t.Fatalf("lifecycle --format %s: %d\n%s", f, code, out)
		}
	}
	if code, _, _ := runCLI("lifecycle", "--format", "svg"); code != 2 {
		t.Fatalf("unknown format accepted")
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestValidate(t *testing.T) {
	good := writeFile(t, "good.yaml", "routes:\n  - id: a\n    uri: /a\n    upstream: { nodes: { \"127.0.0.1:8081\": 1 } }\n")
	if code, out, errOut := runCLI("validate", "-c", good); code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("valid file: %d %q %q", code, out, errOut)
	}
	bad := writeFile(t, "bad.yaml", "listen: nowhere\nroutes:\n  - id: a\n    uri: a\n    upstream: { nodes: { \"127.0.0.1:8081\": 1 } }\n")
	code, _, errOut := runCLI("validate", "-c", bad)
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	if code != 2 || len(lines) != 2 {
		t.Fatalf("invalid file: exit %d, %q", code, errOut)
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, bad+":") {
			t.Errorf("problem line %q does not start with FILE:LINE:COL", l)
		}
	}
	if code, _, _ := runCLI("validate"); code != 2 {
		t.Fatal("validate without -c must be a usage error")
	}
	if code, _, errOut := runCLI("run", "-c", bad); code != 2 || !strings.Contains(errOut, bad+":1:9: listen:") {
		t.Fatalf("run with an invalid config: %d %q", code, errOut)
	}
}

// process is a running phasegate binary whose stdout log is parsed.
type process struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []map[string]any
	seen  chan map[string]any
	done  chan error
}

func start(t *testing.T, config string) *process {
	t.Helper()
	return startEnv(t, config)
}

// startEnv starts the binary with env added to the test's environment.
func startEnv(t *testing.T, config string, env ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(binary, "run", "-c", config), seen: make(chan map[string]any, 256), done: make(chan error, 1)}
	if len(env) > 0 {
		p.cmd.Env = append(os.Environ(), env...)
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stderr = os.Stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				p.mu.Lock()
				p.lines = append(p.lines, m)
				p.mu.Unlock()
				p.seen <- m
			}
		}
		p.done <- p.cmd.Wait()
	}()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// await returns the next log line whose message is msg.
func (p *process) await(t *testing.T, msg string) map[string]any {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m := <-p.seen:
			if m["message"] == msg {
				return m
			}
		case <-timeout:
			t.Fatalf("no %q log line within 10s", msg)
		}
	}
}

func (p *process) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Fatal("phasegate did not exit")
	}
	return p.cmd.ProcessState.ExitCode()
}

func config(upstream string, extra string) string {
	return fmt.Sprintf(`listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
shutdown_timeout: 10s
routes:
  - id: slow
    uri: /slow
    upstream: { nodes: { %q: 1 }, timeout: 10s }
%s`, upstream, extra)
}

// A slow request in flight when SIGTERM arrives completes with 200; new
// connections are refused afterwards; the process exits 0.
func TestSIGTERMDrainsInFlightRequests(t *testing.T) {
	arrived := make(chan struct{}, 1)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		time.Sleep(700 * time.Millisecond)
		io.WriteString(w, "finished")
	}))
	defer origin.Close()
	p := start(t, writeFile(t, "c.yaml", config(origin.Listener.Addr().String(), "")))
	addr := p.await(t, "phasegate serving")["listen"].(string)

	type result struct {
		status int
		body   string
		err    error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/slow")
		if err != nil {
			res <- result{err: err}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		res <- result{status: resp.StatusCode, body: string(b)}
	}()
	<-arrived
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.await(t, "draining in-flight requests")
	// The listener is closed while the slow request is still running.
	deadline := time.Now().Add(2 * time.Second)
	for {
		c, err := (&http.Client{Timeout: time.Second}).Get("http://" + addr + "/slow")
		if err != nil {
			break
		}
		c.Body.Close()
		if time.Now().After(deadline) {
			t.Fatal("new connections still accepted after SIGTERM")
		}
		time.Sleep(20 * time.Millisecond)
	}
	r := <-res
	if r.err != nil || r.status != 200 || r.body != "finished" {
		t.Fatalf("in-flight request: %d %q %v", r.status, r.body, r.err)
	}
	if code := p.wait(t); code != 0 {
		t.Fatalf("exit status %d, want 0", code)
	}
}

// SIGHUP reloads: a valid file adds a route; an invalid one is rejected,
// logged, and the old config keeps serving.
func TestSIGHUPReloads(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.URL.Path)
	}))
	defer origin.Close()
	node := origin.Listener.Addr().String()
	file := writeFile(t, "c.yaml", config(node, ""))
	p := start(t, file)
	addr := p.await(t, "phasegate serving")["listen"].(string)
	get := func(path string) int {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if get("/new") != 404 {
		t.Fatal("/new served before the reload")
	}
	if err := os.WriteFile(file, []byte(config(node, fmt.Sprintf("  - id: new\n    uri: /new\n    upstream: { nodes: { %q: 1 } }\n", node))), 0o644); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Process.Signal(syscall.SIGHUP)
	p.await(t, "config reloaded")
	if get("/new") != 200 {
		t.Fatal("/new not served after the reload")
	}
	if err := os.WriteFile(file, []byte("routes:\n  - id: broken\n    uri: nope\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Process.Signal(syscall.SIGHUP)
	rejected := p.await(t, "reload rejected; the previous config keeps serving")
	if !strings.Contains(fmt.Sprint(rejected["problems"]), file+":3:10: routes[0].uri") {
		t.Fatalf("rejection does not name the problem: %v", rejected)
	}
	if get("/new") != 200 {
		t.Fatal("an invalid reload changed what is served")
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	if code := p.wait(t); code != 0 {
		t.Fatalf("exit status %d", code)
	}
}

// run starts the mock LLM of the mock_llm block with its moderation words
// before serving, and stops it on exit: the gateway library does not.
func TestRunStartsTheMockLLM(t *testing.T) {
	mock := providertest.DeadAddr(t) // free now; the mock LLM will listen there
	cfg := fmt.Sprintf(`listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
mock_llm: { listen: %q, moderation_words: [zebra] }
routes:
  - id: mock
    uri: /v1/*
    upstream: { nodes: { %q: 1 }, timeout: 10s }
`, mock, mock)
	p := start(t, writeFile(t, "c.yaml", cfg))
	addr := p.await(t, "phasegate serving")["listen"].(string)
	post := func(path, body string) string {
		t.Helper()
		resp, err := http.Post("http://"+addr+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("POST %s: %d %s", path, resp.StatusCode, b)
		}
		return string(b)
	}
	chat := post(mockllm.PathChatCompletions, `{"model":"m","messages":[{"role":"user","content":"hi"}]}`)
	if !strings.Contains(chat, mockllm.DefaultCompletionText) {
		t.Fatalf("chat through the mock: %s", chat)
	}
	if mod := post(mockllm.PathModerations, `{"input":"a zebra"}`); !strings.Contains(mod, `"flagged":true`) {
		t.Fatalf("moderation_words not passed to the mock: %s", mod)
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t); code != 0 {
		t.Fatalf("exit status %d", code)
	}
	if c, err := net.DialTimeout("tcp", mock, time.Second); err == nil {
		c.Close()
		t.Fatal("the mock LLM still listens after the gateway exited")
	}
}
