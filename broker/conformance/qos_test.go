package conformance_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/courier-mqtt/courier/internal/mqtttest"
)

// Sections 4.3 and 4.4 with the acknowledgements of 3.4-3.7: QoS 1 and 2
// flows in both directions, and what is resent after a reconnect.

// outQoSPair connects a subscriber (with a session) on "q/#" at QoS 2 and a
// publisher, both of version v.
func outQoSPair(t *testing.T, store bool, v byte, id string) (srvAddr string, sub, pub *mqtttest.Conn) {
	t.Helper()
	srv := outBroker(t, store, nil)
	sub, _ = outSession(t, srv.TCPAddr, v, id+"-sub")
	sub.Subscribe(1, mqtttest.Sub{Filter: "q/#", Options: 2})
	pub = outClient(t, srv.TCPAddr, v, id+"-pub")
	return srv.TCPAddr, sub, pub
}

// The broker's QoS 2 flow to a subscriber: PUBLISH, PUBREC, PUBREL,
// PUBCOMP. Once it has sent PUBREL it never sends the PUBLISH again; a
// reconnect resends the PUBREL.
func TestOutboundQoS2Flow(t *testing.T) {
	t.Parallel()
	for _, store := range []bool{false, true} {
		for _, ver := range outVersions {
			t.Run(fmt.Sprintf("%s/store=%v", ver.name, store), func(t *testing.T) {
				t.Parallel()
				v := ver.v
				addr, sub, pub := outQoSPair(t, store, v, "q2")
				outPublishAcked(pub, mqtttest.Publish{Topic: "q/a", QoS: 2, PacketID: 1, Payload: []byte("a")})
				m := sub.ExpectPublish()
				// [MQTT-4.3.3-2] [MQTT-4.3.3-1@3.1.1]
				if m.QoS != 2 || m.Dup || m.PacketID == 0 {
					t.Fatalf("PUBLISH %+v", m)
				}
				// Unacknowledged, it comes again on the next connection
				// [MQTT-4.3.3-3] [MQTT-4.4.0-1] [MQTT-4.4.0-1@3.1.1].
				outCut(sub)
				sub, _ = outSession(t, addr, v, "q2-sub")
				if again := sub.ExpectPublish(); again.PacketID != m.PacketID || !again.Dup {
					t.Fatalf("resend %+v", again)
				}
				sub.SendAck(mqtttest.PUBREC, m.PacketID)
				// PUBREL with the same id [MQTT-4.3.3-4] [MQTT-2.2.1-5] [MQTT-2.3.1-6@3.1.1]
				rel := sub.Expect(mqtttest.PUBREL)
				if rel.Flags() != 0x02 {
					t.Errorf("PUBREL flags %#x, want 0x02", rel.Flags())
				}
				if a, _ := rel.Ack(v); a.PacketID != m.PacketID {
					t.Fatalf("PUBREL for %d, want %d", a.PacketID, m.PacketID)
				}
				// Cut before PUBCOMP: the PUBREL is resent, never the PUBLISH
				// [MQTT-4.3.3-5] [MQTT-4.3.3-6] [MQTT-4.4.0-1] [MQTT-4.3.3-1@3.1.1] [MQTT-4.4.0-1@3.1.1].
				outCut(sub)
				sub, _ = outSession(t, addr, v, "q2-sub")
				p := sub.Next()
				if p.Type() != mqtttest.PUBREL {
					t.Fatalf("after PUBREC and a reconnect: %s, want PUBREL", p)
				}
				sub.SendAck(mqtttest.PUBCOMP, m.PacketID)
				if got := sub.Ping(); len(got) > 0 {
					t.Fatalf("after PUBCOMP: %v", got)
				}
				outCut(sub)
				sub, _ = outSession(t, addr, v, "q2-sub")
				if got := sub.Ping(); len(got) > 0 {
					t.Fatalf("completed flow resent: %v", got)
				}
			})
		}
	}
}

// A PUBREC with a failure reason ends the QoS 2 flow: no PUBREL, and the
// message is not sent again [MQTT-4.4.0-2]. It also gives back the
// Receive Maximum quota, so the next message is sent [MQTT-4.9.0-2].
func TestOutboundQoS2RefusedByPubrec(t *testing.T) {
	t.Parallel()
	srv := outBroker(t, false, nil)
	sub, _ := outSession(t, srv.TCPAddr, 5, "q2r-sub", mqtttest.Short(mqtttest.PropReceiveMaximum, 1))
	sub.Subscribe(1, mqtttest.Sub{Filter: "q/#", Options: 2})
	pub := outClient(t, srv.TCPAddr, 5, "q2r-pub")
	outPublishAcked(pub, mqtttest.Publish{Topic: "q/a", QoS: 2, PacketID: 1, Payload: []byte("a")})
	outPublishAcked(pub, mqtttest.Publish{Topic: "q/b", QoS: 2, PacketID: 2, Payload: []byte("b")})
	m := sub.ExpectPublish()
	sub.Send(mqtttest.Ack(5, mqtttest.PUBREC, m.PacketID, 0x80))
	next := sub.ExpectPublish()
	if string(next.Payload) != "b" {
		t.Fatalf("after the refused message: %+v", next)
	}
	sub.SendAck(mqtttest.PUBREC, next.PacketID)
	sub.ExpectAck(mqtttest.PUBREL)
	sub.SendAck(mqtttest.PUBCOMP, next.PacketID)
	outCut(sub)
	sub, _ = outSession(t, srv.TCPAddr, 5, "q2r-sub")
	if got := sub.Ping(); len(got) > 0 {
		t.Fatalf("refused message resent: %v", got)
	}
}

// QoS 1 to a subscriber: each message with its own unused packet id, resent
// with DUP 1 until the PUBACK, in publish order both times
// [MQTT-4.3.2-1] [MQTT-4.3.2-2] [MQTT-4.3.2-3] [MQTT-2.2.1-4] [MQTT-4.6.0-5] [MQTT-4.6.0-6]
// [MQTT-4.3.2-1@3.1.1] [MQTT-2.3.1-4@3.1.1] [MQTT-4.6.0-5@3.1.1] [MQTT-4.6.0-6@3.1.1].
func TestOutboundQoS1Flow(t *testing.T) {
	t.Parallel()
	for _, ver := range outVersions {
		t.Run(ver.name, func(t *testing.T) {
			t.Parallel()
			v := ver.v
			addr, sub, pub := outQoSPair(t, true, v, "q1")
			const n = 6
			for i := range n {
				outPublishAcked(pub, mqtttest.Publish{Topic: "q/a", QoS: 1, PacketID: uint16(i + 1), Payload: []byte{'a' + byte(i)}})
			}
			first := sub.ExpectPublishes(n)
			ids := map[uint16]bool{}
			for i, m := range first {
				if m.PacketID == 0 || ids[m.PacketID] || m.Dup || m.Payload[0] != 'a'+byte(i) {
					t.Fatalf("delivery %d: %+v", i, m)
				}
				ids[m.PacketID] = true
			}
			sub.SendAck(mqtttest.PUBACK, first[0].PacketID)
			sub.Ping()
			outCut(sub)
			sub, _ = outSession(t, addr, v, "q1-sub")
			for i, want := range first[1:] {
				again := sub.ExpectPublish()
				if again.PacketID != want.PacketID || !again.Dup || again.Payload[0] != want.Payload[0] {
					t.Fatalf("resend %d: %+v, want id %d payload %q", i, again, want.PacketID, want.Payload)
				}
				sub.SendAck(mqtttest.PUBACK, again.PacketID)
			}
			if got := sub.Ping(); len(got) > 0 {
				t.Fatalf("acknowledged message resent: %v", got)
			}
		})
	}
}

// The broker as QoS 1 and QoS 2 receiver.
func TestInboundQoSFlows(t *testing.T) {
	t.Parallel()
	for _, ver := range outVersions {
		t.Run(ver.name, func(t *testing.T) {
			t.Parallel()
			v := ver.v
			srv := outBroker(t, false, nil)
			sub := outClient(t, srv.TCPAddr, v, "in-sub")
			sub.Subscribe(1, mqtttest.Sub{Filter: "in/#", Options: 0})
			c := outClient(t, srv.TCPAddr, v, "in-pub")

			// QoS 1: PUBACK with the id; the same id again is a new message
			// [MQTT-4.3.2-4] [MQTT-4.3.2-5] [MQTT-4.3.2-2@3.1.1] [MQTT-3.3.4-1] [MQTT-3.3.4-1@3.1.1].
			for _, payload := range []string{"one", "two"} {
				c.Publish(mqtttest.Publish{Topic: "in/1", QoS: 1, PacketID: 5, Payload: []byte(payload)})
				if a := c.ExpectAck(mqtttest.PUBACK); a.PacketID != 5 {
					t.Fatalf("PUBACK for %d", a.PacketID)
				}
				if m := sub.ExpectPublish(); string(m.Payload) != payload {
					t.Fatalf("delivered %q, want %q", m.Payload, payload)
				}
			}

			// QoS 2: PUBREC; a resend before PUBREL gets PUBREC again and is not
			// delivered twice; PUBREL gets PUBCOMP; then the id is free for a
			// new message [MQTT-4.3.3-8] [MQTT-4.3.3-10] [MQTT-4.3.3-11]
			// [MQTT-4.3.3-12] [MQTT-4.3.3-2@3.1.1].
			for _, payload := range []string{"three", "four"} {
				c.Publish(mqtttest.Publish{Topic: "in/2", QoS: 2, PacketID: 6, Payload: []byte(payload)})
				if a := c.ExpectAck(mqtttest.PUBREC); a.PacketID != 6 || a.Reason != 0 {
					t.Fatalf("PUBREC %+v", a)
				}
				c.Publish(mqtttest.Publish{Topic: "in/2", QoS: 2, PacketID: 6, Dup: true, Payload: []byte(payload)})
				if a := c.ExpectAck(mqtttest.PUBREC); a.PacketID != 6 || a.Reason != 0 {
					t.Fatalf("PUBREC for the resend %+v", a)
				}
				c.SendAck(mqtttest.PUBREL, 6)
				if a := c.ExpectAck(mqtttest.PUBCOMP); a.PacketID != 6 || a.Reason != 0 {
					t.Fatalf("PUBCOMP %+v", a)
				}
				if m := sub.ExpectPublish(); string(m.Payload) != payload {
					t.Fatalf("delivered %q, want %q", m.Payload, payload)
				}
				sub.Quiet(30 * time.Millisecond)
			}
			if v == 5 {
				// PUBREL for an id with no flow: PUBCOMP 0x92 [MQTT-3.7.2-1].
				c.SendAck(mqtttest.PUBREL, 77)
				if a := c.ExpectAck(mqtttest.PUBCOMP); a.PacketID != 77 || a.Reason != 0x92 {
					t.Fatalf("PUBCOMP for an unknown id: %+v", a)
				}
			}
		})
	}
}

// Acknowledgements that do not match the broker's flow. A PUBACK, PUBREC or
// PUBCOMP for an id the broker has no flow for is ignored (PUBREC gets
// PUBREL 0x92 in MQTT 5); the wrong kind for a flow is a protocol error
// that closes the connection [MQTT-4.13.1-1] [MQTT-4.8.0-1@3.1.1], and the
// message is not lost: it comes again on the next connection.
func TestOutboundWrongAcknowledgements(t *testing.T) {
	t.Parallel()
	rows := []struct {
		name string
		qos  byte // of the broker's PUBLISH
		ack  byte // the client's answer
	}{
		{"PUBACK for QoS 2", 2, mqtttest.PUBACK},
		{"PUBCOMP for QoS 2 before PUBREC", 2, mqtttest.PUBCOMP},
		{"PUBREC for QoS 1", 1, mqtttest.PUBREC},
		{"PUBCOMP for QoS 1", 1, mqtttest.PUBCOMP},
	}
	for _, ver := range outVersions {
		for _, row := range rows {
			t.Run(ver.name+"/"+row.name, func(t *testing.T) {
				t.Parallel()
				v := ver.v
				addr, sub, pub := outQoSPair(t, false, v, "wrong")
				outPublishAcked(pub, mqtttest.Publish{Topic: "q/a", QoS: row.qos, PacketID: 1, Payload: []byte("a")})
				m := sub.ExpectPublish()
				sub.SendAck(row.ack, m.PacketID)
				reason := sub.ExpectClosed()
				if v == 5 && reason != 0x82 {
					t.Errorf("DISCONNECT reason %d, want 0x82", reason)
				}
				if v != 5 && reason != -1 {
					t.Errorf("3.1.1 connection got a DISCONNECT")
				}
				sub, _ = outSession(t, addr, v, "wrong-sub")
				again := sub.ExpectPublish()
				if again.PacketID != m.PacketID || string(again.Payload) != "a" {
					t.Fatalf("after the protocol error: %+v", again)
				}
			})
		}
		t.Run(ver.name+"/unknown ids", func(t *testing.T) {
			t.Parallel()
			v := ver.v
			_, sub, pub := outQoSPair(t, false, v, "unknown")
			// The client's own QoS 2 flow holds id 9: acknowledgements for 9
			// are not the broker's and must leave that flow alone.
			sub.Publish(mqtttest.Publish{Topic: "own", QoS: 2, PacketID: 9, Payload: []byte("own")})
			sub.ExpectAck(mqtttest.PUBREC)
			for _, ack := range []byte{mqtttest.PUBACK, mqtttest.PUBCOMP, mqtttest.PUBREC} {
				for _, id := range []uint16{9, 4242} {
					sub.SendAck(ack, id)
					got := sub.Ping()
					if ack == mqtttest.PUBREC && v == 5 {
						if len(got) != 1 || got[0].Type() != mqtttest.PUBREL {
							t.Fatalf("PUBREC for unknown id %d: %v, want PUBREL 0x92", id, got)
						}
						if a, _ := got[0].Ack(5); a.Reason != 0x92 || a.PacketID != id {
							t.Fatalf("PUBREL %+v, want 0x92 for %d", a, id)
						}
						continue
					}
					if ack == mqtttest.PUBREC && len(got) == 1 && got[0].Type() == mqtttest.PUBREL {
						continue // 3.1.1 has no reason codes: a bare PUBREL is the answer mochi gives
					}
					if len(got) > 0 {
						t.Fatalf("%s for unknown id %d: %v", mqtttest.TypeName(ack), id, got)
					}
				}
			}
			// The client's QoS 2 flow is intact: PUBREL completes it normally.
			sub.SendAck(mqtttest.PUBREL, 9)
			if a := sub.ExpectAck(mqtttest.PUBCOMP); a.Reason != 0 {
				t.Fatalf("PUBCOMP for the client's own flow: %+v", a)
			}
			// And the broker's flows still work.
			outPublishAcked(pub, mqtttest.Publish{Topic: "q/a", QoS: 1, PacketID: 1, Payload: []byte("a")})
			m := sub.ExpectPublish()
			sub.SendAck(mqtttest.PUBACK, m.PacketID)
			if got := sub.Ping(); len(got) > 0 {
				t.Fatalf("then: %v", got)
			}
		})
	}
}
