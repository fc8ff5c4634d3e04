package store

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// Issue 3 item 5. mochi writes PUBACK to the publisher before the
// per-subscriber records reach any hook; the store writes them ahead and
// holds the PUBACK until they are committed. The broker is crashed mid-stream
// (queued writes abandoned, connections cut, no graceful shutdown) and every
// message the publisher saw acknowledged must reach the persistent
// subscriber after a restart.
func TestAcknowledgedMessagesSurviveCrash(t *testing.T) {
	for _, sync := range []bool{false, true} {
		t.Run(map[bool]string{false: "page cache", true: "fsync"}[sync], func(t *testing.T) {
			testCrash(t, sync)
		})
	}
}

func testCrash(t *testing.T, syncWrites bool) {
	dir := t.TempDir()
	withSync := func(c *brokerCfg) { c.opts.SyncWrites = syncWrites }
	b := startBroker(t, dir, withSync)
	sub, _ := dial(t, b.addr, "sub", connOpt{expiry: 300})
	sub.subscribe(1, packets.Subscription{Filter: "crash/#", Qos: 1})
	sub.disconnect()

	pub, _ := dial(t, b.addr, "pub", connOpt{clean: true, noAck: true})
	const n = 2000
	go func() { // pipelined publishes, not waiting for acks
		for i := 1; i <= n; i++ {
			pl := binary.BigEndian.AppendUint32(nil, uint32(i))
			pub.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, TopicName: "crash/t", PacketID: uint16(i), Payload: pl})
		}
	}()
	acked := map[uint16]bool{}
	deadline := time.After(waitFor)
	for len(acked) < n/4 {
		select {
		case pk, ok := <-pub.in:
			if !ok {
				t.Fatal("publisher connection closed")
			}
			if pk.FixedHeader.Type == packets.Puback {
				acked[pk.PacketID] = true
			}
		case <-deadline:
			t.Fatalf("only %d acks", len(acked))
		}
	}
	b.crash(t)
	for pk := range pub.in { // acks that were already on the wire count too
		if pk.FixedHeader.Type == packets.Puback {
			acked[pk.PacketID] = true
		}
	}
	t.Logf("%d of %d messages acknowledged before the crash", len(acked), n)

	b = startBroker(t, dir, withSync)
	if cl, ok := b.srv.Clients.Get("sub"); ok {
		t.Logf("restored inflight %d", cl.State.Inflight.Len())
	}
	sub, ack := dial(t, b.addr, "sub", connOpt{expiry: 300})
	if !ack.SessionPresent {
		t.Fatal("session lost in the crash")
	}
	got := map[uint16]bool{}
	last := uint32(0)
	for missing := len(acked); missing > 0; {
		var pk packets.Packet
		select {
		case pk = <-sub.in:
		case <-time.After(2 * time.Second):
			var miss []uint16
			for id := range acked {
				if !got[id] {
					miss = append(miss, id)
				}
			}
			t.Fatalf("missing %d: %v; last %d", missing, miss, last)
		}
		id := binary.BigEndian.Uint32(pk.Payload)
		if id <= last {
			t.Fatalf("message %d after %d: out of order", id, last)
		}
		last = id
		if acked[uint16(id)] && !got[uint16(id)] {
			missing--
		}
		got[uint16(id)] = true
	}
}

// The store caches subscriber sets for its write-ahead; a subscription made
// after a topic was published to must still be written ahead.
func TestWriteAheadSeesNewSubscriptions(t *testing.T) {
	dir := t.TempDir()
	b := startBroker(t, dir)
	pub, _ := dial(t, b.addr, "pub", connOpt{clean: true})
	pub.publish(1, "late/t", 1, []byte("nobody listens"))
	// mochi acknowledges before it routes; the next packet of the same
	// connection is processed once the routing is done.
	pub.publish(3, "elsewhere/t", 1, []byte("barrier"))
	sub, _ := dial(t, b.addr, "late-sub", connOpt{expiry: 300})
	sub.subscribe(1, packets.Subscription{Filter: "late/#", Qos: 1})
	sub.disconnect()
	pub.publish(2, "late/t", 1, []byte("queued"))
	b.crash(t)

	b = startBroker(t, dir)
	sub, _ = dial(t, b.addr, "late-sub", connOpt{expiry: 300})
	if got := sub.receive(1); got[0] != "queued" {
		t.Fatalf("got %v", got)
	}
}
