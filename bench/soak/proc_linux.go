package soak

import "syscall"

// childAttr makes the kernel kill phasegate if the soak process dies
// without cleaning up (a test timeout, a crash, SIGKILL).
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
