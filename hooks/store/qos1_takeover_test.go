package store

import (
	"testing"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// The publisher's connection dies between mochi storing the PUBACK of a
// QoS 1 PUBLISH and writing it, and the client's new connection clones the
// session meanwhile. mochi had not delivered the message, yet the new
// connection sent the inherited PUBACK right after its CONNACK: a client
// taking it as the answer to its unacknowledged PUBLISH never resends, and
// the message is lost. The resumed session must wait for the resend and
// deliver it.
func TestQoS1PubackInheritedMidPublishIsNotResent(t *testing.T) {
	takeoverVariants(t, func(t *testing.T, oldFirst bool, mods ...func(*brokerCfg)) {
		gate := newTakeoverGate(mqtt.OnQosPublish, packets.Puback, true, oldFirst)
		b := startBroker(t, t.TempDir(), append(mods, withHooks(gate))...)
		sub, _ := dial(t, b.addr, "sub", connOpt{expiry: 300})
		sub.subscribe(1, packets.Subscription{Filter: "alo/#", Qos: 1})
		pub, _ := dial(t, b.addr, "pub", connOpt{expiry: 300, noAck: true})

		first := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, TopicName: "alo/t", PacketID: 4, Payload: []byte("m")}
		pub.write(first)
		for range pub.in { // cut before the PUBACK
		}
		pub, ack := dial(t, b.addr, "pub", connOpt{expiry: 300, noAck: true})
		if !ack.SessionPresent {
			t.Fatal("publisher session lost")
		}
		gate.waitCloned(t)
		// mochi resends a session's inflight packets right after the CONNACK,
		// before it reads anything: a stale PUBACK comes before the PINGRESP.
		pub.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pingreq}})
		pub.next(packets.Pingresp)
		first.FixedHeader.Dup = true
		pub.write(first)
		if a := pub.next(packets.Puback); a.PacketID != 4 {
			t.Fatalf("puback id %d", a.PacketID)
		}
		if got := sub.receive(1); got[0] != "m" {
			t.Fatalf("subscriber got %q", got[0])
		}
	})
}
