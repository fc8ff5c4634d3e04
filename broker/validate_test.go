package broker

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"
)

// chunkConn is an in-memory net.Conn that returns its input in reads of at
// most chunk bytes, to drive validConn across every packet boundary.
type chunkConn struct {
	net.Conn
	in    *bytes.Reader
	chunk int
	out   bytes.Buffer
}

func (c *chunkConn) Read(p []byte) (int, error) {
	if len(p) > c.chunk {
		p = p[:c.chunk]
	}
	return c.in.Read(p)
}
func (c *chunkConn) Write(p []byte) (int, error)      { return c.out.Write(p) }
func (c *chunkConn) SetWriteDeadline(time.Time) error { return nil }
func (c *chunkConn) SetReadDeadline(time.Time) error  { return nil }
func (c *chunkConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }

func testLimits() inboundLimits {
	return inboundLimits{maxPacket: 1 << 20, aliasMax: topicAliasMaximum, log: slog.New(slog.DiscardHandler)}
}

func v5Connect() []byte {
	return []byte{0x10, 16, 0, 4, 'M', 'Q', 'T', 'T', 5, 2, 0, 30, 0, 0, 3, 'a', 'b', 'c', 0}[:18]
}

func v5Publish(topic string, qos byte, id uint16, payload []byte) []byte {
	body := append([]byte{byte(len(topic) >> 8), byte(len(topic))}, topic...)
	if qos > 0 {
		body = append(body, byte(id>>8), byte(id))
	}
	body = append(body, 0) // no properties
	body = append(body, payload...)
	out := []byte{0x30 | qos<<1}
	for n := len(body); ; {
		b := byte(n % 128)
		n /= 128
		if n > 0 {
			b |= 0x80
		}
		out = append(out, b)
		if n == 0 {
			break
		}
	}
	return append(out, body...)
}

// TestValidConnChunking feeds the same stream in every chunk size: valid
// packets pass through byte for byte, and the offending packet never
// reaches the reader whole (its start may, when it spans reads: mochi then
// waits for the rest and gets the error instead).
func TestValidConnChunking(t *testing.T) {
	connect := v5Connect()
	good := bytes.Join([][]byte{connect, v5Publish("a/b", 1, 1, []byte("hello")), v5Publish("c", 0, 0, make([]byte, 300)), {0xC0, 0}}, nil)
	bad := v5Publish("a/#", 0, 0, []byte("x"))
	for chunk := 1; chunk <= len(good)+len(bad); chunk++ {
		in := &chunkConn{in: bytes.NewReader(append(append([]byte{}, good...), bad...)), chunk: chunk}
		c := &validConn{Conn: in, lim: testLimits()}
		got, err := io.ReadAll(c)
		if len(got) < len(good) || len(got) >= len(good)+len(bad) || !bytes.Equal(got, append(append([]byte{}, good...), bad...)[:len(got)]) {
			t.Fatalf("chunk %d: passed %d bytes, want the %d before the bad packet and less than it", chunk, len(got), len(good))
		}
		if err == nil || in.out.Len() == 0 || in.out.Bytes()[0] != 0xE0 || in.out.Bytes()[2] != 0x82 {
			t.Fatalf("chunk %d: err %v, answer % x; want DISCONNECT 0x82", chunk, err, in.out.Bytes())
		}
	}
}

// BenchmarkValidConnPublish measures the layer alone on a stream of MQTT 5
// QoS 1 PUBLISH packets with 64-byte payloads, read in 4 KiB chunks as
// mochi's buffered reader does.
func BenchmarkValidConnPublish(b *testing.B) {
	pk := v5Publish("bench/topic/0", 1, 7, make([]byte, 64))
	stream := bytes.Repeat(pk, 4096/len(pk)+1)
	c := &validConn{Conn: &chunkConn{}, lim: testLimits(), version: 5, connected: true}
	b.SetBytes(int64(len(pk)))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if n+len(pk) > len(stream) {
			n = 0
		}
		if _, v := c.scan(stream[n : n+len(pk)]); v != nil {
			b.Fatal(v.why)
		}
		n += len(pk)
	}
}

// TestQoS2InReleasedByRefusal: a PUBREC or PUBACK refusing a QoS 2 PUBLISH
// (reason 0x80 or more) ends its flow and frees its Receive Maximum slot;
// 0x91 answers a resend and does not.
func TestQoS2InReleasedByRefusal(t *testing.T) {
	var q qos2In
	for id := uint16(1); id <= 3; id++ {
		if v := q.publish(id, 3); v != nil {
			t.Fatal(v.why)
		}
	}
	if v := q.publish(4, 3); v == nil || v.code != 0x93 {
		t.Fatalf("fourth open QoS 2 PUBLISH: %v, want 0x93", v)
	}
	// One write with three packets: PUBREC 0x91 for 1, PUBACK 0x87 for 2,
	// a PUBLISH, and PUBREC 0x80 for 3.
	q.sent(bytes.Join([][]byte{{0x50, 3, 0, 1, 0x91}, {0x40, 4, 0, 2, 0x87, 0}, {0x30, 3, 0, 1, 'a'}, {0x50, 3, 0, 3, 0x80}}, nil))
	if q.n.Load() != 1 {
		t.Fatalf("%d flows open, want 1 (id 1)", q.n.Load())
	}
	if v := q.publish(1, 3); v != nil {
		t.Fatalf("resend of open id 1 refused: %s", v.why)
	}
}
