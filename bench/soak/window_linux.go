package soak

import "syscall"

// smallWindow makes a socket, before it connects, ask for a 4 KiB receive
// buffer and 536-byte segments: the window a client that stops reading
// offers. A loopback server's send buffer grows with the segment size
// (to MiBs at loopback's 64 KiB), so without it phasegate's writes would
// block only after MiBs; with it, after about 120 KiB.
func smallWindow(_, _ string, rc syscall.RawConn) error {
	var err error
	if cerr := rc.Control(func(fd uintptr) {
		if err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096); err == nil {
			err = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_MAXSEG, 536)
		}
	}); cerr != nil {
		return cerr
	}
	return err
}

// slowReaderChunks is how many events the slow reader asks for: about 170
// bytes each, 850 KB, seven times what the buffers hold before
// phasegate's writes block.
const slowReaderChunks = 5000
