package broker

import (
	"errors"
	"net"
	"os"
	"sync/atomic"
	"time"
)

// slackConn lets the broker lengthen the deadlines mochi sets on a
// connection. mochi closes a silent client at keepalive + keepalive/2 in
// whole seconds, so an odd keepalive is cut half a second early (keepalive
// 1 s closes at 1 s, not 1.5 s), against [MQTT-3.1.2-24]. OnConnect sets the
// missing half second as slack on the client's connection.
type slackConn interface {
	net.Conn
	setDeadlineSlack(time.Duration)
}

// deadlineConn wraps a stream connection (TCP, TLS, unix, WebSocket) with
// the keepalive slack and a bound on stalled writes.
type deadlineConn struct {
	net.Conn
	slack atomic.Int64 // nanoseconds added to every non-zero deadline

	// writeTimeout bounds how long one write may go without the client
	// taking any data (0: no bound, mochi's deadlines only).
	writeTimeout time.Duration
	stalled      atomic.Bool
}

func (c *deadlineConn) setDeadlineSlack(d time.Duration) { c.slack.Store(int64(d)) }

// SetDeadline is how mochi sets its keepalive deadline, on every packet it
// reads. With a write timeout it only applies to reads: mochi writes to a
// client while holding that client's lock, and a publisher routing a QoS
// 1/2 message to the client waits for the same lock (to take a packet id),
// so a client that keeps sending PINGREQs but stops reading would otherwise
// hold every such publisher indefinitely.
func (c *deadlineConn) SetDeadline(t time.Time) error {
	if !t.IsZero() {
		t = t.Add(time.Duration(c.slack.Load()))
	}
	if c.writeTimeout > 0 {
		return c.Conn.SetReadDeadline(t)
	}
	return c.Conn.SetDeadline(t)
}

// writeChunk is how much one write deadline covers: a client must take at
// least writeChunk bytes per write timeout.
const writeChunk = 64 << 10

// Write gives every chunk of b its own deadline and closes the connection
// when the client takes nothing for a whole write timeout: a half-written
// packet cannot be resumed, and mochi ignores write errors.
func (c *deadlineConn) Write(b []byte) (int, error) {
	if c.writeTimeout <= 0 {
		return c.Conn.Write(b)
	}
	written := 0
	for written < len(b) {
		end := min(len(b), written+writeChunk)
		if err := c.Conn.SetWriteDeadline(time.Now().Add(c.writeTimeout)); err != nil {
			return written, err
		}
		n, err := c.Conn.Write(b[written:end])
		written += n
		if err != nil {
			if timedOut(err) {
				c.stalled.Store(true)
				_ = c.Conn.Close()
				return written, ErrWriteStalled
			}
			return written, err
		}
	}
	return written, nil
}

// Read reports a connection closed for a stalled write as such, so that
// the disconnect is counted and reported with its cause.
func (c *deadlineConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if err != nil && c.stalled.Load() {
		return n, ErrWriteStalled
	}
	return n, err
}

// keepaliveSlack is what mochi's integer arithmetic leaves out of 1.5 x
// keepalive for keepalive k, in seconds.
func keepaliveSlack(k uint16) time.Duration {
	if k%2 == 1 {
		return 500 * time.Millisecond
	}
	return 0
}

func timedOut(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}
