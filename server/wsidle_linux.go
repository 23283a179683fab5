package server

import (
	"syscall"
	"unsafe"
)

const rawPeekSupported = true

// peekReadable reports whether fd has bytes to read, or an end or error
// to report, without taking anything from it. false makes RawConn.Read
// wait for the poller to say the socket is readable, then call it again;
// the peek comes first so bytes that arrived before the wait began are
// not missed.
func peekReadable(fd uintptr) bool {
	var b [1]byte
	_, _, errno := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1, syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	return errno != syscall.EAGAIN && errno != syscall.EWOULDBLOCK
}
