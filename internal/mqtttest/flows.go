package mqtttest

import (
	"errors"
	"net"
	"time"
)

// Publish sends a PUBLISH built from p, encoded for the Conn's version.
func (c *Conn) Publish(p Publish) {
	c.T.Helper()
	p.Version = c.Version
	c.Send(p.Encode())
}

// SendAck sends a PUBACK, PUBREC, PUBREL or PUBCOMP (kind) for id with
// reason code 0.
func (c *Conn) SendAck(kind byte, id uint16) {
	c.T.Helper()
	c.Send(Ack(c.Version, kind, id, 0))
}

// Ping sends a PINGREQ and reads until its PINGRESP, returning every other
// packet that arrived first. A server handles one connection's packets in
// order, so the PINGRESP means everything sent before it was processed.
func (c *Conn) Ping() []Packet {
	c.T.Helper()
	c.Send(Pingreq())
	var before []Packet
	for {
		p := c.Next()
		if p.Type() == PINGRESP {
			return before
		}
		before = append(before, p)
	}
}

// ExpectPublishes reads n packets, each a PUBLISH.
func (c *Conn) ExpectPublishes(n int) []Message {
	c.T.Helper()
	out := make([]Message, 0, n)
	for range n {
		out = append(out, c.ExpectPublish())
	}
	return out
}

// Drain reads packets until none arrives for quiet, and returns them; it
// fails the test if the connection closes.
func (c *Conn) Drain(quiet time.Duration) []Packet {
	c.T.Helper()
	var got []Packet
	for {
		p, err := c.Read(quiet)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return got
			}
			c.T.Fatalf("drain: %v (after %v)", err, got)
		}
		got = append(got, p)
	}
}
