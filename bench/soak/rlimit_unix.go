//go:build unix

package soak

import (
	"fmt"
	"syscall"
)

// raiseNoFile raises the soft RLIMIT_NOFILE to at least need (up to the
// hard limit). Setting it explicitly also makes the phasegate child
// inherit the raised limit. It returns a note when the limit stays below
// need.
func raiseNoFile(need uint64) string {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Sprintf("RLIMIT_NOFILE unknown: %v", err)
	}
	if lim.Cur >= need {
		return ""
	}
	lim.Cur = min(max(need, lim.Cur), lim.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Sprintf("cannot raise RLIMIT_NOFILE to %d: %v", need, err)
	}
	if lim.Cur < need {
		return fmt.Sprintf("RLIMIT_NOFILE is %d (hard limit), below the %d this run may need", lim.Cur, need)
	}
	return ""
}
