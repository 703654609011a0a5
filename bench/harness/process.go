package harness

import (
	"bufio"
	"bytes"
	"cmp"
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

// Ready is the JSON line a server writes on stdout once it listens: its
// data-plane and admin addresses. phasegate's "phasegate serving" log line
// is one.
type Ready struct {
	Message string `json:"message"`
	Listen  string `json:"listen"`
	Admin   string `json:"admin,omitempty"`
}

// PhasegateReady is the message of phasegate's Ready line.
const PhasegateReady = "phasegate serving"

// defaultReadyTimeout is how long Start waits for the Ready line.
const defaultReadyTimeout = 20 * time.Second

// Spec describes a child process.
type Spec struct {
	// Name names the process in errors and its files: stdout goes to
	// Dir/Name.log (opened for appending, so that TruncateLog keeps it
	// small while the process writes on), stderr to Dir/Name.stderr.
	Name string
	Dir  string
	Path string
	Args []string
	// Env is added to this process's environment.
	Env []string
	// Ready, when set, is the message of the Ready line Start waits for;
	// its addresses become Proc.Listen and Proc.Admin.
	Ready string
	// ReadyTimeout bounds the wait for the Ready line. Default 20s.
	ReadyTimeout time.Duration
}

// Proc is a running child process.
type Proc struct {
	Name   string
	Listen string // data-plane host:port, from the Ready line
	Admin  string // admin host:port, from the Ready line ("" when none)

	cmd     *exec.Cmd
	logPath string
	errPath string

	done    chan struct{} // closed once the process has exited
	waitErr error         // cmd.Wait's result, read after done

	stopOnce sync.Once
	stopCode int
	stopErr  error

	mu      sync.Mutex
	offsets map[string]int64 // how far WaitLog and WaitStderr have read each file
}

// Start starts the process described by s and, when s.Ready is set, waits
// for its Ready line. On any error the process is killed.
func Start(ctx context.Context, s Spec) (*Proc, error) {
	p := &Proc{
		Name:    s.Name,
		logPath: filepath.Join(s.Dir, s.Name+".log"),
		errPath: filepath.Join(s.Dir, s.Name+".stderr"),
		done:    make(chan struct{}),
		offsets: map[string]int64{},
	}
	stdout, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer stdout.Close()
	stderr, err := os.Create(p.errPath)
	if err != nil {
		return nil, err
	}
	defer stderr.Close()
	p.cmd = exec.Command(s.Path, s.Args...)
	p.cmd.Stdout, p.cmd.Stderr = stdout, stderr
	p.cmd.Env = append(os.Environ(), s.Env...)
	p.cmd.SysProcAttr = childAttr()
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", s.Name, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	if s.Ready == "" {
		return p, nil
	}
	line, err := p.WaitLog(ctx, s.Ready, cmp.Or(s.ReadyTimeout, defaultReadyTimeout))
	if err != nil {
		p.Kill()
		return nil, err
	}
	var r Ready
	if err := json.Unmarshal(line, &r); err != nil || r.Listen == "" {
		p.Kill()
		return nil, fmt.Errorf("%s: no listen address in %q", s.Name, line)
	}
	p.Listen, p.Admin = r.Listen, r.Admin
	return p, nil
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// LogPath is the file receiving the process's stdout.
func (p *Proc) LogPath() string { return p.logPath }

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Alive returns an error, with the tail of the process's output, once the
// process has exited.
func (p *Proc) Alive() error {
	if p.Exited() {
		return fmt.Errorf("%s exited unexpectedly (%v)%s", p.Name, p.waitErr, p.Tail())
	}
	return nil
}

// Signal sends sig to the process.
func (p *Proc) Signal(sig os.Signal) error {
	if p.Exited() {
		return fmt.Errorf("%s has exited (%v)", p.Name, p.waitErr)
	}
	return p.cmd.Process.Signal(sig)
}

// Stop sends SIGTERM and waits up to grace for the process to exit; then
// it kills the process and its group. It returns the exit code (-1 when
// killed) and an error when the process had already exited or had to be
// killed. Later calls return the same.
func (p *Proc) Stop(grace time.Duration) (int, error) {
	p.stopOnce.Do(func() {
		if err := p.Signal(syscall.SIGTERM); err != nil {
			p.Kill() // where SIGTERM cannot be sent
			p.stopCode, p.stopErr = -1, err
			return
		}
		select {
		case <-p.done:
			p.stopCode = p.cmd.ProcessState.ExitCode()
		case <-time.After(grace):
			p.Kill()
			p.stopCode, p.stopErr = -1, fmt.Errorf("%s did not exit within %s of SIGTERM; killed", p.Name, grace)
		}
	})
	return p.stopCode, p.stopErr
}

// Kill kills the process and its group if it is still running, and waits
// for it. It is safe to call on every exit path, any number of times.
func (p *Proc) Kill() {
	if !p.Exited() {
		killGroup(p.cmd.Process.Pid)
		_ = p.cmd.Process.Kill()
	}
	<-p.done
}

// WaitLog returns the next stdout line, after those already read by
// WaitLog, that is a JSON log line whose message is msg. It polls the
// file; it fails when the process exits, ctx ends or timeout passes first.
func (p *Proc) WaitLog(ctx context.Context, msg string, timeout time.Duration) ([]byte, error) {
	q, _ := json.Marshal(msg)
	return p.wait(ctx, p.logPath, []byte(`"message":`+string(q)), "log "+string(q), timeout)
}

// WaitStderr returns the next stderr line, after those already read by
// WaitStderr, that contains needle (see WaitLog).
func (p *Proc) WaitStderr(ctx context.Context, needle string, timeout time.Duration) ([]byte, error) {
	return p.wait(ctx, p.errPath, []byte(needle), fmt.Sprintf("write %q on stderr", needle), timeout)
}

func (p *Proc) wait(ctx context.Context, path string, needle []byte, what string, timeout time.Duration) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	deadline := time.Now().Add(timeout)
	for {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		line, next, err := ScanFor(f, p.offsets[path], needle)
		f.Close()
		if err != nil {
			return nil, err
		}
		p.offsets[path] = next
		if line != nil {
			return line, nil
		}
		if p.Exited() {
			return nil, fmt.Errorf("%s exited (%v) before it would %s%s", p.Name, p.waitErr, what, p.Tail())
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s did not %s within %s%s", p.Name, what, timeout, p.Tail())
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ScanFor reads the complete lines of r from offset and returns the first
// one containing needle, and the offset just after the lines it consumed
// (after the match, or after the last complete line: a partial last line
// is read again next time).
func ScanFor(r io.ReadSeeker, offset int64, needle []byte) ([]byte, int64, error) {
	if _, err := r.Seek(offset, io.SeekStart); err != nil {
		return nil, offset, err
	}
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, offset, nil
			}
			return nil, offset, err
		}
		offset += int64(len(line))
		if bytes.Contains(line, needle) {
			return bytes.TrimSpace(line), offset, nil
		}
	}
}

// TruncateLog empties the stdout file, which the process keeps appending
// to; WaitLog starts again from its beginning.
func (p *Proc) TruncateLog() {
	p.mu.Lock()
	defer p.mu.Unlock()
	_ = os.Truncate(p.logPath, 0)
	p.offsets[p.logPath] = 0
}

// Stderr returns what the process wrote on stderr, at most its first 2 KiB.
func (p *Proc) Stderr() string {
	b, _ := os.ReadFile(p.errPath)
	if len(b) > 2048 {
		b = append(b[:2048], "…"...)
	}
	return strings.TrimSpace(string(b))
}

// Tail returns the last lines of the process's stderr and stdout, for
// error messages.
func (p *Proc) Tail() string {
	var b strings.Builder
	for _, f := range []string{p.errPath, p.logPath} {
		data, err := os.ReadFile(f)
		if err != nil || len(data) == 0 {
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		lines = lines[max(0, len(lines)-8):]
		fmt.Fprintf(&b, "\n  %s (%s):\n    %s", p.Name, filepath.Base(f), strings.Join(lines, "\n    "))
	}
	return b.String()
}

// Group is a set of started processes, stopped together.
type Group struct {
	mu    sync.Mutex
	procs []*Proc
}

// Start starts a process (see Start) and adds it to the group.
func (g *Group) Start(ctx context.Context, s Spec) (*Proc, error) {
	p, err := Start(ctx, s)
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	g.procs = append(g.procs, p)
	g.mu.Unlock()
	return p, nil
}

// StopAll stops every process of the group at once (see Proc.Stop) and
// empties the group.
func (g *Group) StopAll(grace time.Duration) {
	g.mu.Lock()
	procs := g.procs
	g.procs = nil
	g.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Go(func() { _, _ = p.Stop(grace) })
	}
	wg.Wait()
}
