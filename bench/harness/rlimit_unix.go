//go:build unix

package harness

import (
	"fmt"
	"syscall"
)

// RaiseNoFile raises the soft limit of open files to the hard limit and
// returns a note when that stays below need. Setting it explicitly makes
// the children inherit it (os/exec otherwise gives them the limit the
// harness started with).
func RaiseNoFile(need uint64) string {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Sprintf("RLIMIT_NOFILE unknown: %v", err)
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Sprintf("cannot raise RLIMIT_NOFILE to %d: %v", lim.Max, err)
	}
	if lim.Cur < need {
		return fmt.Sprintf("RLIMIT_NOFILE is %d (hard limit), below the %d this run may need", lim.Cur, need)
	}
	return ""
}
