package store

import (
	"testing"

	"github.com/mochi-mqtt/server/v2/packets"
)

// Guards against mochi's processPublish deleting a client's outbound inflight
// message when the client publishes with the same packet id: the client's
// PUBACK for the outbound message is then ignored, the flow never completes,
// and the store would keep (and after a restart resend) the message forever.
func TestInboundPacketIDDoesNotEraseOutboundFlow(t *testing.T) {
	b := startBroker(t, t.TempDir())
	dual, _ := dial(t, b.addr, "dual", connOpt{expiry: 300, noAck: true})
	dual.subscribe(1, packets.Subscription{Filter: "to/dual", Qos: 1})
	pub, _ := dial(t, b.addr, "pub", connOpt{clean: true})
	pub.publish(1, "to/dual", 1, []byte("m"))
	msg := dual.next(packets.Publish)

	// dual publishes with the id of the message it has not acknowledged yet.
	dual.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, TopicName: "elsewhere", PacketID: msg.PacketID, Payload: []byte("x")})
	if ack := dual.next(packets.Puback); ack.PacketID != msg.PacketID {
		t.Fatalf("puback id %d", ack.PacketID)
	}
	dual.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: msg.PacketID})
	// A round trip proves the PUBACK was processed.
	dual.subscribe(2, packets.Subscription{Filter: "barrier", Qos: 0})
	cl, _ := b.srv.Clients.Get("dual")
	if n := cl.State.Inflight.Len(); n != 0 {
		t.Fatalf("%d inflight after the PUBACK", n)
	}
	if err := b.st.Sync(); err != nil {
		t.Fatal(err)
	}
	if keys, _ := b.st.keysWithPrefix(clientPrefix(kindOutbound, "dual")); len(keys) != 0 {
		t.Fatalf("store keeps %d records of a completed flow", len(keys))
	}
}
