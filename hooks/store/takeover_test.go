package store

import (
	"slices"
	"testing"

	"github.com/mochi-mqtt/server/v2/packets"
)

// Guards against mochi's session takeover: after cloning the old session's
// inflight messages into the new connection it clears the old client's, and
// reports each as dropped (OnQosDropped). A storage hook that believes it
// deletes the messages the new connection has just taken over.
func TestResumedSessionKeepsItsMessagesDurable(t *testing.T) {
	dir := t.TempDir()
	b := startBroker(t, dir)
	sub, _ := dial(t, b.addr, "sub", connOpt{expiry: 300})
	sub.subscribe(1, packets.Subscription{Filter: "t/#", Qos: 1})
	sub.disconnect()
	pub, _ := dial(t, b.addr, "pub", connOpt{clean: true})
	want := seqPayloads("m", 20)
	for i, p := range want {
		pub.publish(uint16(i+1), "t/x", 1, []byte(p))
	}
	pub.publish(100, "barrier", 1, nil)
	if err := b.st.Sync(); err != nil {
		t.Fatal(err)
	}
	before, _ := b.st.keysWithPrefix(clientPrefix(kindOutbound, "sub"))

	// Resume the session, receive everything, acknowledge nothing.
	sub, _ = dial(t, b.addr, "sub", connOpt{expiry: 300, noAck: true})
	if got := sub.receive(len(want)); !slices.Equal(got, want) {
		t.Fatalf("got %v", got)
	}
	if err := b.st.Sync(); err != nil {
		t.Fatal(err)
	}
	// The very same records: none deleted and written again.
	after, _ := b.st.keysWithPrefix(clientPrefix(kindOutbound, "sub"))
	if len(before) != len(want) || !slices.EqualFunc(before, after, func(a, b []byte) bool { return string(a) == string(b) }) {
		t.Fatalf("records before the resume %q, after %q", before, after)
	}
	sub.disconnect()
	b.stop(t)

	b = startBroker(t, dir)
	sub, _ = dial(t, b.addr, "sub", connOpt{expiry: 300})
	if got := sub.receive(len(want)); !slices.Equal(got, want) {
		t.Fatalf("after restart got %v", got)
	}
}
