package integration_test

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"

	"github.com/courier-mqtt/courier/broker"
	"github.com/courier-mqtt/courier/broker/brokertest"
)

// rawConn speaks MQTT 3.1.1 byte by byte, to hold acks back on purpose.
type rawConn struct {
	c net.Conn
	r *bufio.Reader
}

func dialRaw(t testing.TB, srv *brokertest.Server) *rawConn {
	t.Helper()
	c := srv.Dial(t)
	_ = c.SetDeadline(time.Now().Add(waitFor))
	return &rawConn{c: c, r: bufio.NewReader(c)}
}

func (rc *rawConn) send(t testing.TB, b []byte) {
	t.Helper()
	if _, err := rc.c.Write(b); err != nil {
		t.Fatal(err)
	}
}

// read returns the next packet's first byte and body.
func (rc *rawConn) read(t testing.TB) (byte, []byte) {
	t.Helper()
	h, err := rc.r.ReadByte()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	n, mult := 0, 1
	for {
		b, err := rc.r.ReadByte()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		n += int(b&0x7f) * mult
		mult *= 128
		if b&0x80 == 0 {
			break
		}
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(rc.r, body); err != nil {
		t.Fatalf("read: %v", err)
	}
	return h, body
}

func frame(header byte, body []byte) []byte { return append([]byte{header, byte(len(body))}, body...) }

func connect311(id string, clean bool) []byte {
	flags := byte(0)
	if clean {
		flags = 0x02
	}
	body := append(mqttString("MQTT"), 4, flags, 0, 30)
	return frame(0x10, append(body, mqttString(id)...))
}

func subscribe311(id uint16, filter string, qos byte) []byte {
	body := append([]byte{byte(id >> 8), byte(id)}, mqttString(filter)...)
	return frame(0x82, append(body, qos))
}

// TestSubscribeWithPacketIDOfServersInflightPublishIsGranted: a client
// resumes a session and the broker resends a queued QoS 1 PUBLISH with
// packet id 1. Before acking it, the client subscribes with packet id 1 —
// allowed, since client and server number their packets independently
// [MQTT-2.2.1-3] (the spec's own example is a client sending id 0x1234 while
// receiving a different 0x1234). The SUBSCRIBE must be granted. Every client
// that renews or adds subscriptions at connect (ours does) runs into this.
func TestSubscribeWithPacketIDOfServersInflightPublishIsGranted(t *testing.T) {
	t.Parallel()
	srv := brokertest.Start(t, brokertest.WithoutStore())
	id := unique("pid")

	first := dialRaw(t, srv)
	first.send(t, connect311(id, false))
	if h, body := first.read(t); h != 0x20 || body[1] != 0 {
		t.Fatalf("CONNACK %#x %x", h, body)
	}
	first.send(t, subscribe311(1, "pid/"+id, 1))
	if h, body := first.read(t); h != 0x90 || body[2] != 1 {
		t.Fatalf("SUBACK %#x %x", h, body)
	}
	first.send(t, []byte{0xE0, 0})
	_ = first.c.Close()

	pub := dialV3(t, srv.TCPAddr, id+"-pub", true, nil)
	pub.publish(t, "pid/"+id, 1, false, "queued")

	back := dialRaw(t, srv)
	back.send(t, connect311(id, false))
	if h, body := back.read(t); h != 0x20 || body[0] != 1 {
		t.Fatalf("CONNACK %#x %x, want session present", h, body)
	}
	h, body := back.read(t)
	if h&0xf0 != 0x30 || body[len(body)-len("queued")-2] != 0 || body[len(body)-len("queued")-1] != 1 {
		t.Fatalf("want the queued PUBLISH with packet id 1, got %#x %x", h, body)
	}
	back.send(t, subscribe311(1, "other/"+id, 0))
	h, body = back.read(t)
	if h != 0x90 || body[0] != 0 || body[1] != 1 || body[2] != 0 {
		t.Errorf("SUBACK %#x %x: want packet id 1 granted QoS 0", h, body)
	}
}

// connect5 is an MQTT 5 CONNECT with clean start and no properties.
func connect5(id string) []byte {
	body := append(mqttString("MQTT"), 5, 0x02, 0, 30, 0)
	return frame(0x10, append(body, mqttString(id)...))
}

// TestServerAndClientQoS2FlowsWithTheSamePacketIDAreIndependent: while the
// broker's QoS 2 PUBLISH with packet id N to a client is unacknowledged, the
// client publishes its own QoS 2 message with id N. The two flows are
// independent [MQTT-2.2.1-3]: finishing the broker's flow (PUBREC N, PUBREL
// N, PUBCOMP N) must not touch the client's, whose PUBREL N must then be
// answered PUBCOMP 0x00. The scale test sees the failure as "reason code
// 0x92" from about 5% of QoS 2 publishes whose message was in fact
// delivered once: an application that retries on that error duplicates.
func TestServerAndClientQoS2FlowsWithTheSamePacketIDAreIndependent(t *testing.T) {
	t.Parallel()
	srv := brokertest.Start(t, brokertest.WithoutStore())
	id := unique("q2id")
	rc := dialRaw(t, srv)
	rc.send(t, connect5(id))
	if h, body := rc.read(t); h != 0x20 || body[1] != 0 {
		t.Fatalf("CONNACK %#x %x", h, body)
	}
	sub := append([]byte{0, 1, 0}, mqttString("q2id/"+id)...)
	rc.send(t, frame(0x82, append(sub, 2)))
	if h, body := rc.read(t); h != 0x90 || body[len(body)-1] != 2 {
		t.Fatalf("SUBACK %#x %x", h, body)
	}
	pub := dialV5(t, srv.TCPAddr, id+"-pub", true, 0, nil)
	pub.publish(t, "q2id/"+id, 2, false, "from the broker")

	h, body := rc.read(t)
	if h&0xf6 != 0x34 {
		t.Fatalf("want a QoS 2 PUBLISH, got %#x %x", h, body)
	}
	tl := int(body[0])<<8 | int(body[1])
	n := body[2+tl : 4+tl] // the broker's packet id

	// The client's own QoS 2 PUBLISH with the same id.
	own := append(mqttString("q2id/elsewhere"), n[0], n[1], 0)
	rc.send(t, frame(0x34, append(own, "from the client"...)))
	if h, body := rc.read(t); h != 0x50 || body[0] != n[0] || body[1] != n[1] || (len(body) > 2 && body[2] >= 0x80) {
		t.Fatalf("PUBREC for the client's publish: %#x %x", h, body)
	}
	// Finish the broker's flow.
	rc.send(t, frame(0x50, []byte{n[0], n[1]}))
	if h, body := rc.read(t); h != 0x62 || (len(body) > 2 && body[2] >= 0x80) {
		t.Fatalf("PUBREL for the broker's publish: %#x %x", h, body)
	}
	rc.send(t, frame(0x70, []byte{n[0], n[1]}))
	// Finish the client's flow.
	rc.send(t, frame(0x62, []byte{n[0], n[1]}))
	h, body = rc.read(t)
	if h != 0x70 || (len(body) > 2 && body[2] != 0) {
		t.Errorf("PUBCOMP for the client's PUBREL: %#x %x, want reason 0x00", h, body)
	}
}

// TestClientPublishReusingAnInflightIDDoesNotCancelTheServersMessage: the
// broker's QoS 1 PUBLISH with id N to a client is unacknowledged when the
// client publishes its own QoS 1 message with id N (allowed: the sides
// number independently [MQTT-2.2.1-3]). The client then loses its
// connection before acking. When it resumes its session, the broker's
// message must be resent [MQTT-4.4.0-1]: QoS 1 is at least once.
func TestClientPublishReusingAnInflightIDDoesNotCancelTheServersMessage(t *testing.T) {
	t.Parallel()
	srv := brokertest.Start(t, brokertest.WithoutStore())
	id := unique("cancel")
	topic := "cancel/" + id
	rc := dialRaw(t, srv)
	rc.send(t, connect311(id, false))
	if h, body := rc.read(t); h != 0x20 || body[1] != 0 {
		t.Fatalf("CONNACK %#x %x", h, body)
	}
	rc.send(t, subscribe311(1, topic, 1))
	if h, _ := rc.read(t); h != 0x90 {
		t.Fatalf("SUBACK %#x", h)
	}
	pub := dialV3(t, srv.TCPAddr, id+"-pub", true, nil)
	pub.publish(t, topic, 1, false, "owed")
	h, body := rc.read(t)
	if h&0xf6 != 0x32 {
		t.Fatalf("want a QoS 1 PUBLISH, got %#x %x", h, body)
	}
	n := body[2+len(topic) : 4+len(topic)]
	own := append(mqttString("cancel/elsewhere"), n[0], n[1])
	rc.send(t, frame(0x32, append(own, "mine"...)))
	if h, body := rc.read(t); h != 0x40 || body[0] != n[0] || body[1] != n[1] {
		t.Fatalf("PUBACK for the client's publish: %#x %x", h, body)
	}
	_ = rc.c.Close() // gone before acking "owed"

	obs := observe(t, srv, broker.EventClientConnected)
	rc = dialRaw(t, srv)
	rc.send(t, connect311(id, false))
	if h, body := rc.read(t); h != 0x20 || body[0] != 1 {
		t.Fatalf("CONNACK %#x %x, want session present", h, body)
	}
	awaitBrokerEvent(t, obs, broker.EventClientConnected, id)
	pub.publish(t, topic, 1, false, "fence")
	if got, _ := readPublishes(t, rc, topic, 1); got[0] != "owed" {
		t.Errorf("first message after resuming: %q, want the unacknowledged \"owed\" resent", got[0])
	}
}
