package soak

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

// PhasegatePackage is the import path of the binary the soak builds.
const PhasegatePackage = "github.com/phasegate/phasegate/cmd/phasegate"

// BuildBinary builds the phasegate binary into dir and returns its path.
// It runs the go command in the current directory, which must be inside
// the phasegate module.
func BuildBinary(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "phasegate")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, PhasegatePackage)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", PhasegatePackage, err, out)
	}
	return bin, nil
}

// validateConfig runs `phasegate validate -c file`.
func validateConfig(ctx context.Context, bin, file string) error {
	out, err := exec.CommandContext(ctx, bin, "validate", "-c", file).CombinedOutput()
	if err != nil {
		return fmt.Errorf("phasegate validate -c %s: %v\n%s", file, err, bytes.TrimSpace(out))
	}
	return nil
}

// gateway is a running phasegate binary whose stdout (the JSON log) goes
// to a file.
type gateway struct {
	cmd     *exec.Cmd
	logPath string
	errPath string
	listen  string // data plane host:port, from "phasegate serving"
	admin   string // admin host:port

	done    chan struct{} // closed when the process has exited
	waitErr error         // cmd.Wait's result, read after done

	mu     sync.Mutex
	offset int64 // how far waitLog has read the log
}

// startGateway runs `bin run -c config` with stdout to logPath and stderr
// to errPath, and waits for its "phasegate serving" line.
func startGateway(ctx context.Context, bin, config, logPath, errPath string) (*gateway, error) {
	stdout, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer stdout.Close()
	stderr, err := os.Create(errPath)
	if err != nil {
		return nil, err
	}
	defer stderr.Close()
	g := &gateway{logPath: logPath, errPath: errPath, done: make(chan struct{})}
	g.cmd = exec.Command(bin, "run", "-c", config)
	g.cmd.Stdout, g.cmd.Stderr = stdout, stderr
	g.cmd.SysProcAttr = childAttr()
	if err := g.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		g.waitErr = g.cmd.Wait()
		close(g.done)
	}()
	line, err := g.waitLog(ctx, "phasegate serving", 15*time.Second)
	if err != nil {
		g.kill()
		return nil, err
	}
	var serving struct{ Listen, Admin string }
	if err := json.Unmarshal(line, &serving); err != nil || serving.Listen == "" || serving.Admin == "" {
		g.kill()
		return nil, fmt.Errorf("cannot read the addresses from %q", line)
	}
	g.listen, g.admin = serving.Listen, serving.Admin
	return g, nil
}

// exited reports whether the process has exited.
func (g *gateway) exited() bool {
	select {
	case <-g.done:
		return true
	default:
		return false
	}
}

// kill ends the process if it is still running and waits for it. It is
// safe to call on every exit path, any number of times.
func (g *gateway) kill() {
	if g == nil || g.cmd.Process == nil {
		return
	}
	if !g.exited() {
		_ = g.cmd.Process.Kill()
	}
	<-g.done
}

// signal sends sig to the process.
func (g *gateway) signal(sig os.Signal) error {
	if g.exited() {
		return errors.New("phasegate has exited")
	}
	return g.cmd.Process.Signal(sig)
}

// terminate sends SIGTERM and waits up to timeout for the process to
// exit; it returns the exit code (-1 if it had to be killed).
func (g *gateway) terminate(timeout time.Duration) (int, error) {
	if err := g.signal(syscall.SIGTERM); err != nil {
		return -1, err
	}
	select {
	case <-g.done:
	case <-time.After(timeout):
		g.kill()
		return -1, fmt.Errorf("phasegate did not exit within %s of SIGTERM; killed", timeout)
	}
	return g.cmd.ProcessState.ExitCode(), nil
}

// stderrText returns what the process wrote to stderr (at most 2 KiB).
func (g *gateway) stderrText() string {
	b, _ := os.ReadFile(g.errPath)
	if len(b) > 2048 {
		b = append(b[:2048], "…"...)
	}
	return strings.TrimSpace(string(b))
}

// waitLog returns the next log line, after those it has already read,
// whose message is msg. It polls the log file; it fails if the process
// exits, ctx ends or timeout passes first.
func (g *gateway) waitLog(ctx context.Context, msg string, timeout time.Duration) ([]byte, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	needle := []byte(`"message":` + quote(msg))
	deadline := time.Now().Add(timeout)
	for {
		f, err := os.Open(g.logPath)
		if err != nil {
			return nil, err
		}
		line, next, err := scanFor(f, g.offset, needle)
		f.Close()
		if err != nil {
			return nil, err
		}
		g.offset = next
		if line != nil {
			return line, nil
		}
		if g.exited() {
			return nil, fmt.Errorf("phasegate exited (%v) before logging %q; stderr: %s", g.waitErr, msg, g.stderrText())
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("phasegate logged no %q within %s", msg, timeout)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// scanFor reads the complete lines of r from offset and returns the first
// one containing needle, and the offset just after the lines it consumed
// (after the match, or after the last complete line).
func scanFor(r io.ReadSeeker, offset int64, needle []byte) ([]byte, int64, error) {
	if _, err := r.Seek(offset, io.SeekStart); err != nil {
		return nil, offset, err
	}
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			// A partial last line is read again next time.
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

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
