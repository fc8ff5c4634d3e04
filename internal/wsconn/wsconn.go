// Package wsconn adapts a gorilla WebSocket connection to net.Conn for MQTT
// over WebSocket: MQTT bytes travel in binary messages [MQTT-6.0.0-1], a
// packet may span messages and a message may hold several packets
// [MQTT-6.0.0-2]. The broker, the client and the load generator share it.
package wsconn

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// ErrNotBinary is returned by Read when the peer sends a non-binary frame,
// a protocol error for MQTT [MQTT-6.0.0-1].
var ErrNotBinary = errors.New("wsconn: websocket frame is not binary")

// Conn is a WebSocket connection as a byte stream. Read and Write are each
// safe to call from one goroutine at a time; Write also serialises with
// SetWriteDeadline, which gorilla does not allow concurrently with a write.
type Conn struct {
	*websocket.Conn
	rmu sync.Mutex
	wmu sync.Mutex
	r   io.Reader
}

var _ net.Conn = (*Conn)(nil)

// New wraps c.
func New(c *websocket.Conn) *Conn { return &Conn{Conn: c} }

// Read reads across message boundaries. A close from the peer is io.EOF.
func (c *Conn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for {
		if c.r == nil {
			mt, r, err := c.NextReader()
			if err != nil {
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					return 0, io.EOF
				}
				return 0, err
			}
			if mt != websocket.BinaryMessage {
				return 0, ErrNotBinary
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if errors.Is(err, io.EOF) {
			c.r = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

// Write sends p as one binary message.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// SetWriteDeadline sets the write deadline under the write lock.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.Conn.SetWriteDeadline(t)
}

// SetDeadline sets both deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	return errors.Join(c.SetReadDeadline(t), c.SetWriteDeadline(t))
}
