//go:build !linux

package proxy

import (
	"context"
	"errors"
	"net"
)

// lane is Linux's: elsewhere fasthttp serves every entrypoint.
type lane struct{}

func newLane(*Server, int, map[string]*net.TCPListener, map[string]*handoffListener) (*lane, error) {
	return nil, errors.New("HTTP event loops need Linux")
}

func (*lane) shutdown(context.Context) {}
func (*lane) stop()                    {}
