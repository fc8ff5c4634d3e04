package store

import (
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// Issue 3 item 4. Guards against mochi answering a DUP resend of an
// unreleased QoS 2 PUBLISH with PUBREC 0x91, after which the publisher never
// releases the id and a later message reusing it is refused and lost.
func TestQoS2DuplicateIsAcknowledgedOnce(t *testing.T) {
	b := startBroker(t, t.TempDir())
	sub, _ := dial(t, b.addr, "sub", connOpt{clean: true})
	sub.subscribe(1, packets.Subscription{Filter: "q2/t", Qos: 2})
	pub, _ := dial(t, b.addr, "pub", connOpt{clean: true, noAck: true})

	first := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 2}, TopicName: "q2/t", PacketID: 7, Payload: []byte("one")}
	pub.write(first)
	if ack := pub.next(packets.Pubrec); ack.ReasonCode != 0 {
		t.Fatalf("pubrec %#x", ack.ReasonCode)
	}
	dup := first
	dup.FixedHeader.Dup = true
	pub.write(dup)
	if ack := pub.next(packets.Pubrec); ack.PacketID != 7 || ack.ReasonCode != 0 {
		t.Fatalf("pubrec for DUP: id %d reason %#x, want 7 0x00", ack.PacketID, ack.ReasonCode)
	}
	pub.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubrel}, PacketID: 7})
	if comp := pub.next(packets.Pubcomp); comp.ReasonCode != 0 {
		t.Fatalf("pubcomp %#x", comp.ReasonCode)
	}
	if got := sub.receive(1); got[0] != "one" {
		t.Fatalf("got %v", got)
	}

	// The id is free again: a new message with it is accepted and delivered.
	pub.publish(7, "q2/t", 2, []byte("two"))
	if got := sub.receive(1); got[0] != "two" {
		t.Fatalf("got %v", got)
	}
	sub.none(200 * time.Millisecond)
}

// Issue 3 item 4, restart half. mochi never reports the PUBREL stage to
// storage hooks, so after a restart an outbound QoS 2 flow would resume with
// PUBLISH. And an inbound QoS 2 message awaiting PUBREL must still be known
// after a restart, so a DUP resend is not delivered again.
func TestQoS2StateSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	b := startBroker(t, dir)
	sub, _ := dial(t, b.addr, "sub", connOpt{expiry: 300, noAck: true})
	sub.subscribe(1, packets.Subscription{Filter: "q2/#", Qos: 2})
	pub, _ := dial(t, b.addr, "pub", connOpt{expiry: 300, noAck: true})

	// Outbound flow to sub stops at the PUBREL stage.
	pub.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 2}, TopicName: "q2/out", PacketID: 1, Payload: []byte("out")})
	pub.next(packets.Pubrec)
	pub.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubrel}, PacketID: 1})
	pub.next(packets.Pubcomp)
	msg := sub.next(packets.Publish)
	sub.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubrec}, PacketID: msg.PacketID})
	if rel := sub.next(packets.Pubrel); rel.PacketID != msg.PacketID {
		t.Fatalf("pubrel id %d", rel.PacketID)
	}

	// Inbound flow from pub stops before PUBREL.
	in := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 2}, TopicName: "q2/in", PacketID: 9, Payload: []byte("in")}
	pub.write(in)
	pub.next(packets.Pubrec)
	if got := sub.next(packets.Publish); string(got.Payload) != "in" {
		t.Fatalf("got %q", got.Payload)
	}
	// sub leaves "in" unacknowledged: it is queued again after the restart.

	b.stop(t)
	b = startBroker(t, dir)

	sub, ack := dial(t, b.addr, "sub", connOpt{expiry: 300, noAck: true})
	if !ack.SessionPresent {
		t.Fatal("sub session lost")
	}
	// The outbound flow resumes with PUBREL for the same id, then "in" is resent.
	if rel := sub.next(packets.Pubrel); rel.PacketID != msg.PacketID {
		t.Fatalf("resumed with pubrel id %d, want %d", rel.PacketID, msg.PacketID)
	}
	sub.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubcomp}, PacketID: msg.PacketID})
	again := sub.next(packets.Publish)
	if string(again.Payload) != "in" || !again.FixedHeader.Dup {
		t.Fatalf("resent %q dup=%v", again.Payload, again.FixedHeader.Dup)
	}
	sub.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubrec}, PacketID: again.PacketID})
	sub.next(packets.Pubrel)
	sub.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubcomp}, PacketID: again.PacketID})

	// pub resends its unreleased message: PUBREC 0x00, no second delivery.
	pub, ack = dial(t, b.addr, "pub", connOpt{expiry: 300, noAck: true})
	if !ack.SessionPresent {
		t.Fatal("pub session lost")
	}
	in.FixedHeader.Dup = true
	pub.write(in)
	// mochi also resends its stored PUBREC on reconnect: every PUBREC for 9
	// must be a success.
	if rec := pub.next(packets.Pubrec); rec.PacketID != 9 || rec.ReasonCode != 0 {
		t.Fatalf("pubrec id %d reason %#x", rec.PacketID, rec.ReasonCode)
	}
	pub.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubrel}, PacketID: 9})
	for done := false; !done; {
		select {
		case pk, ok := <-pub.in:
			switch {
			case !ok:
				t.Fatal("pub connection closed")
			case pk.FixedHeader.Type == packets.Pubcomp:
				done = true
			case pk.FixedHeader.Type != packets.Pubrec || pk.PacketID != 9 || pk.ReasonCode != 0:
				t.Fatalf("unexpected packet type %d id %d reason %#x", pk.FixedHeader.Type, pk.PacketID, pk.ReasonCode)
			}
		case <-time.After(waitFor):
			t.Fatal("no pubcomp")
		}
	}
	sub.none(300 * time.Millisecond)
}
