//go:build !linux

package proxy

import "net"

// rawIO leaves reads and writes to the TCPConn where the engine's raw
// system calls are not built.
type rawIO struct{}

func (*rawIO) init(*net.TCPConn) {}

func (*rawIO) read(tc *net.TCPConn, p []byte) (int, error) { return tc.Read(p) }

func (*rawIO) write(tc *net.TCPConn, p []byte) (int, error) { return tc.Write(p) }
