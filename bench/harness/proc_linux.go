package harness

import "syscall"

// childAttr puts the child in its own process group, so that a terminal's
// Ctrl-C reaches only the harness, which stops its children in order, and
// makes the kernel kill it if the harness dies without cleaning up (a test
// timeout, a crash, SIGKILL).
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killGroup kills the child's process group: whatever it started too.
func killGroup(pid int) { _ = syscall.Kill(-pid, syscall.SIGKILL) }
