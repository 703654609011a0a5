//go:build linux

package main

import (
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// pinSupported: Linux has sched_setaffinity and taskset.
const pinSupported = true

// pinSelf binds every thread of this process to cpu. Affinity is per
// thread on Linux; threads started later inherit their creator's, so the
// threads are walked until a pass finds none new.
func pinSelf(cpu int) error {
	var set unix.CPUSet
	set.Set(cpu)
	done := map[int]bool{}
	for {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return err
		}
		fresh := false
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil || done[tid] {
				continue
			}
			if err := unix.SchedSetaffinity(tid, &set); err != nil && err != unix.ESRCH {
				return err
			}
			done[tid], fresh = true, true
		}
		if !fresh {
			return nil
		}
	}
}
