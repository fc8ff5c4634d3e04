package store

import (
	"sync"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// completeGate holds mochi's report that an inbound QoS 2 flow of one client
// is complete (OnQosComplete after the PUBCOMP has been written), before the
// store sees it, until the test lets it go: the moment a crash finds the
// PUBCOMP sent and the flow's end not yet handed to the store.
type completeGate struct {
	mqtt.HookBase
	client  string
	reached chan struct{}
	release chan struct{}
	once    sync.Once
}

func (g *completeGate) ID() string { return "test-complete-gate" }

func (g *completeGate) Provides(b byte) bool { return b == mqtt.OnQosComplete }

func (g *completeGate) OnQosComplete(cl *mqtt.Client, pk packets.Packet) {
	if cl.ID != g.client || pk.FixedHeader.Type != packets.Pubrel {
		return
	}
	g.once.Do(func() {
		close(g.reached)
		select {
		case <-g.release:
		case <-time.After(waitFor):
		}
	})
}

// The broker crashes right after a publisher has read the PUBCOMP of a QoS
// 2 message. The publisher may reuse the packet id for its next message at
// once; the inbound record must not survive the crash, or the restarted
// broker takes that new message for a resend of the old one and swallows it.
// The record was deleted only once mochi reported the flow complete, after
// writing the PUBCOMP.
func TestQoS2InboundRecordIsGoneBeforePubcompIsSent(t *testing.T) {
	dir := t.TempDir()
	gate := &completeGate{client: "pub", reached: make(chan struct{}), release: make(chan struct{})}
	b := startBroker(t, dir, func(c *brokerCfg) { c.early = append(c.early, gate) })
	// A clean subscriber: no outbound records, so nothing of "old" is
	// resent to it after the crash; the publisher's session is persistent.
	sub, _ := dial(t, b.addr, "sub", connOpt{clean: true})
	sub.subscribe(1, packets.Subscription{Filter: "eo/#", Qos: 2})
	pub, _ := dial(t, b.addr, "pub", connOpt{expiry: 300, noAck: true})

	pub.write(qos2Publish("eo/t", 9, "old"))
	if rec := pub.next(packets.Pubrec); rec.PacketID != 9 || rec.ReasonCode != 0 {
		t.Fatalf("pubrec id %d reason %#x", rec.PacketID, rec.ReasonCode)
	}
	if got := sub.receive(1); got[0] != "old" {
		t.Fatalf("got %q", got[0])
	}
	pub.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubrel}, PacketID: 9})
	if comp := pub.next(packets.Pubcomp); comp.PacketID != 9 || comp.ReasonCode != 0 {
		t.Fatalf("pubcomp id %d reason %#x", comp.PacketID, comp.ReasonCode)
	}
	select {
	case <-gate.reached:
	case <-time.After(waitFor):
		t.Fatal("flow never reported complete")
	}
	// Crash: the store stops writing now; what the WAL holds is all there is.
	if err := b.st.Abort(); err != nil {
		t.Fatal(err)
	}
	close(gate.release)
	pub.close()
	sub.close()
	b.crash(t)

	b = startBroker(t, dir)
	sub, _ = dial(t, b.addr, "sub", connOpt{clean: true})
	sub.subscribe(1, packets.Subscription{Filter: "eo/#", Qos: 2})
	pub, ack := dial(t, b.addr, "pub", connOpt{expiry: 300, noAck: true})
	if !ack.SessionPresent {
		t.Fatal("publisher session lost")
	}
	pub.publish(9, "eo/t", 2, []byte("new")) // the id reused for a new message
	expectExactlyOnce(t, sub, "new")
}
