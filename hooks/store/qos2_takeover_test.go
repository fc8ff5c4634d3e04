package store

import (
	"sync"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// takeoverGate holds the publisher's connection goroutine at one point of
// its processing of a QoS 2 packet, optionally cutting the connection there,
// and lets it go on only once the client's new connection has cloned the
// session (mochi then clears the old connection's inflight map and reports
// each entry dropped). That is the interleaving a busy machine produces now
// and then: the old goroutine descheduled while the client reconnects. With
// oldFirst, the new connection then waits (before its CONNACK) until the old
// one has processed the packet; otherwise the two race.
type takeoverGate struct {
	mqtt.HookBase
	client    string
	at        byte // mqtt.OnQosPublish, mqtt.OnPacketRead or mqtt.OnPacketSent
	typ       byte // packet type held
	cut       bool // close the connection when holding
	oldFirst  bool
	inherited chan struct{}
	oldDone   chan struct{}
	timedOut  chan struct{}
	held      sync.Once
	cloned    sync.Once
	processed sync.Once
}

func newTakeoverGate(at, typ byte, cut, oldFirst bool) *takeoverGate {
	return &takeoverGate{client: "pub", at: at, typ: typ, cut: cut, oldFirst: oldFirst,
		inherited: make(chan struct{}), oldDone: make(chan struct{}), timedOut: make(chan struct{})}
}

func (g *takeoverGate) ID() string { return "test-takeover-gate" }

func (g *takeoverGate) Provides(b byte) bool {
	return b == g.at || b == mqtt.OnQosDropped || b == mqtt.OnPacketProcessed
}

func (g *takeoverGate) hold(cl *mqtt.Client, typ byte) {
	if cl.ID != g.client || typ != g.typ {
		return
	}
	g.held.Do(func() {
		if g.cut {
			cl.Stop(packets.ErrServerShuttingDown)
		}
		select {
		case <-g.inherited:
		case <-time.After(waitFor):
			close(g.timedOut)
		}
	})
}

func (g *takeoverGate) OnQosPublish(cl *mqtt.Client, pk packets.Packet, _ int64, _ int) {
	g.hold(cl, pk.FixedHeader.Type)
}

func (g *takeoverGate) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	g.hold(cl, pk.FixedHeader.Type)
	return pk, nil
}

func (g *takeoverGate) OnPacketSent(cl *mqtt.Client, pk packets.Packet, _ []byte) {
	g.hold(cl, pk.FixedHeader.Type)
}

func (g *takeoverGate) OnQosDropped(cl *mqtt.Client, _ packets.Packet) {
	if cl.ID != g.client || !cl.IsTakenOver() {
		return
	}
	g.cloned.Do(func() {
		close(g.inherited)
		if g.oldFirst { // runs on the new connection's goroutine
			select {
			case <-g.oldDone:
			case <-time.After(waitFor):
			}
		}
	})
}

// OnPacketProcessed reports the old connection done with the held packet
// (it runs after Fixes and the store).
func (g *takeoverGate) OnPacketProcessed(cl *mqtt.Client, _ packets.Packet, _ error) {
	if cl.ID == g.client && cl.IsTakenOver() {
		g.processed.Do(func() { close(g.oldDone) })
	}
}

// waitCloned fails the test unless the new connection cloned the session
// while the old one was held.
func (g *takeoverGate) waitCloned(t *testing.T) {
	t.Helper()
	select {
	case <-g.inherited:
	case <-g.timedOut:
		t.Fatal("the new connection never took over the session")
	}
}

// takeoverVariants runs a takeover test with and without a store, with the
// old connection finishing first or racing the new one.
func takeoverVariants(t *testing.T, run func(t *testing.T, oldFirst bool, mods ...func(*brokerCfg))) {
	for _, store := range []bool{true, false} {
		for _, oldFirst := range []bool{true, false} {
			name := "store"
			var mods []func(*brokerCfg)
			if !store {
				name = "nostore"
				mods = append(mods, func(c *brokerCfg) { c.noStore = true })
			}
			if oldFirst {
				name += "/old-first"
			} else {
				name += "/racing"
			}
			t.Run(name, func(t *testing.T) { run(t, oldFirst, mods...) })
		}
	}
}

// The publisher's connection dies between mochi storing the PUBREC of a new
// QoS 2 PUBLISH and writing it, and the client's new connection clones the
// session before the old connection has forgotten the id again. The new
// connection resent that PUBREC (for a message never delivered) and took
// the publisher's resend for a duplicate: the message was lost. With a
// store, the store ends the publish for Fixes once its records are dropped.
func TestQoS2PubrecInheritedMidPublishIsNotResent(t *testing.T) {
	takeoverVariants(t, func(t *testing.T, oldFirst bool, mods ...func(*brokerCfg)) {
		gate := newTakeoverGate(mqtt.OnQosPublish, packets.Pubrec, true, oldFirst)
		b := startBroker(t, t.TempDir(), append(mods, withHooks(gate))...)
		sub, _ := dial(t, b.addr, "sub", connOpt{expiry: 300})
		sub.subscribe(1, packets.Subscription{Filter: "eo/#", Qos: 2})
		pub, _ := dial(t, b.addr, "pub", connOpt{expiry: 300, noAck: true})

		first := qos2Publish("eo/t", 4, "m")
		pub.write(first)
		for range pub.in { // cut before the PUBREC
		}
		pub, ack := dial(t, b.addr, "pub", connOpt{expiry: 300, noAck: true})
		if !ack.SessionPresent {
			t.Fatal("publisher session lost")
		}
		gate.waitCloned(t)
		first.FixedHeader.Dup = true
		pub.write(first)
		if rec := pub.next(packets.Pubrec); rec.PacketID != 4 || rec.ReasonCode != 0 {
			t.Fatalf("pubrec id %d reason %#x", rec.PacketID, rec.ReasonCode)
		}
		pub.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubrel}, PacketID: 4})
		pub.next(packets.Pubcomp) // a PUBREC resent at the CONNACK arrives here instead
		expectExactlyOnce(t, sub, "m")
	})
}

// The broker reads the publisher's PUBREL as the connection dies, and the
// client's new connection clones the session before mochi has replaced the
// PUBREC with the PUBCOMP. The new connection still awaited a PUBREL the
// broker had read (and resent the PUBREC); it must resume with the PUBCOMP,
// as it does when the PUBCOMP merely could not be written.
func TestQoS2PubrelReadDuringTakeoverResumesWithPubcomp(t *testing.T) {
	takeoverVariants(t, func(t *testing.T, oldFirst bool, mods ...func(*brokerCfg)) {
		gate := newTakeoverGate(mqtt.OnPacketRead, packets.Pubrel, true, oldFirst)
		b := startBroker(t, t.TempDir(), append(mods, withHooks(gate))...)
		sub, _ := dial(t, b.addr, "sub", connOpt{expiry: 300})
		sub.subscribe(1, packets.Subscription{Filter: "eo/#", Qos: 2})
		pub, _ := dial(t, b.addr, "pub", connOpt{expiry: 300, noAck: true})
		pub.write(qos2Publish("eo/t", 5, "once"))
		pub.next(packets.Pubrec)
		if got := sub.receive(1); got[0] != "once" {
			t.Fatalf("got %q", got[0])
		}
		pub.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubrel}, PacketID: 5})
		for range pub.in { // cut before the PUBCOMP
		}

		pub, _ = dial(t, b.addr, "pub", connOpt{expiry: 300, noAck: true})
		gate.waitCloned(t)
		if comp := pub.next(packets.Pubcomp); comp.PacketID != 5 {
			t.Fatalf("resent pubcomp id %d", comp.PacketID)
		}
		pub.publish(5, "eo/t", 2, []byte("new"))
		expectExactlyOnce(t, sub, "new")
	})
}

// The broker writes the PUBCOMP and the client, having read it, reconnects
// before mochi has removed the finished flow from the old connection: the
// new connection cloned the PUBCOMP and resent it after its CONNACK, into
// the next flow of a publisher that reuses the id at once.
func TestQoS2PubcompWrittenDuringTakeoverIsNotResent(t *testing.T) {
	takeoverVariants(t, func(t *testing.T, oldFirst bool, mods ...func(*brokerCfg)) {
		gate := newTakeoverGate(mqtt.OnPacketSent, packets.Pubcomp, false, oldFirst)
		b := startBroker(t, t.TempDir(), append(mods, withHooks(gate))...)
		sub, _ := dial(t, b.addr, "sub", connOpt{expiry: 300})
		sub.subscribe(1, packets.Subscription{Filter: "eo/#", Qos: 2})
		pub, _ := dial(t, b.addr, "pub", connOpt{expiry: 300, noAck: true})
		pub.publish(6, "eo/t", 2, []byte("old"))
		expectExactlyOnce(t, sub, "old")
		pub.close()

		pub, _ = dial(t, b.addr, "pub", connOpt{expiry: 300, noAck: true})
		gate.waitCloned(t)
		pub.publish(6, "eo/t", 2, []byte("new")) // a PUBCOMP resent at the CONNACK arrives first
		expectExactlyOnce(t, sub, "new")
	})
}
