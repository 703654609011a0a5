package main

import (
	"os/exec"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/phasegate/phasegate/bench/harness"
)

func TestPinSpecRunsTheServerUnderTaskset(t *testing.T) {
	s := harness.Spec{Name: "x", Path: "/bin/server", Args: []string{"-a", "b"}, Env: []string{"K=V"}}
	if got := (&pinPlan{}).spec(s, serverCPU); !reflect.DeepEqual(got, s) {
		t.Fatalf("unpinned spec changed: %+v", got)
	}
	got := (&pinPlan{on: true}).spec(s, serverCPU)
	want := harness.Spec{Name: "x", Path: "taskset", Args: []string{"-c", "1", "/bin/server", "-a", "b"}, Env: []string{"K=V", "GOMAXPROCS=1"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("pinned spec\ngot  %+v\nwant %+v", got, want)
	}
	if len(s.Env) != 1 {
		t.Fatalf("the caller's Env was changed: %q", s.Env)
	}
}

func TestParsePinUpstream(t *testing.T) {
	for in, want := range map[string]int{"load": loadCPU, "server": serverCPU} {
		if got, err := parsePinUpstream(in); err != nil || got != want {
			t.Errorf("parsePinUpstream(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := parsePinUpstream("2"); err == nil {
		t.Error("parsePinUpstream(\"2\") accepted")
	}
}

// A server started the way -pin starts it runs on CPU 1 only, with one
// worker.
func TestPinnedProcessRunsOnItsCPU(t *testing.T) {
	if runtime.GOOS != "linux" || runtime.NumCPU() < 2 {
		t.Skip("needs Linux and 2 CPUs")
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		t.Skip("no taskset")
	}
	s := (&pinPlan{on: true}).spec(harness.Spec{Path: "sh", Args: []string{"-c", `grep Cpus_allowed_list /proc/self/status; echo "$GOMAXPROCS"`}}, serverCPU)
	cmd := exec.Command(s.Path, s.Args...)
	cmd.Env = s.Env
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Fields(string(out)); !reflect.DeepEqual(got, []string{"Cpus_allowed_list:", "1", "1"}) {
		t.Fatalf("pinned process: %q", out)
	}
}
