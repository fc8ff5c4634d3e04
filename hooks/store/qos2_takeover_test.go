package store

import (
	"sync"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// takeoverGate holds the publisher's connection right after mochi has
// stored the PUBREC of a QoS 2 PUBLISH in its inflight map (and before it
// writes it), cuts the connection there, and lets the old goroutine go on
// only once the client's new connection has cloned that map (mochi then
// clears the old copy and reports each entry dropped). That is the
// interleaving a busy machine produces now and then: the old goroutine
// descheduled between storing the PUBREC and failing to write it.
type takeoverGate struct {
	mqtt.HookBase
	client    string
	inherited chan struct{}
	held      sync.Once
	cloned    sync.Once
	timedOut  chan struct{}
}

func newTakeoverGate(client string) *takeoverGate {
	return &takeoverGate{client: client, inherited: make(chan struct{}), timedOut: make(chan struct{})}
}

func (g *takeoverGate) ID() string { return "test-takeover-gate" }

func (g *takeoverGate) Provides(b byte) bool { return b == mqtt.OnQosPublish || b == mqtt.OnQosDropped }

func (g *takeoverGate) OnQosPublish(cl *mqtt.Client, pk packets.Packet, _ int64, _ int) {
	if cl.ID != g.client || pk.FixedHeader.Type != packets.Pubrec {
		return
	}
	g.held.Do(func() {
		cl.Stop(packets.ErrServerShuttingDown)
		select {
		case <-g.inherited:
		case <-time.After(waitFor):
			close(g.timedOut)
		}
	})
}

func (g *takeoverGate) OnQosDropped(cl *mqtt.Client, pk packets.Packet) {
	if cl.ID == g.client && cl.IsTakenOver() && pk.FixedHeader.Type == packets.Pubrec {
		g.cloned.Do(func() { close(g.inherited) })
	}
}

// The publisher's connection dies between mochi storing the PUBREC of a new
// QoS 2 PUBLISH and writing it, and the client's new connection clones the
// session's inflight map before the old connection has forgotten the id
// again. The new connection resent that PUBREC (for a message never
// delivered) and took the publisher's resend for a duplicate: the message
// was lost. Run with and without a store: the store ends the publish for
// Fixes once its own records are cleaned up.
func TestQoS2PubrecInheritedMidPublishIsNotResent(t *testing.T) {
	for _, store := range []bool{true, false} {
		name := "store"
		if !store {
			name = "nostore"
		}
		t.Run(name, func(t *testing.T) {
			gate := newTakeoverGate("pub")
			mods := []func(*brokerCfg){withHooks(gate)}
			if !store {
				mods = append(mods, func(c *brokerCfg) { c.noStore = true })
			}
			b := startBroker(t, t.TempDir(), mods...)
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
			select {
			case <-gate.inherited:
			case <-gate.timedOut:
				t.Fatal("the new connection never took over the PUBREC")
			}
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
}
