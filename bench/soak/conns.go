package soak

import (
	"strconv"
	"strings"
)

// goroutinesPerConn is what one idle keep-alive connection from phasegate
// to its in-process mock costs in goroutines: the transport's read and
// write loops, and the mock server's connection goroutine.
const goroutinesPerConn = 3

// countConns counts the lines of a /proc/net/tcp table in state 01
// (ESTABLISHED) whose remote port is port.
func countConns(table string, port int) int {
	n := 0
	for _, line := range strings.Split(table, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || f[3] != "01" {
			continue
		}
		i := strings.LastIndexByte(f[2], ':')
		if i < 0 {
			continue
		}
		p, err := strconv.ParseUint(f[2][i+1:], 16, 16)
		if err == nil && int(p) == port {
			n++
		}
	}
	return n
}
