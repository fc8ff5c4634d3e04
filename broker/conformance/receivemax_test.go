package conformance_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/courier-mqtt/courier/broker"
	"github.com/courier-mqtt/courier/internal/mqtttest"
)

// Receive Maximum towards a client (3.3.4, 4.9): never more unacknowledged
// QoS 1/2 PUBLISHes than the client allows, live and after a reconnect, and
// the messages of one publisher on one topic in publish order (4.6).

// outWindow reads the deliveries of n messages with payloads "m00".."m(n-1)"
// acknowledging one at a time, checking that no more than window are ever
// outstanding and that they arrive in order.
func outWindow(t *testing.T, c *mqtttest.Conn, n, window int, dupOK func(i int) bool) {
	t.Helper()
	var outstanding []mqtttest.Message
	next := 0
	for next < n {
		for len(outstanding) < window && next+len(outstanding) < n {
			outstanding = append(outstanding, c.ExpectPublish())
		}
		// The window is full (or every message is out): nothing more comes
		// until an acknowledgement [MQTT-3.3.4-9] [MQTT-4.9.0-2].
		c.Quiet(40 * time.Millisecond)
		m := outstanding[0]
		outstanding = outstanding[1:]
		// [MQTT-4.6.0-5] [MQTT-4.6.0-6]
		if want := fmt.Sprintf("m%02d", next); string(m.Payload) != want {
			t.Fatalf("delivery %d: %q, want %q", next, m.Payload, want)
		}
		if m.Dup && (dupOK == nil || !dupOK(next)) {
			t.Errorf("delivery %d has DUP 1 [MQTT-3.3.1-3]", next)
		}
		c.SendAck(mqtttest.PUBACK, m.PacketID)
		next++
	}
	if got := c.Ping(); len(got) > 0 {
		t.Fatalf("after all %d: %v", n, got)
	}
}

// [MQTT-4.9.0-1]: the window opens at the client's Receive Maximum.
func TestReceiveMaximumLive(t *testing.T) {
	t.Parallel()
	for _, store := range []bool{false, true} {
		t.Run(fmt.Sprintf("store=%v", store), func(t *testing.T) {
			t.Parallel()
			srv := outBroker(t, store, nil)
			sub, _ := outSession(t, srv.TCPAddr, 5, "rml-sub", mqtttest.Short(mqtttest.PropReceiveMaximum, 2))
			sub.Subscribe(1, mqtttest.Sub{Filter: "rm/#", Options: 1})
			pub := outClient(t, srv.TCPAddr, 5, "rml-pub")
			const n = 8
			for i := range n {
				outPublishAcked(pub, mqtttest.Publish{Topic: "rm/x", QoS: 1, PacketID: uint16(i + 1), Payload: fmt.Appendf(nil, "m%02d", i)})
			}
			outWindow(t, sub, n, 2, nil)
		})
	}
}

// Messages queued while the subscriber was away come back no more than
// Receive Maximum at a time (the value of the new connection), in order.
func TestReceiveMaximumAfterReconnect(t *testing.T) {
	t.Parallel()
	for _, store := range []bool{false, true} {
		t.Run(fmt.Sprintf("store=%v", store), func(t *testing.T) {
			t.Parallel()
			srv := outBroker(t, store, nil)
			rm := mqtttest.Short(mqtttest.PropReceiveMaximum, 2)
			sub, _ := outSession(t, srv.TCPAddr, 5, "rmr-sub", rm)
			sub.Subscribe(1, mqtttest.Sub{Filter: "rm/#", Options: 1})
			pub := outClient(t, srv.TCPAddr, 5, "rmr-pub")
			const n = 8
			// Two are sent and left unacknowledged, the rest wait behind them.
			for i := range 4 {
				outPublishAcked(pub, mqtttest.Publish{Topic: "rm/x", QoS: 1, PacketID: uint16(i + 1), Payload: fmt.Appendf(nil, "m%02d", i)})
			}
			sub.ExpectPublishes(2)
			outGone(t, srv, sub, "rmr-sub", true)
			// The rest are queued while it is away.
			for i := 4; i < n; i++ {
				outPublishAcked(pub, mqtttest.Publish{Topic: "rm/x", QoS: 1, PacketID: uint16(i + 1), Payload: fmt.Appendf(nil, "m%02d", i)})
			}
			sub, _ = outSession(t, srv.TCPAddr, 5, "rmr-sub", rm)
			outWindow(t, sub, n, 2, func(i int) bool { return i < 2 })
		})
	}
}

// With the client's quota used up the broker still answers everything that
// is not a PUBLISH [MQTT-3.3.4-10] [MQTT-4.9.0-3].
func TestReceiveMaximumOtherPackets(t *testing.T) {
	t.Parallel()
	srv := outBroker(t, false, nil)
	sub := outClient(t, srv.TCPAddr, 5, "rmo-sub", mqtttest.Short(mqtttest.PropReceiveMaximum, 1))
	sub.Subscribe(1, mqtttest.Sub{Filter: "rmo/#", Options: 1})
	pub := outClient(t, srv.TCPAddr, 5, "rmo-pub")
	outPublishAcked(pub, mqtttest.Publish{Topic: "rmo/a", QoS: 1, PacketID: 1, Payload: []byte("a")})
	outPublishAcked(pub, mqtttest.Publish{Topic: "rmo/b", QoS: 1, PacketID: 2, Payload: []byte("b")})
	first := sub.ExpectPublish()
	if got := sub.Ping(); len(got) > 0 {
		t.Fatalf("beyond the quota: %v", got)
	}
	sub.Subscribe(2, mqtttest.Sub{Filter: "rmo/other", Options: 0})
	sub.Publish(mqtttest.Publish{Topic: "rmo-own", QoS: 1, PacketID: 3, Payload: []byte("own")})
	if a := sub.ExpectAck(mqtttest.PUBACK); a.PacketID != 3 {
		t.Fatalf("PUBACK %+v", a)
	}
	sub.Send(mqtttest.Unsubscribe(5, 4, nil, "rmo/other"))
	sub.ExpectSuback(mqtttest.UNSUBACK)
	sub.SendAck(mqtttest.PUBACK, first.PacketID)
	if m := sub.ExpectPublish(); string(m.Payload) != "b" {
		t.Fatalf("after the acknowledgement: %+v", m)
	}
}

// The same after a broker restart: the store gives the session back, and
// the resend still respects Receive Maximum and order. (After a restart the
// broker cannot tell which of the restored messages it had sent before, so
// DUP is not checked here.)
func TestReceiveMaximumAfterRestart(t *testing.T) {
	t.Parallel()
	srv := outBroker(t, true, nil)
	rm := mqtttest.Short(mqtttest.PropReceiveMaximum, 2)
	sub, _ := outSession(t, srv.TCPAddr, 5, "rms-sub", rm)
	sub.Subscribe(1, mqtttest.Sub{Filter: "rm/#", Options: 1})
	outGone(t, srv, sub, "rms-sub", false)
	pub := outClient(t, srv.TCPAddr, 5, "rms-pub")
	const n = 6
	for i := range n {
		outPublishAcked(pub, mqtttest.Publish{Topic: "rm/x", QoS: 1, PacketID: uint16(i + 1), Payload: fmt.Appendf(nil, "m%02d", i)})
	}
	srv.Restart(t)
	sub, present := outSession(t, srv.TCPAddr, 5, "rms-sub", rm)
	if !present {
		t.Fatal("session lost in the restart")
	}
	outWindow(t, sub, n, 2, func(int) bool { return true })
}

// The broker's Receive Maximum limits the client's unacknowledged QoS 1/2
// PUBLISHes only [MQTT-3.3.4-7]: the broker's own QoS 2 messages to the
// client, waiting for PUBCOMP, do not count. mochi counted them and
// disconnected the client with 0x93 (the validating layer now keeps this
// count instead of mochi).
func TestReceiveMaximumInboundNotUsedByOutboundQoS2(t *testing.T) {
	t.Parallel()
	srv := outBroker(t, false, func(c *broker.Config) { c.Limits.ReceiveMaximum = 2 })
	c := outClient(t, srv.TCPAddr, 5, "rq")
	c.Subscribe(1, mqtttest.Sub{Filter: "rq", Options: 2})
	pub := outClient(t, srv.TCPAddr, 5, "rq-pub")
	var pending []uint16
	for i := range 3 {
		outPublishAcked(pub, mqtttest.Publish{Topic: "rq", QoS: 2, PacketID: uint16(i + 1), Payload: []byte("x")})
		m := c.ExpectPublish()
		c.SendAck(mqtttest.PUBREC, m.PacketID)
		c.SendAck(mqtttest.PUBREC, m.PacketID) // a repeated PUBREC changes nothing either
		c.ExpectAck(mqtttest.PUBREL)
		c.ExpectAck(mqtttest.PUBREL)
		pending = append(pending, m.PacketID)
	}
	// Two QoS 2 PUBLISHes of its own, the broker's maximum, are accepted.
	for _, id := range []uint16{10, 11} {
		c.Publish(mqtttest.Publish{Topic: "other", QoS: 2, PacketID: id, Payload: []byte("y")})
		if a := c.ExpectAck(mqtttest.PUBREC); a.PacketID != id || a.Reason != 0 {
			t.Fatalf("PUBREC %+v", a)
		}
	}
	for _, id := range pending {
		c.SendAck(mqtttest.PUBCOMP, id)
	}
	for _, id := range []uint16{10, 11} {
		c.SendAck(mqtttest.PUBREL, id)
		c.ExpectAck(mqtttest.PUBCOMP)
	}
	// And again, after the broker's flows completed.
	for _, id := range []uint16{12, 13} {
		c.Publish(mqtttest.Publish{Topic: "other", QoS: 2, PacketID: id, Payload: []byte("y")})
		if a := c.ExpectAck(mqtttest.PUBREC); a.PacketID != id || a.Reason != 0 {
			t.Fatalf("PUBREC %+v", a)
		}
	}
	// A third one is over the maximum [MQTT-3.3.4-7].
	c.Publish(mqtttest.Publish{Topic: "other", QoS: 2, PacketID: 14, Payload: []byte("y")})
	if r := c.ExpectClosed(); r != 0x93 {
		t.Fatalf("over the Receive Maximum: DISCONNECT %d, want 0x93", r)
	}
}
