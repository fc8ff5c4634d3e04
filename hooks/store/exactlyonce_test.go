package store

import (
	"sync"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// faultHook injects a failure at one point of one client's packet handling,
// once: it runs its func at that point, as a connection dying or a process
// crashing there would. It is registered after the store.
type faultHook struct {
	mqtt.HookBase
	client string
	once   sync.Once

	onPublish  func(cl *mqtt.Client) // OnPublish of a QoS 2 PUBLISH
	pubrelSent func(cl *mqtt.Client) // OnPacketSent of a PUBREL
	pubrelRead func(cl *mqtt.Client) // OnPacketRead of a PUBREL
}

func (h *faultHook) ID() string { return "test-fault" }

func (h *faultHook) Provides(b byte) bool {
	return b == mqtt.OnPublish || b == mqtt.OnPacketSent || b == mqtt.OnPacketRead
}

func (h *faultHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if h.onPublish != nil && cl.ID == h.client && pk.FixedHeader.Qos == 2 {
		h.once.Do(func() { h.onPublish(cl) })
	}
	return pk, nil
}

func (h *faultHook) OnPacketSent(cl *mqtt.Client, pk packets.Packet, _ []byte) {
	if h.pubrelSent != nil && cl.ID == h.client && pk.FixedHeader.Type == packets.Pubrel {
		h.once.Do(func() { h.pubrelSent(cl) })
	}
}

func (h *faultHook) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if h.pubrelRead != nil && cl.ID == h.client && pk.FixedHeader.Type == packets.Pubrel {
		h.once.Do(func() { h.pubrelRead(cl) })
	}
	return pk, nil
}

func withHooks(hs ...mqtt.Hook) func(*brokerCfg) {
	return func(c *brokerCfg) { c.hooks = append(c.hooks, hs...) }
}

// qos2Publish returns a QoS 2 PUBLISH from a raw client.
func qos2Publish(topic string, pid uint16, payload string) packets.Packet {
	return packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 2}, TopicName: topic, PacketID: pid, Payload: []byte(payload)}
}

// expectExactlyOnce reads the subscriber's PUBLISHes (auto-acknowledged)
// until payload has arrived, then checks that no second copy follows.
func expectExactlyOnce(t *testing.T, sub *rawClient, payload string) {
	t.Helper()
	if got := sub.receive(1); got[0] != payload {
		t.Fatalf("subscriber got %q, want %q", got[0], payload)
	}
	sub.none(300 * time.Millisecond)
}

// The connection dies after mochi has read a QoS 2 PUBLISH and before it
// writes the PUBREC: mochi returns without delivering the message but keeps
// the packet id as received, so the publisher's resend was answered as a
// duplicate and the message was lost (seen in the live QoS 2 stream across a
// graceful restart). The resend must now be delivered, exactly once, after a
// reconnect (Fixes) and after a restart (the store's records).
func TestQoS2PublishWhosePubrecWasNotWrittenIsDeliveredOnResend(t *testing.T) {
	for _, restart := range []bool{false, true} {
		name := "reconnect"
		if restart {
			name = "restart"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			fault := &faultHook{client: "pub", onPublish: func(cl *mqtt.Client) { cl.Stop(packets.ErrServerShuttingDown) }}
			b := startBroker(t, dir, withHooks(fault))
			sub, _ := dial(t, b.addr, "sub", connOpt{expiry: 300})
			sub.subscribe(1, packets.Subscription{Filter: "eo/#", Qos: 2})
			pub, _ := dial(t, b.addr, "pub", connOpt{expiry: 300, noAck: true})

			first := qos2Publish("eo/t", 4, "m")
			pub.write(first)
			for range pub.in { // the broker drops the connection without a PUBREC
			}
			if restart {
				sub.close()
				b.stop(t)
				b = startBroker(t, dir)
				sub, _ = dial(t, b.addr, "sub", connOpt{expiry: 300})
			}
			pub, ack := dial(t, b.addr, "pub", connOpt{expiry: 300, noAck: true})
			if !ack.SessionPresent {
				t.Fatal("publisher session lost")
			}
			first.FixedHeader.Dup = true
			pub.write(first)
			if rec := pub.next(packets.Pubrec); rec.PacketID != 4 || rec.ReasonCode != 0 {
				t.Fatalf("pubrec id %d reason %#x", rec.PacketID, rec.ReasonCode)
			}
			pub.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubrel}, PacketID: 4})
			pub.next(packets.Pubcomp)
			expectExactlyOnce(t, sub, "m")
		})
	}
}

// A session resumes with a QoS 2 message received and not yet released.
// mochi resends its PUBREC (only PUBLISH and PUBREL are resent); a client
// that was itself resending the PUBLISH answers it with PUBREL and then
// still sends the DUP PUBLISH (paho.mqtt.golang, which keeps the PUBLISH
// and not the PUBREL in its store). That DUP PUBLISH came after the id was
// released and was delivered a second time (seen in the live QoS 2 stream).
// A later message without DUP that reuses the id is new and delivered.
func TestQoS2ResendAfterReleaseOnResumedSessionIsNotDeliveredTwice(t *testing.T) {
	for _, restart := range []bool{false, true} {
		name := "reconnect"
		if restart {
			name = "restart"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			w := newExpiryWatcher()
			b := startBroker(t, dir, withHooks(w))
			sub, _ := dial(t, b.addr, "sub", connOpt{expiry: 300})
			sub.subscribe(1, packets.Subscription{Filter: "eo/#", Qos: 2})
			pub, _ := dial(t, b.addr, "pub", connOpt{expiry: 300, noAck: true})
			msg := qos2Publish("eo/t", 6, "once")
			pub.write(msg)
			pub.next(packets.Pubrec)
			if got := sub.receive(1); got[0] != "once" {
				t.Fatalf("got %q", got[0])
			}
			w.waitCompleted(t, "sub", 1) // the subscriber's side is done
			pub.close()                  // before its PUBREL
			if restart {
				sub.close()
				b.stop(t)
				b = startBroker(t, dir)
				sub, _ = dial(t, b.addr, "sub", connOpt{expiry: 300})
			}

			pub, ack := dial(t, b.addr, "pub", connOpt{expiry: 300, noAck: true})
			if !ack.SessionPresent {
				t.Fatal("publisher session lost")
			}
			if rec := pub.next(packets.Pubrec); rec.PacketID != 6 {
				t.Fatalf("resent pubrec id %d", rec.PacketID)
			}
			pub.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubrel}, PacketID: 6})
			pub.next(packets.Pubcomp)
			msg.FixedHeader.Dup = true
			pub.write(msg)
			if rec := pub.next(packets.Pubrec); rec.PacketID != 6 || rec.ReasonCode != 0 {
				t.Fatalf("pubrec for the late resend: id %d reason %#x", rec.PacketID, rec.ReasonCode)
			}
			pub.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubrel}, PacketID: 6})
			pub.next(packets.Pubcomp)
			sub.none(300 * time.Millisecond)

			pub.publish(6, "eo/t", 2, []byte("new"))
			expectExactlyOnce(t, sub, "new")
		})
	}
}

// The broker crashes right after writing a PUBREL to a persistent
// subscriber. The subscriber may have completed the flow and forgotten the
// id, so the restarted broker must resume with PUBREL, never with the
// PUBLISH (which would be a new message to the subscriber). The PUBREL stage
// was recorded only after mochi had written the PUBREL.
func TestPubrelStageIsDurableBeforePubrelIsSent(t *testing.T) {
	dir := t.TempDir()
	var b *testBroker
	fault := &faultHook{client: "sub", pubrelSent: func(*mqtt.Client) { _ = b.st.Abort() }}
	b = startBroker(t, dir, withHooks(fault))
	sub, _ := dial(t, b.addr, "sub", connOpt{expiry: 300, noAck: true})
	sub.subscribe(1, packets.Subscription{Filter: "eo/#", Qos: 2})
	pub, _ := dial(t, b.addr, "pub", connOpt{clean: true})
	pub.publish(1, "eo/t", 2, []byte("m"))
	msg := sub.next(packets.Publish)
	sub.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubrec}, PacketID: msg.PacketID})
	sub.next(packets.Pubrel)
	sub.close()
	pub.close()
	b.crash(t)

	b = startBroker(t, dir)
	sub, ack := dial(t, b.addr, "sub", connOpt{expiry: 300, noAck: true})
	if !ack.SessionPresent {
		t.Fatal("subscriber session lost")
	}
	select {
	case pk := <-sub.in:
		if pk.FixedHeader.Type != packets.Pubrel || pk.PacketID != msg.PacketID {
			t.Fatalf("resumed with packet type %d id %d, want PUBREL %d", pk.FixedHeader.Type, pk.PacketID, msg.PacketID)
		}
	case <-time.After(waitFor):
		t.Fatal("nothing resent")
	}
}

// The connection dies after the publisher's PUBREL is read and before the
// PUBCOMP is written: the publisher still holds the id. mochi keeps the
// PUBCOMP and resends it on resume; paho.mqtt.golang then also resends its
// PUBLISH. That resend must not be delivered again, the inbound record must
// go with the resent PUBCOMP (a record left behind would make the id look
// unreleased after a restart), and the id must then be free.
func TestQoS2PubcompNotWrittenEndsTheFlowOnResume(t *testing.T) {
	dir := t.TempDir()
	fault := &faultHook{client: "pub", pubrelRead: func(cl *mqtt.Client) { cl.Stop(packets.ErrServerShuttingDown) }}
	b := startBroker(t, dir, withHooks(fault))
	sub, _ := dial(t, b.addr, "sub", connOpt{expiry: 300})
	sub.subscribe(1, packets.Subscription{Filter: "eo/#", Qos: 2})
	pub, _ := dial(t, b.addr, "pub", connOpt{expiry: 300, noAck: true})
	msg := qos2Publish("eo/t", 8, "once")
	pub.write(msg)
	pub.next(packets.Pubrec)
	if got := sub.receive(1); got[0] != "once" {
		t.Fatalf("got %q", got[0])
	}
	pub.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubrel}, PacketID: 8})
	for range pub.in { // dropped before the PUBCOMP
	}

	pub, _ = dial(t, b.addr, "pub", connOpt{expiry: 300, noAck: true})
	if comp := pub.next(packets.Pubcomp); comp.PacketID != 8 {
		t.Fatalf("resent pubcomp id %d", comp.PacketID)
	}
	msg.FixedHeader.Dup = true
	pub.write(msg)
	if rec := pub.next(packets.Pubrec); rec.PacketID != 8 || rec.ReasonCode != 0 {
		t.Fatalf("pubrec id %d reason %#x", rec.PacketID, rec.ReasonCode)
	}
	pub.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubrel}, PacketID: 8})
	pub.next(packets.Pubcomp)
	sub.none(300 * time.Millisecond)
	pub.close()
	sub.close()
	b.stop(t)

	b = startBroker(t, dir)
	sub, _ = dial(t, b.addr, "sub", connOpt{expiry: 300})
	pub, _ = dial(t, b.addr, "pub", connOpt{expiry: 300, noAck: true})
	pub.publish(8, "eo/t", 2, []byte("new"))
	expectExactlyOnce(t, sub, "new")
}

// resumeGate publishes a live message the moment the subscriber's CONNACK
// is sent, before mochi resends the subscriber's queued messages, and lets
// the resend go on only once that message has been written to the
// subscriber (or a bounded wait shows it is held back).
type resumeGate struct {
	mqtt.HookBase
	pub     *rawClient
	written chan struct{}
	once    sync.Once
	seen    sync.Once
}

func (g *resumeGate) ID() string { return "test-resume-gate" }

func (g *resumeGate) Provides(b byte) bool { return b == mqtt.OnPacketSent }

func (g *resumeGate) OnPacketSent(cl *mqtt.Client, pk packets.Packet, _ []byte) {
	if cl.ID != "sub" {
		return
	}
	switch {
	case pk.FixedHeader.Type == packets.Connack && pk.SessionPresent:
		g.once.Do(func() {
			g.pub.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, TopicName: "ro/t", PacketID: 99, Payload: []byte("live")})
			select {
			case <-g.written:
			case <-time.After(300 * time.Millisecond): // held back: the fix at work
			}
		})
	case pk.FixedHeader.Type == packets.Publish && string(pk.Payload) == "live":
		g.seen.Do(func() { close(g.written) })
	}
}

// A message published while a subscriber's session resumes must come after
// the messages queued for it while it was away: mochi registers the client
// before it resends them, and the new message went out first (seen in the
// live QoS 1/2 stream across a restart).
func TestMessagePublishedWhileSessionResumesFollowsTheBacklog(t *testing.T) {
	gate := &resumeGate{written: make(chan struct{})}
	b := startBroker(t, t.TempDir(), withHooks(gate))
	sub, _ := dial(t, b.addr, "sub", connOpt{expiry: 300})
	sub.subscribe(1, packets.Subscription{Filter: "ro/#", Qos: 1})
	sub.disconnect()
	pub, _ := dial(t, b.addr, "pub", connOpt{clean: true})
	gate.pub = pub
	want := seqPayloads("old", 5)
	for i, p := range want {
		pub.publish(uint16(i+1), "ro/t", 1, []byte(p))
	}
	sub, _ = dial(t, b.addr, "sub", connOpt{expiry: 300})
	got := sub.receive(len(want) + 1)
	want = append(want, "live")
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("delivery order %v, want %v", got, want)
		}
	}
}
