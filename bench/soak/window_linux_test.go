package soak

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// TestSmallWindow measures what the slow reader relies on: a server's
// writes to a connection dialled with smallWindow, which never reads,
// block after far less than the stream the slow reader asks for.
func TestSmallWindow(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	written := make(chan int64, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			written <- -1
			return
		}
		defer conn.Close()
		// Writes as phasegate's are bounded: each may wait a short while.
		buf := make([]byte, 16<<10)
		var n int64
		for {
			conn.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
			k, err := conn.Write(buf)
			n += int64(k)
			if err != nil {
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					n = -n
				}
				written <- n
				return
			}
			if n > 64<<20 {
				written <- n
				return
			}
		}
	}()
	c := testCall(t, ln.Addr().String())
	rc, err := c.dial(true)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	n := <-written
	stream := int64(slowReaderChunks) * 150 // the smallest an event is
	if n <= 0 || n >= stream/2 {
		t.Fatalf("the server wrote %d bytes before its write blocked; the slow reader's stream is over %d", n, stream)
	}
	t.Logf("the server's write blocked after %d KiB", n>>10)
}
