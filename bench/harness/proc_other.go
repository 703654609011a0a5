//go:build !linux

package harness

import "syscall"

// childAttr: only Linux can tie the child's life to the harness's;
// elsewhere the harness's own cleanup ends it.
func childAttr() *syscall.SysProcAttr { return nil }

// killGroup: the child shares the harness's process group here; killing
// the child is all that can be done.
func killGroup(int) {}
