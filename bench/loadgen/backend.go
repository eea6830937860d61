package main

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"net"

	"github.com/valyala/fasthttp"
)

// runBackend serves "ok" with an X-Backend header on every path, and a
// WebSocket echo on any request that asks to upgrade.
func runBackend(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("backend", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:9001", "address to serve on")
	name := fs.String("name", "b1", "value of the X-Backend header")
	fs.Parse(args)

	ln, err := net.Listen("tcp4", *listen)
	if err != nil {
		return err
	}
	body := []byte("ok\n")
	srv := &fasthttp.Server{
		Name:                 "bench",
		NoDefaultDate:        true,
		NoDefaultContentType: true,
		Concurrency:          1 << 20,
		Handler: func(c *fasthttp.RequestCtx) {
			c.Response.Header.Set("X-Backend", *name)
			if string(c.Request.Header.Peek("Upgrade")) != "" {
				key := c.Request.Header.Peek("Sec-WebSocket-Key")
				if len(key) == 0 {
					c.Error("no Sec-WebSocket-Key", fasthttp.StatusBadRequest)
					return
				}
				c.SetStatusCode(fasthttp.StatusSwitchingProtocols)
				c.Response.Header.Set("Upgrade", "websocket")
				c.Response.Header.Set("Connection", "Upgrade")
				c.Response.Header.Set("Sec-WebSocket-Accept", acceptKey(key))
				c.Hijack(echo)
				return
			}
			c.SetBody(body)
		},
	}
	go func() { <-ctx.Done(); ln.Close() }()
	fmt.Printf("backend %s on %s\n", *name, ln.Addr())
	if err := srv.Serve(ln); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

func acceptKey(key []byte) string {
	h := sha1.New()
	h.Write(key)
	h.Write([]byte("258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// echo answers every WebSocket data frame with the same payload, pings with
// pongs, and a close with a close.
func echo(c net.Conn) {
	br := bufio.NewReaderSize(c, 512)
	var hdr [14]byte
	var payload []byte
	for {
		if _, err := io.ReadFull(br, hdr[:2]); err != nil {
			return
		}
		op := hdr[0] & 0x0f
		masked := hdr[1]&0x80 != 0
		n := uint64(hdr[1] & 0x7f)
		switch n {
		case 126:
			if _, err := io.ReadFull(br, hdr[2:4]); err != nil {
				return
			}
			n = uint64(binary.BigEndian.Uint16(hdr[2:4]))
		case 127:
			if _, err := io.ReadFull(br, hdr[2:10]); err != nil {
				return
			}
			n = binary.BigEndian.Uint64(hdr[2:10])
		}
		if n > 1<<20 {
			return
		}
		var mask [4]byte
		if masked {
			if _, err := io.ReadFull(br, mask[:]); err != nil {
				return
			}
		}
		if uint64(cap(payload)) < n {
			payload = make([]byte, n)
		}
		payload = payload[:n]
		if _, err := io.ReadFull(br, payload); err != nil {
			return
		}
		if masked {
			for i := range payload {
				payload[i] ^= mask[i&3]
			}
		}
		switch op {
		case 0x8: // close
			writeFrame(c, 0x8, payload)
			return
		case 0x9: // ping
			op = 0xA
		case 0xA: // pong
			continue
		}
		if err := writeFrame(c, op, payload); err != nil {
			return
		}
	}
}

func writeFrame(w io.Writer, op byte, p []byte) error {
	buf := make([]byte, 0, 10+len(p))
	buf = append(buf, 0x80|op)
	switch {
	case len(p) < 126:
		buf = append(buf, byte(len(p)))
	case len(p) < 1<<16:
		buf = append(buf, 126, byte(len(p)>>8), byte(len(p)))
	default:
		buf = append(buf, 127)
		buf = binary.BigEndian.AppendUint64(buf, uint64(len(p)))
	}
	buf = append(buf, p...)
	_, err := w.Write(buf)
	return err
}
