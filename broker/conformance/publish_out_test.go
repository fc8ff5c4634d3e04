package conformance_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/courier-mqtt/courier/internal/mqtttest"
)

// Section 3.3: the PUBLISH packets the broker sends.

// The DUP flag of an outgoing PUBLISH says only whether that packet is a
// resend: 0 on the first attempt, also for messages queued while the
// subscriber was away, 1 when the same packet goes out again.
func TestOutboundPublishDUP(t *testing.T) {
	t.Parallel()
	for _, store := range []bool{false, true} {
		for _, ver := range outVersions {
			t.Run(fmt.Sprintf("%s/store=%v", ver.name, store), func(t *testing.T) {
				t.Parallel()
				srv := outBroker(t, store, nil)
				v := ver.v
				sub, _ := outSession(t, srv.TCPAddr, v, "dup-sub")
				sub.Subscribe(1, mqtttest.Sub{Filter: "dup/#", Options: 1})
				outLeave(sub)

				pub := outClient(t, srv.TCPAddr, v, "dup-pub")
				// The publisher's own DUP flag is not passed on. [MQTT-3.3.1-3] [MQTT-3.3.1-3@3.1.1]
				outPublishAcked(pub, mqtttest.Publish{Topic: "dup/a", QoS: 1, PacketID: 7, Dup: true, Payload: []byte("queued")})

				// First attempt of a message queued while the session was offline:
				// DUP 0. [MQTT-3.3.1-3] [MQTT-3.3.1-3@3.1.1]
				sub, present := outSession(t, srv.TCPAddr, v, "dup-sub")
				if !present {
					t.Fatal("session not present")
				}
				first := sub.ExpectPublish()
				if string(first.Payload) != "queued" || first.QoS != 1 {
					t.Fatalf("got %+v", first)
				}
				if first.Dup {
					t.Error("first delivery of a queued message has DUP 1 [MQTT-3.3.1-3]")
				}
				// A live QoS 1 message, not acknowledged either.
				outPublishAcked(pub, mqtttest.Publish{Topic: "dup/b", QoS: 1, PacketID: 8, Payload: []byte("live")})
				live := sub.ExpectPublish()
				if live.Dup {
					t.Error("first delivery of a live message has DUP 1 [MQTT-3.3.1-3]")
				}
				outCut(sub)

				// Both are resent after the reconnect, with DUP 1 and their packet
				// ids. [MQTT-3.3.1-1] [MQTT-3.3.1-1@3.1.1] [MQTT-4.4.0-1] [MQTT-4.4.0-1@3.1.1]
				sub, _ = outSession(t, srv.TCPAddr, v, "dup-sub")
				again := sub.ExpectPublishes(2)
				for i, want := range []mqtttest.Message{first, live} {
					got := again[i]
					if !got.Dup || got.PacketID != want.PacketID || !bytes.Equal(got.Payload, want.Payload) {
						t.Errorf("resend %d: got dup=%v id=%d %q, want dup=1 id=%d %q", i, got.Dup, got.PacketID, got.Payload, want.PacketID, want.Payload)
					}
					sub.SendAck(mqtttest.PUBACK, got.PacketID)
				}
				// QoS 0 messages never have DUP set. [MQTT-3.3.1-2] [MQTT-3.3.1-2@3.1.1] [MQTT-4.3.1-1] [MQTT-4.3.1-1@3.1.1]
				outPublishAcked(pub, mqtttest.Publish{Topic: "dup/c", QoS: 0, Dup: false, Payload: []byte("q0")})
				if m := sub.ExpectPublish(); m.Dup || m.QoS != 0 {
					t.Errorf("QoS 0 delivery: %+v", m)
				}
				sub.Quiet(50 * time.Millisecond)
			})
		}
	}
}

// A message parked because the subscriber's Receive Maximum was reached is
// sent for the first time when the quota frees: DUP 0, and its own id.
func TestOutboundPublishDUPAfterReceiveMaximum(t *testing.T) {
	t.Parallel()
	srv := outBroker(t, false, nil)
	sub := outClient(t, srv.TCPAddr, 5, "rm-dup-sub", mqtttest.Short(mqtttest.PropReceiveMaximum, 1))
	sub.Subscribe(1, mqtttest.Sub{Filter: "rmdup", Options: 1})
	pub := outClient(t, srv.TCPAddr, 5, "rm-dup-pub")
	for i := range 3 {
		outPublishAcked(pub, mqtttest.Publish{Topic: "rmdup", QoS: 1, PacketID: uint16(i + 1), Payload: []byte{byte('a' + i)}})
	}
	for i := range 3 {
		m := sub.ExpectPublish()
		// [MQTT-3.3.1-3] [MQTT-4.3.2-2]
		if m.Dup || m.Payload[0] != byte('a'+i) {
			t.Fatalf("delivery %d: dup=%v payload %q", i, m.Dup, m.Payload)
		}
		sub.Quiet(30 * time.Millisecond) // [MQTT-3.3.4-9]: one at a time
		sub.SendAck(mqtttest.PUBACK, m.PacketID)
	}
}
