//go:build !linux

package soak

import "syscall"

// childAttr: only Linux can tie the child's life to the soak process;
// elsewhere the soak's own cleanup ends it.
func childAttr() *syscall.SysProcAttr { return nil }
