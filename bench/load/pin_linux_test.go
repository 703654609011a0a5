//go:build linux

package main

import (
	"os"
	"runtime"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// pinSelf binds every thread of the process, not only the caller's.
func TestPinSelfBindsEveryThread(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("needs 2 CPUs")
	}
	var orig unix.CPUSet
	if err := unix.SchedGetaffinity(0, &orig); err != nil {
		t.Fatal(err)
	}
	defer restoreAffinity(t, orig)
	if err := pinSelf(loadCPU); err != nil {
		t.Fatal(err)
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		tid, _ := strconv.Atoi(task.Name())
		var set unix.CPUSet
		if err := unix.SchedGetaffinity(tid, &set); err != nil {
			continue // the thread has exited
		}
		if set.Count() != 1 || !set.IsSet(loadCPU) {
			t.Errorf("thread %d: affinity %v CPUs, want only CPU %d", tid, set.Count(), loadCPU)
		}
	}
}

// restoreAffinity gives every thread of the process the set it had.
func restoreAffinity(t *testing.T, set unix.CPUSet) {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		tid, _ := strconv.Atoi(task.Name())
		_ = unix.SchedSetaffinity(tid, &set)
	}
}
