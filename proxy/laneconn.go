package proxy

import (
	"errors"
	"net"
	"net/netip"
	"time"
)

// laneConnInfo stands in for a loop's client connection where fasthttp's
// RequestCtx wants a net.Conn: it answers for the addresses (built when
// asked: latch itself reads only peer); reading and writing are the
// loop's, so those methods fail.
type laneConnInfo struct {
	peer   netip.Addr
	remote netip.AddrPort
	sock   localAddrer // looks the local address up, while the socket is open
}

// localAddrer is a loop's connection, asked for its local address.
type localAddrer interface{ localAddr() netip.AddrPort }

var errLaneConn = errors.New("an event loop's connection is read and written by its loop")

func (i *laneConnInfo) Read([]byte) (int, error)         { return 0, errLaneConn }
func (i *laneConnInfo) Write([]byte) (int, error)        { return 0, errLaneConn }
func (i *laneConnInfo) Close() error                     { return nil }
func (i *laneConnInfo) LocalAddr() net.Addr              { return net.TCPAddrFromAddrPort(i.sock.localAddr()) }
func (i *laneConnInfo) RemoteAddr() net.Addr             { return net.TCPAddrFromAddrPort(i.remote) }
func (i *laneConnInfo) SetDeadline(time.Time) error      { return nil }
func (i *laneConnInfo) SetReadDeadline(time.Time) error  { return nil }
func (i *laneConnInfo) SetWriteDeadline(time.Time) error { return nil }
