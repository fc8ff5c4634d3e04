package broker_test

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// Raw MQTT framing for tests that must control every byte on the wire.

func varint(n int) []byte {
	var out []byte
	for {
		b := byte(n % 128)
		n /= 128
		if n > 0 {
			b |= 0x80
		}
		out = append(out, b)
		if n == 0 {
			return out
		}
	}
}

func str(s string) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(len(s)))
	return append(b, s...)
}

func frame(header byte, body []byte) []byte {
	return append(append([]byte{header}, varint(len(body))...), body...)
}

// connectPacket builds a CONNECT: version 3 (MQIsdp), 4 or 5, clean session.
func connectPacket(version byte, clientID string, keepalive uint16) []byte {
	var body []byte
	if version == 3 {
		body = append(body, str("MQIsdp")...)
	} else {
		body = append(body, str("MQTT")...)
	}
	body = append(body, version, 0x02) // clean session
	body = binary.BigEndian.AppendUint16(body, keepalive)
	if version == 5 {
		body = append(body, 0) // no properties
	}
	body = append(body, str(clientID)...)
	return frame(0x10, body)
}

type packet struct {
	header byte
	body   []byte
}

func (p packet) kind() byte { return p.header >> 4 }

// readPacket reads one MQTT packet or returns the read error.
func newReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }

func readPacket(r *bufio.Reader) (packet, error) {
	h, err := r.ReadByte()
	if err != nil {
		return packet{}, err
	}
	n, mult := 0, 1
	for i := 0; ; i++ {
		b, err := r.ReadByte()
		if err != nil {
			return packet{}, err
		}
		n += int(b&0x7f) * mult
		if b&0x80 == 0 {
			break
		}
		mult *= 128
		if i > 3 {
			return packet{}, errors.New("bad remaining length")
		}
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return packet{}, err
	}
	return packet{h, body}, nil
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

// v5 properties are not parsed here; serverKeepAlive scans a v5 CONNACK's
// properties for Server Keep Alive (0x13).
func serverKeepAlive(connack packet) (uint16, bool) {
	if len(connack.body) < 3 {
		return 0, false
	}
	n, i, mult := 0, 2, 1
	for {
		b := connack.body[i]
		i++
		n += int(b&0x7f) * mult
		if b&0x80 == 0 {
			break
		}
		mult *= 128
	}
	props := connack.body[i : i+n]
	for j := 0; j < len(props); {
		id := props[j]
		j++
		switch id {
		case 0x13:
			return binary.BigEndian.Uint16(props[j:]), true
		case 0x21, 0x22: // two-byte integers
			j += 2
		case 0x24, 0x25, 0x28, 0x29, 0x2A: // bytes
			j++
		case 0x27, 0x11: // four-byte integers
			j += 4
		case 0x12, 0x1F, 0x1A, 0x1C, 0x15: // strings
			j += 2 + int(binary.BigEndian.Uint16(props[j:]))
		case 0x26: // user property
			j += 2 + int(binary.BigEndian.Uint16(props[j:]))
			j += 2 + int(binary.BigEndian.Uint16(props[j:]))
		default:
			return 0, false
		}
	}
	return 0, false
}
