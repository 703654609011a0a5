//go:build !unix

package harness

// RaiseNoFile: there is no RLIMIT_NOFILE to raise here.
func RaiseNoFile(uint64) string { return "" }
