package conformance_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/courier-mqtt/courier/internal/mqtttest"
)

// Maximum Packet Size (3.1.2.11.4 and the Reason String / User Property
// rules of every acknowledgement): what the broker sends a client that
// announced a maximum.

// A PUBLISH larger than the subscriber's maximum is not sent; the broker
// carries on as if it had been delivered, so it holds no packet id or
// Receive Maximum quota for it and never resends it.
func TestMaximumPacketSizePublishDropped(t *testing.T) {
	t.Parallel()
	for _, store := range []bool{false, true} {
		for _, qos := range []byte{0, 1, 2} {
			t.Run(fmt.Sprintf("qos%d/store=%v", qos, store), func(t *testing.T) {
				t.Parallel()
				srv := outBroker(t, store, nil)
				props := [][]byte{
					mqtttest.Int(mqtttest.PropMaximumPacketSize, 64),
					mqtttest.Short(mqtttest.PropReceiveMaximum, 1),
				}
				sub, _ := outSession(t, srv.TCPAddr, 5, "mps-sub", props...)
				sub.Subscribe(1, mqtttest.Sub{Filter: "mps/#", Options: qos})
				pub := outClient(t, srv.TCPAddr, 5, "mps-pub")
				big := bytes.Repeat([]byte("x"), 100)
				outPublishAcked(pub, mqtttest.Publish{Topic: "mps/big", QoS: qos, PacketID: 1, Payload: big})
				outPublishAcked(pub, mqtttest.Publish{Topic: "mps/small", QoS: qos, PacketID: 2, Payload: []byte("s")})

				// [MQTT-3.1.2-24] the big one never arrives; [MQTT-3.1.2-25] the
				// small one is not held back behind it by Receive Maximum 1.
				m := sub.ExpectPublish()
				if m.Topic != "mps/small" {
					t.Fatalf("got %q (%d bytes of payload)", m.Topic, len(m.Payload))
				}
				if qos == 0 {
					sub.Quiet(50 * time.Millisecond)
					return
				}
				outCut(sub)

				// [MQTT-3.1.2-25] after a reconnect only the small one is resent,
				// and the connection stays up.
				sub, present := outSession(t, srv.TCPAddr, 5, "mps-sub", props...)
				if !present {
					t.Fatal("session lost")
				}
				m = sub.ExpectPublish()
				if m.Topic != "mps/small" || !m.Dup {
					t.Fatalf("resend: %+v", m)
				}
				if qos == 1 {
					sub.SendAck(mqtttest.PUBACK, m.PacketID)
				} else {
					sub.SendAck(mqtttest.PUBREC, m.PacketID)
					sub.ExpectAck(mqtttest.PUBREL)
					sub.SendAck(mqtttest.PUBCOMP, m.PacketID)
				}
				if got := sub.Ping(); len(got) > 0 {
					t.Fatalf("after the resend: %v", got)
				}
			})
		}
	}
}

// A message queued while the subscriber was away, and too large for the
// maximum it announces when it comes back, is dropped, not resent: mochi's
// failed resend closed the connection on every reconnect.
func TestMaximumPacketSizeOnReconnect(t *testing.T) {
	t.Parallel()
	srv := outBroker(t, true, nil)
	sub, _ := outSession(t, srv.TCPAddr, 5, "mpsr-sub")
	sub.Subscribe(1, mqtttest.Sub{Filter: "mpsr/#", Options: 1})
	outGone(t, srv, sub, "mpsr-sub", false)
	pub := outClient(t, srv.TCPAddr, 5, "mpsr-pub")
	outPublishAcked(pub, mqtttest.Publish{Topic: "mpsr/big", QoS: 1, PacketID: 1, Payload: bytes.Repeat([]byte("x"), 200)})
	outPublishAcked(pub, mqtttest.Publish{Topic: "mpsr/small", QoS: 1, PacketID: 2, Payload: []byte("s")})

	sub, _ = outSession(t, srv.TCPAddr, 5, "mpsr-sub", mqtttest.Int(mqtttest.PropMaximumPacketSize, 100))
	m := sub.ExpectPublish() // [MQTT-3.1.2-24] [MQTT-3.1.2-25]
	if m.Topic != "mpsr/small" || m.Dup {
		t.Fatalf("got %q dup=%v", m.Topic, m.Dup)
	}
	sub.SendAck(mqtttest.PUBACK, m.PacketID)
	if got := sub.Ping(); len(got) > 0 {
		t.Fatalf("then: %v", got)
	}
}

// The User Properties of a PUBLISH are part of the message: a message they
// make too large is dropped, never delivered without them.
func TestMaximumPacketSizeKeepsPublishUserProperties(t *testing.T) {
	t.Parallel()
	srv := outBroker(t, false, nil)
	sub := outClient(t, srv.TCPAddr, 5, "mpsu-sub", mqtttest.Int(mqtttest.PropMaximumPacketSize, 60))
	sub.Subscribe(1, mqtttest.Sub{Filter: "mpsu/#", Options: 1})
	pub := outClient(t, srv.TCPAddr, 5, "mpsu-pub")
	outPublishAcked(pub, mqtttest.Publish{Topic: "mpsu/a", QoS: 1, PacketID: 1, Payload: []byte("p"),
		Props: [][]byte{mqtttest.User("key", strings.Repeat("v", 50))}})
	outPublishAcked(pub, mqtttest.Publish{Topic: "mpsu/b", QoS: 1, PacketID: 2, Payload: []byte("p"),
		Props: [][]byte{mqtttest.User("k", "v")}})
	m := sub.ExpectPublish()
	// [MQTT-3.1.2-24] [MQTT-3.3.2-17]
	if u := m.Props.All(mqtttest.PropUserProperty); m.Topic != "mpsu/b" || len(u) != 1 || u[0].Key != "k" {
		t.Fatalf("got %q with user properties %+v", m.Topic, u)
	}
}

// Acknowledgements leave out their User Properties (which mochi copies from
// the packet they answer) and Reason String rather than exceed the client's
// maximum; they are always sent. The check is on the whole packet, so it
// holds whichever of the two would have pushed it over.
func TestMaximumPacketSizeAcknowledgementProperties(t *testing.T) {
	t.Parallel()
	srv := outBroker(t, false, nil)
	const max = 40
	long := mqtttest.User("k", strings.Repeat("v", 30)) // fits mochi's miscount, not the packet
	c := outClient(t, srv.TCPAddr, 5, "mpsa", mqtttest.Int(mqtttest.PropMaximumPacketSize, max))
	check := func(rule string, p mqtttest.Packet) {
		t.Helper()
		if len(p.Bytes()) > max {
			t.Errorf("%s: %s is %d bytes, maximum %d", rule, mqtttest.TypeName(p.Type()), len(p.Bytes()), max)
		}
	}

	// PUBACK [MQTT-3.4.2-3]
	c.Publish(mqtttest.Publish{Topic: "a", QoS: 1, PacketID: 1, Props: [][]byte{long}})
	check("[MQTT-3.4.2-2] [MQTT-3.4.2-3]", c.Expect(mqtttest.PUBACK))
	// PUBREC [MQTT-3.5.2-3], PUBCOMP [MQTT-3.7.2-3]
	c.Publish(mqtttest.Publish{Topic: "a", QoS: 2, PacketID: 2, Props: [][]byte{long}})
	check("[MQTT-3.5.2-2] [MQTT-3.5.2-3]", c.Expect(mqtttest.PUBREC))
	c.Send(mqtttest.Ack(5, mqtttest.PUBREL, 2, 0, long))
	check("[MQTT-3.7.2-3]", c.Expect(mqtttest.PUBCOMP))
	// PUBREL with Reason String "packet identifier not found" [MQTT-3.6.2-2]
	// and the PUBREC's User Property [MQTT-3.6.2-3].
	c.Send(mqtttest.Ack(5, mqtttest.PUBREC, 99, 0, long))
	rel := c.Expect(mqtttest.PUBREL)
	check("[MQTT-3.6.2-2] [MQTT-3.6.2-3]", rel)
	if a, _ := rel.Ack(5); a.Reason != 0x92 {
		t.Errorf("PUBREL for an unknown id: reason %#x, want 0x92", a.Reason)
	}
	// PUBCOMP 0x92 for a PUBREL with an unknown id [MQTT-3.7.2-2]
	c.Send(mqtttest.Ack(5, mqtttest.PUBREL, 98, 0, long))
	comp := c.Expect(mqtttest.PUBCOMP)
	check("[MQTT-3.7.2-2]", comp)
	if a, _ := comp.Ack(5); a.Reason != 0x92 {
		t.Errorf("PUBCOMP for an unknown id: reason %#x, want 0x92", a.Reason)
	}
	// SUBACK [MQTT-3.9.2-2], UNSUBACK [MQTT-3.11.2-2]
	c.Send(mqtttest.Subscribe(5, 3, [][]byte{long}, mqtttest.Sub{Filter: "x", Options: 0}))
	check("[MQTT-3.9.2-1] [MQTT-3.9.2-2]", c.Expect(mqtttest.SUBACK))
	c.Send(mqtttest.Unsubscribe(5, 4, [][]byte{long}, "x"))
	check("[MQTT-3.11.2-1] [MQTT-3.11.2-2]", c.Expect(mqtttest.UNSUBACK))
	if got := c.Ping(); len(got) > 0 {
		t.Fatalf("then: %v", got)
	}
}

// Dropping the last message of a burst does not hold back the ones before
// it: mochi writes a burst in batches, flushed by the burst's last packet.
func TestMaximumPacketSizeDropAtEndOfBurst(t *testing.T) {
	t.Parallel()
	srv := outBroker(t, false, nil)
	sub := outClient(t, srv.TCPAddr, 5, "mpsb-sub", mqtttest.Int(mqtttest.PropMaximumPacketSize, 64))
	sub.Subscribe(1, mqtttest.Sub{Filter: "mpsb/#", Options: 0})
	pub := outClient(t, srv.TCPAddr, 5, "mpsb-pub")
	const n = 200
	var burst [][]byte
	for i := range n {
		burst = append(burst, mqtttest.Publish{Topic: "mpsb/s", Payload: fmt.Appendf(nil, "%03d", i)}.Encode())
	}
	burst = append(burst, mqtttest.Publish{Topic: "mpsb/big", Payload: bytes.Repeat([]byte("x"), 100)}.Encode())
	pub.Send(burst...)
	for i := range n { // [MQTT-3.1.2-24]
		m, err := sub.Read(time.Second)
		if err != nil {
			t.Fatalf("after %d of %d messages: %v", i, n, err)
		}
		if m.Type() != mqtttest.PUBLISH {
			t.Fatalf("got %s", m)
		}
	}
	sub.Quiet(50 * time.Millisecond)
}
