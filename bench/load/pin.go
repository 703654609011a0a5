package main

import (
	"errors"
	"fmt"
	"os/exec"
	"runtime"
	"strconv"

	"github.com/phasegate/phasegate/bench/harness"
)

// CPUs of the pinned layout (-pin): the load generator on one core, the
// server measured on the other, as issue 12's figures were taken.
const (
	loadCPU   = 0
	serverCPU = 1
)

// pinPlan is where -pin puts each process; the zero value pins nothing.
type pinPlan struct {
	on bool
	// upstreamCPU is the bench upstream's core: loadCPU (beside the load
	// generator, so that the server measured has its core to itself) or
	// serverCPU.
	upstreamCPU int
}

// pin is the run's plan, set once by runBench before any process starts.
var pin pinPlan

// pinDefault is -pin's default: on when there are two cores to split.
func pinDefault() bool { return runtime.NumCPU() >= 2 && pinSupported }

// parsePinUpstream reads -pin-upstream.
func parsePinUpstream(s string) (int, error) {
	switch s {
	case "load":
		return loadCPU, nil
	case "server":
		return serverCPU, nil
	}
	return 0, fmt.Errorf("-pin-upstream: %q, want load or server", s)
}

// setup pins the load generator (this process, every thread) to loadCPU
// with one worker, and checks that taskset is there for the servers.
func (p *pinPlan) setup() error {
	if !p.on {
		return nil
	}
	if runtime.NumCPU() < 2 {
		return errors.New("-pin needs at least 2 CPUs (use -pin=false)")
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		return fmt.Errorf("-pin runs the servers under taskset (util-linux): %w (use -pin=false)", err)
	}
	if err := pinSelf(loadCPU); err != nil {
		return fmt.Errorf("-pin: the load generator on CPU %d: %w", loadCPU, err)
	}
	runtime.GOMAXPROCS(1)
	return nil
}

// spec returns s run on cpu with GOMAXPROCS=1 under taskset, which execs
// the server in place (same pid, so its /proc figures stay its own).
func (p *pinPlan) spec(s harness.Spec, cpu int) harness.Spec {
	if !p.on {
		return s
	}
	s.Args = append([]string{"-c", strconv.Itoa(cpu), s.Path}, s.Args...)
	s.Path = "taskset"
	s.Env = append(append([]string(nil), s.Env...), "GOMAXPROCS=1")
	return s
}

// describe is the report's line on where the processes ran.
func (p *pinPlan) describe() string {
	if !p.on {
		return "Every server is its own process beside the load generator, all on the same cores (unpinned: `-pin=false`)"
	}
	up := "the upstream beside the load generator"
	if p.upstreamCPU == serverCPU {
		up = "the upstream beside the servers"
	}
	return fmt.Sprintf("Pinned (`-pin`): the load generator on CPU %d with GOMAXPROCS=1, every server process on CPU %d with GOMAXPROCS=1 (one measured at a time), %s (CPU %d)",
		loadCPU, serverCPU, up, p.upstreamCPU)
}
