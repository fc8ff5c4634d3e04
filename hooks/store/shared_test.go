package store

import (
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// Issue 3 item 9. Guards against mochi picking the first map entry of a
// shared group (random, and possibly an offline member).
func TestSharedSubscriptionRoundRobin(t *testing.T) {
	for _, store := range []bool{true, false} {
		name := map[bool]string{true: "store", false: "no store"}[store]
		t.Run(name, func(t *testing.T) {
			w := newExpiryWatcher()
			b := startBroker(t, t.TempDir(), func(c *brokerCfg) { c.noStore = !store; c.hooks = append(c.hooks, w) })
			share := packets.Subscription{Filter: "$share/g/s/t", Qos: 1}
			off, _ := dial(t, b.addr, "m0-offline", connOpt{expiry: 300})
			off.subscribe(1, share)
			off.disconnect()
			w.waitDisconnected(t, "m0-offline")
			m1, _ := dial(t, b.addr, "m1", connOpt{clean: true})
			m1.subscribe(1, share)
			m2, _ := dial(t, b.addr, "m2", connOpt{clean: true})
			m2.subscribe(1, share)

			pub, _ := dial(t, b.addr, "pub", connOpt{clean: true})
			const n = 8
			for i := 0; i < n; i++ {
				pub.publish(uint16(i+1), "s/t", 1, []byte{byte(i)})
			}
			g1, g2 := m1.receive(n/2), m2.receive(n/2)
			for i := range g1 { // alternating members
				if g1[i][0]%2 != g1[0][0]%2 || g2[i][0]%2 == g1[0][0]%2 {
					t.Fatalf("not round-robin: m1 %v m2 %v", g1, g2)
				}
			}
			m1.none(100 * time.Millisecond)
			m2.none(10 * time.Millisecond)

			// The offline member got nothing while others were connected...
			if cl, ok := b.srv.Clients.Get("m0-offline"); !ok || cl.State.Inflight.Len() != 0 {
				t.Fatalf("offline member has %d queued messages", cl.State.Inflight.Len())
			}
			// ...and gets the messages once it is the only member left.
			m1.disconnect()
			m2.disconnect()
			w.waitDisconnected(t, "m1", "m2")
			pub.publish(100, "s/t", 1, []byte("only"))
			// mochi acks before it fans out; reconnecting during the fan-out
			// would race mochi's session takeover, so wait for the hand-over.
			w.waitQueued(t, "m0-offline")
			off, _ = dial(t, b.addr, "m0-offline", connOpt{expiry: 300})
			if got := off.receive(1); got[0] != "only" {
				t.Fatalf("got %v", got)
			}
		})
	}
}
