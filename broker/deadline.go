package broker

import (
	"net"
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

// deadlineConn wraps a stream connection (TCP, TLS, unix) with slack.
type deadlineConn struct {
	net.Conn
	slack atomic.Int64 // nanoseconds added to every non-zero deadline
}

func (c *deadlineConn) setDeadlineSlack(d time.Duration) { c.slack.Store(int64(d)) }

func (c *deadlineConn) SetDeadline(t time.Time) error {
	if !t.IsZero() {
		t = t.Add(time.Duration(c.slack.Load()))
	}
	return c.Conn.SetDeadline(t)
}

// keepaliveSlack is what mochi's integer arithmetic leaves out of 1.5 x
// keepalive for keepalive k, in seconds.
func keepaliveSlack(k uint16) time.Duration {
	if k%2 == 1 {
		return 500 * time.Millisecond
	}
	return 0
}
