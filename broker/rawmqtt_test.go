package broker_test

import (
	"bufio"
	"errors"
	"net"
	"testing"
	"time"

	mt "github.com/courier-mqtt/courier/internal/mqtttest"
)

// Raw MQTT framing for tests that must control every byte on the wire: thin
// adapters over internal/mqtttest for the older tests of this package.

func varint(n int) []byte                   { return mt.Varint(n) }
func str(s string) []byte                   { return mt.Str(s) }
func frame(header byte, body []byte) []byte { return mt.Frame(header, body) }

// connectPacket builds a CONNECT: version 3 (MQIsdp), 4 or 5, clean session.
func connectPacket(version byte, clientID string, keepalive uint16) []byte {
	return mt.Connect{Version: version, ClientID: clientID, Keepalive: keepalive, Clean: true}.Encode()
}

type packet struct {
	header byte
	body   []byte
}

func (p packet) kind() byte { return p.header >> 4 }

// readPacket reads one MQTT packet or returns the read error.
func newReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }

func readPacket(r *bufio.Reader) (packet, error) {
	p, err := mt.ReadPacket(r)
	return packet{p.Header, p.Body}, err
}

// rawClient is a hand-driven MQTT connection.
type rawClient struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

func dialRaw(t testing.TB, network, addr string) *rawClient {
	t.Helper()
	c, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &rawClient{t: t, conn: c, r: bufio.NewReader(c)}
}

func (c *rawClient) send(b []byte) {
	c.t.Helper()
	if _, err := c.conn.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *rawClient) read(timeout time.Duration) (packet, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(timeout))
	return readPacket(c.r)
}

// connect sends CONNECT and requires a successful CONNACK, which it returns.
func (c *rawClient) connect(version byte, id string, keepalive uint16) packet {
	c.t.Helper()
	c.send(connectPacket(version, id, keepalive))
	p, err := c.read(5 * time.Second)
	if err != nil {
		c.t.Fatalf("read CONNACK: %v", err)
	}
	if p.kind() != 2 || len(p.body) < 2 || p.body[1] != 0 {
		c.t.Fatalf("want successful CONNACK, got header %#x body %x", p.header, p.body)
	}
	return p
}

// expectClosed waits for the broker to close the connection, skipping any
// packets (such as a DISCONNECT) it sends first.
func (c *rawClient) expectClosed(timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		_, err := c.read(time.Until(deadline))
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			break
		}
		return // EOF or reset: closed
	}
	c.t.Fatalf("connection still open after %s", timeout)
}

// serverKeepAlive returns a v5 CONNACK's Server Keep Alive, if it has one.
func serverKeepAlive(connack packet) (uint16, bool) {
	ca, err := mt.Packet{Header: connack.header, Body: connack.body}.Connack(5)
	if err != nil {
		return 0, false
	}
	p, ok := ca.Props.Get(mt.PropServerKeepAlive)
	return uint16(p.Value), ok
}
