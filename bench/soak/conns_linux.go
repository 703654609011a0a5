package soak

import "os"

// pooledConns counts the established TCP connections to port on the
// loopback (IPv4), from /proc/net/tcp. Every connection between phasegate
// and its in-process mock LLM appears there twice, once per end; only the
// end whose remote port is the mock's is counted. It returns -1 when the
// table cannot be read.
func pooledConns(port int) int {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return -1
	}
	return countConns(string(b), port)
}
