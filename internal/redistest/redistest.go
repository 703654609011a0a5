// Package redistest runs a real redis-server for tests: on a free loopback
// port, in a temporary directory, without persistence, stopped at the
// test's cleanup. A test can also stop, pause (SIGSTOP) and restart it on
// the same port, to see how its client lives through an outage.
package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// RequireEnv is the environment variable `make test` sets: with it, a
// missing redis-server fails the test instead of skipping it.
const RequireEnv = "PHASEGATE_REQUIRE_REDIS"

// Server is one redis-server process. Its methods are not safe for
// concurrent use.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	port int

	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been waited for
	paused bool
}

// Start runs a redis-server on a free port and waits until it answers
// PING. Without a redis-server on PATH it skips the test, or fails it when
// RequireEnv is set.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv(RequireEnv) != "" {
			t.Fatalf("redis-server is not installed (%s is set): %v", RequireEnv, err)
		}
		t.Skip("redis-server is not installed; `make test` installs it")
	}
	s := &Server{t: t, bin: bin, dir: t.TempDir()}
	t.Cleanup(s.kill)
	// Another process may take the free port before redis-server binds
	// it; try a few.
	for try := 0; ; try++ {
		s.port = freePort(t)
		err := s.start()
		if err == nil {
			return s
		}
		if try == 4 {
			t.Fatalf("redis-server did not start: %v\n%s", err, s.log())
		}
	}
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Stop kills the server; its data is gone.
func (s *Server) Stop() {
	s.t.Helper()
	s.kill()
}

// Restart starts a stopped server again, empty, on the same port.
func (s *Server) Restart() {
	s.t.Helper()
	s.kill()
	if err := s.start(); err != nil {
		s.t.Fatalf("redis-server did not restart on port %d: %v\n%s", s.port, err, s.log())
	}
}

// Pause stops the process with SIGSTOP: connections stay open and nothing
// answers, as with a hung server.
func (s *Server) Pause() {
	s.t.Helper()
	s.signal(syscall.SIGSTOP)
	s.paused = true
}

// Resume continues a paused server.
func (s *Server) Resume() {
	s.t.Helper()
	s.signal(syscall.SIGCONT)
	s.paused = false
}

func (s *Server) signal(sig syscall.Signal) {
	if s.cmd == nil {
		s.t.Fatal("redis-server is not running")
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("signal %v to redis-server: %v", sig, err)
	}
}

func (s *Server) start() error {
	cmd := exec.Command(s.bin,
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		"--save", "",
		"--appendonly", "no",
		"--protected-mode", "no",
		"--loglevel", "warning",
		"--logfile", filepath.Join(s.dir, "redis.log"),
	)
	if err := cmd.Start(); err != nil {
		return err
	}
	s.cmd, s.exited, s.paused = cmd, make(chan struct{}), false
	go func(done chan struct{}) {
		_ = cmd.Wait()
		close(done)
	}(s.exited)

	deadline := time.Now().Add(10 * time.Second)
	for {
		err := ping(s.Addr())
		if err == nil {
			return nil
		}
		select {
		case <-s.exited:
			s.cmd = nil
			return fmt.Errorf("redis-server exited: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.kill()
			return fmt.Errorf("no PONG within 10s: %v", err)
		}
	}
}

// kill ends the process (continuing it first if paused) and waits for it.
func (s *Server) kill() {
	if s.cmd == nil {
		return
	}
	if s.paused {
		_ = s.cmd.Process.Signal(syscall.SIGCONT)
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd, s.paused = nil, false
}

// ping sends one PING and wants +PONG.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return errors.New("PING answered " + strconv.Quote(line))
	}
	return nil
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// log returns what the server logged, for failure messages.
func (s *Server) log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	return string(b)
}
