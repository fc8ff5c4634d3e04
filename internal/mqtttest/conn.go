package mqtttest

import (
	"bufio"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// Timeout bounds every wait of a Conn unless a call takes its own.
const Timeout = 5 * time.Second

// Conn is a hand-driven MQTT connection for a test. Its methods fail the
// test (t.Fatalf) on any unexpected outcome; Read returns errors for tests
// that want to look at them.
type Conn struct {
	T       testing.TB
	C       net.Conn
	R       *bufio.Reader
	Version byte // the protocol version used to decode packets (3, 4 or 5)
}

// Dial opens a TCP connection to addr for a client of the protocol version
// and closes it when the test ends.
func Dial(t testing.TB, addr string, version byte) *Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, Timeout)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return Wrap(t, c, version)
}

// Wrap drives an existing connection.
func Wrap(t testing.TB, c net.Conn, version byte) *Conn {
	return &Conn{T: t, C: c, R: bufio.NewReader(c), Version: version}
}

// Send writes frames, failing the test on a write error.
func (c *Conn) Send(frames ...[]byte) {
	c.T.Helper()
	if _, err := c.C.Write(Cat(frames...)); err != nil {
		c.T.Fatalf("write: %v", err)
	}
}

// TrySend writes frames and returns the error: a broker may already have
// closed the connection.
func (c *Conn) TrySend(frames ...[]byte) error {
	_, err := c.C.Write(Cat(frames...))
	return err
}

// Read reads the next packet within timeout.
func (c *Conn) Read(timeout time.Duration) (Packet, error) {
	_ = c.C.SetReadDeadline(time.Now().Add(timeout))
	return ReadPacket(c.R)
}

// Next reads the next packet, failing the test if none arrives in Timeout.
func (c *Conn) Next() Packet {
	c.T.Helper()
	p, err := c.Read(Timeout)
	if err != nil {
		c.T.Fatalf("read: %v", err)
	}
	return p
}

// Expect reads the next packet and fails the test unless it has the type.
func (c *Conn) Expect(typ byte) Packet {
	c.T.Helper()
	p := c.Next()
	if p.Type() != typ {
		c.T.Fatalf("want %s, got %s", TypeName(typ), p)
	}
	return p
}

// ExpectPublish reads the next packet as a PUBLISH.
func (c *Conn) ExpectPublish() Message {
	c.T.Helper()
	m, err := c.Expect(PUBLISH).Publish(c.Version)
	if err != nil {
		c.T.Fatal(err)
	}
	return m
}

// ExpectAck reads the next packet as the acknowledgement typ (PUBACK ...
// PUBCOMP).
func (c *Conn) ExpectAck(typ byte) PubAck {
	c.T.Helper()
	a, err := c.Expect(typ).Ack(c.Version)
	if err != nil {
		c.T.Fatal(err)
	}
	return a
}

// ExpectSuback reads the next packet as a SUBACK (or UNSUBACK for
// typ UNSUBACK).
func (c *Conn) ExpectSuback(typ byte) Suback {
	c.T.Helper()
	s, err := c.Expect(typ).Suback(c.Version)
	if err != nil {
		c.T.Fatal(err)
	}
	return s
}

// Connect sends the CONNECT (its Version is set from the Conn's) and
// returns the CONNACK, whatever its reason code.
func (c *Conn) Connect(pk Connect) Connack {
	c.T.Helper()
	pk.Version = c.Version
	c.Send(pk.Encode())
	ca, err := c.Expect(CONNACK).Connack(c.Version)
	if err != nil {
		c.T.Fatal(err)
	}
	return ca
}

// MustConnect is Connect that also requires success (reason 0).
func (c *Conn) MustConnect(pk Connect) Connack {
	c.T.Helper()
	ca := c.Connect(pk)
	if ca.Reason != 0 {
		c.T.Fatalf("CONNECT refused: reason %#02x", ca.Reason)
	}
	return ca
}

// Subscribe subscribes and returns the SUBACK's codes.
func (c *Conn) Subscribe(id uint16, subs ...Sub) []byte {
	c.T.Helper()
	c.Send(Subscribe(c.Version, id, nil, subs...))
	s := c.ExpectSuback(SUBACK)
	if s.PacketID != id {
		c.T.Fatalf("SUBACK for packet id %d, want %d", s.PacketID, id)
	}
	return s.Codes
}

// Closed waits up to timeout for the server to close the connection and
// returns the packets it sent before closing (a DISCONNECT, say). It fails
// the test if the connection is still open at the deadline.
func (c *Conn) Closed(timeout time.Duration) []Packet {
	c.T.Helper()
	var got []Packet
	deadline := time.Now().Add(timeout)
	for {
		p, err := c.Read(time.Until(deadline))
		if err == nil {
			got = append(got, p)
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.T.Fatalf("connection still open after %s (received %v)", timeout, got)
		}
		if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !isReset(err) {
			c.T.Fatalf("waiting for close: %v", err)
		}
		return got
	}
}

// ExpectClosed requires the server to close the connection within Timeout,
// sending nothing but (for MQTT 5) at most one DISCONNECT, whose reason code
// it returns (-1 when there was none).
func (c *Conn) ExpectClosed() int {
	c.T.Helper()
	got := c.Closed(Timeout)
	switch {
	case len(got) == 0:
		return -1
	case len(got) == 1 && got[0].Type() == DISCONNECT:
		r, _, err := got[0].Disconnect()
		if err != nil {
			c.T.Fatal(err)
		}
		return int(r)
	}
	c.T.Fatalf("want the connection closed, got packets %v", got)
	return 0
}

// Quiet requires that no packet arrives for d and the connection stays
// open. A negative check can only be bounded in time: keep d short.
func (c *Conn) Quiet(d time.Duration) {
	c.T.Helper()
	p, err := c.Read(d)
	if err == nil {
		c.T.Fatalf("want no packet for %s, got %s", d, p)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		c.T.Fatalf("want the connection open for %s: %v", d, err)
	}
	// A packet that began to arrive exactly at the deadline would leave R
	// out of step; Quiet is for moments when nothing at all is expected.
}

func isReset(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe)
}
