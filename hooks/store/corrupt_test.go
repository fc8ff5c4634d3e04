package store

import (
	"errors"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// Issue 3 item 6. mochi fails Serve() when a storage hook returns an error,
// so one bad record would keep the broker down; the store sets corrupt
// records aside and serves everything else.
func TestCorruptRecordsAreSetAside(t *testing.T) {
	dir := t.TempDir()
	w := newExpiryWatcher()
	b := startBroker(t, dir, withHooks(w))
	good, _ := dial(t, b.addr, "good", connOpt{expiry: 300})
	good.subscribe(1, packets.Subscription{Filter: "c/#", Qos: 1})
	good.disconnect()
	// mochi sends retained messages for a subscription after the SUBACK: a
	// retained message published before it has done so also arrives as a
	// retained copy (seen: "retained" queued twice). The DISCONNECT is
	// processed after the SUBSCRIBE, so once it is seen that is over.
	w.waitDisconnected(t, "good")
	pub, _ := dial(t, b.addr, "pub", connOpt{clean: true})
	pub.publish(1, "c/1", 1, []byte("queued"))
	pub.publish(2, "c/r", 1, []byte("retained"), func(pk *packets.Packet) { pk.FixedHeader.Retain = true })
	pub.disconnect()
	b.stop(t)

	// Damage one record of every kind, beside the good ones.
	st, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	garbage := []byte{valueVersion, 0xee, 1, 2, 3}
	st.enqueue(
		op{kind: opSet, key: sessionKey("bad"), val: garbage},
		op{kind: opSet, key: subKey("good", "bad/#"), val: garbage},
		op{kind: opSet, key: outboundKey("good", 1<<40), val: garbage},
		op{kind: opSet, key: retainedKey("bad/r"), val: garbage},
		op{kind: opSet, key: []byte{kindSub, 0xff}, val: garbage}, // unparseable key
	)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	b = startBroker(t, dir)
	if got := b.st.Quarantined(); got != 5 {
		t.Fatalf("quarantined %d records, want 5", got)
	}
	good, ack := dial(t, b.addr, "good", connOpt{expiry: 300})
	if !ack.SessionPresent {
		t.Fatal("good session lost")
	}
	if got := good.receive(2); got[0] != "queued" || got[1] != "retained" {
		t.Fatalf("got %v", got)
	}
	sub, _ := dial(t, b.addr, "sub", connOpt{clean: true})
	sub.subscribe(1, packets.Subscription{Filter: "c/r", Qos: 1})
	if got := sub.receive(1); got[0] != "retained" {
		t.Fatalf("got %v", got)
	}
	if err := b.st.Sync(); err != nil {
		t.Fatal(err)
	}
	q, err := b.st.keysWithPrefix([]byte{kindQuarantine})
	if err != nil {
		t.Fatal(err)
	}
	if len(q) != 5 {
		t.Fatalf("%d quarantined keys, want 5", len(q))
	}
	good.none(100 * time.Millisecond)

	// A restart after the quarantine starts clean.
	b.stop(t)
	b = startBroker(t, dir)
	if got := b.st.Quarantined(); got != 0 {
		t.Fatalf("quarantined %d on the second start", got)
	}
}

func TestSchemaVersionIsChecked(t *testing.T) {
	dir := t.TempDir()
	st, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.enqueue(op{kind: opSet, key: schemaKey, val: []byte{99}})
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Options{}); !errors.Is(err, ErrSchemaVersion) {
		t.Fatalf("open with schema 99: %v, want ErrSchemaVersion", err)
	}
}

// Issue 3 item 8 (goleak runs in TestMain): open, close, reopen in one
// process leaves no goroutine behind, and Close twice is safe.
func TestOpenCloseReopen(t *testing.T) {
	dir := t.TempDir()
	for i := 0; i < 3; i++ {
		st, err := Open(dir, Options{GCInterval: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		st.enqueue(op{kind: opSet, key: retainedKey("t"), val: (&msgRec{Stage: stageRetain, Topic: "t", Payload: []byte("x")}).encode(kindRetained)})
		if err := st.Sync(); err != nil {
			t.Fatal(err)
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		if err := st.Close(); err != nil {
			t.Fatalf("second close: %v", err)
		}
		if err := st.Sync(); !errors.Is(err, ErrClosed) {
			t.Fatalf("sync after close: %v", err)
		}
	}
	// The same with a running broker around the store.
	for i := 0; i < 2; i++ {
		b := startBroker(t, dir)
		c, _ := dial(t, b.addr, "c", connOpt{expiry: 60})
		c.subscribe(1, packets.Subscription{Filter: "t", Qos: 1})
		c.disconnect()
		b.stop(t)
		b.stop(t)
	}
}
