//go:build !linux

package soak

import "syscall"

// smallWindow: the socket options that keep a server's send buffer small
// are Linux's; elsewhere the connection keeps the system's window.
var smallWindow func(network, address string, rc syscall.RawConn) error

// slowReaderChunks is how many events the slow reader asks for: the most
// the mock sends (about 17 MB), to outgrow the send buffers without
// smallWindow.
const slowReaderChunks = 100_000
