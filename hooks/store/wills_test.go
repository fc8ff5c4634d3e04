package store

import (
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// mochi parks a Will with a delay in memory, so a restart lost it: a client
// that dropped and did not come back never had its Will published. After a
// restart the Will must be published when due, exactly once, unless the
// client has reconnected by then.
func TestDelayedWillIsPublishedAfterRestart(t *testing.T) {
	dir := t.TempDir()
	w := newExpiryWatcher()
	b := startBroker(t, dir, withHooks(w))
	watch, _ := dial(t, b.addr, "watch", connOpt{expiry: 300})
	watch.subscribe(1, packets.Subscription{Filter: "will/#", Qos: 1})
	for _, id := range []string{"gone", "back"} {
		c, _ := dial(t, b.addr, id, connOpt{expiry: 300, willTopic: "will/" + id, willDelay: 2})
		c.close() // no DISCONNECT: the Will applies
	}
	w.waitDisconnected(t, "gone", "back")
	watch.disconnect()
	b.stop(t)

	b = startBroker(t, dir)
	watch, _ = dial(t, b.addr, "watch", connOpt{expiry: 300})
	dial(t, b.addr, "back", connOpt{expiry: 300}) // back in time: no Will
	if got := watch.receive(1); got[0] != "gone gone" {
		t.Fatalf("got %q, want the Will of gone", got[0])
	}
	watch.none(500 * time.Millisecond)

	// Published once: not again after another restart.
	watch.disconnect()
	b.stop(t)
	b = startBroker(t, dir)
	b.st.willMu.Lock()
	left := len(b.st.wills)
	b.st.willMu.Unlock()
	if left != 0 {
		t.Fatalf("%d Wills still pending after they were published", left)
	}
}
