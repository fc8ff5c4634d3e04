package store

import (
	"slices"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

func retainProps(expiry uint32) func(*packets.Packet) {
	return func(pk *packets.Packet) {
		pk.FixedHeader.Retain = true
		pk.Properties.PayloadFormat = 1
		pk.Properties.PayloadFormatFlag = true
		pk.Properties.ContentType = "text/plain"
		pk.Properties.User = []packets.UserProperty{{Key: "k", Val: "v1"}, {Key: "k", Val: "v2"}}
		pk.Properties.MessageExpiryInterval = expiry
	}
}

// Issue 3 item 3. Guards against mochi's restore path (storage.Message
// ToPacket) dropping a retained message's expiry and protocol version, so a
// restored retained message never expires, and against mochi delivering an
// expired retained message to a new subscriber until its 1 s expiry tick.
func TestRetainedMessagesAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	b := startBroker(t, dir)
	pub, _ := dial(t, b.addr, "pub", connOpt{clean: true})
	pub.publish(1, "ret/keep", 1, []byte("kept"), retainProps(3600))
	pub.publish(2, "ret/short", 1, []byte("short"), retainProps(2))
	pub.publish(3, "ret/clear", 1, []byte("to clear"), retainProps(0))
	pub.publish(4, "ret/clear", 1, nil, func(pk *packets.Packet) { pk.FixedHeader.Retain = true })
	pub.disconnect()
	b.stop(t)

	// Restart 5 s later by the store's and fixes' clocks: ret/short expired.
	later := func() time.Time { return time.Now().Add(5 * time.Second) }
	b = startBroker(t, dir, func(c *brokerCfg) { c.opts.Now = later; c.fixClock = later })
	sub, _ := dial(t, b.addr, "sub", connOpt{clean: true})
	sub.subscribe(1, packets.Subscription{Filter: "ret/#", Qos: 1})
	pk := sub.next(packets.Publish)
	if pk.TopicName != "ret/keep" || string(pk.Payload) != "kept" || !pk.FixedHeader.Retain {
		t.Fatalf("got %q %q retain=%v", pk.TopicName, pk.Payload, pk.FixedHeader.Retain)
	}
	p := pk.Properties
	if !p.PayloadFormatFlag || p.PayloadFormat != 1 || p.ContentType != "text/plain" {
		t.Fatalf("properties lost: format %v/%d content type %q", p.PayloadFormatFlag, p.PayloadFormat, p.ContentType)
	}
	if !slices.Equal(p.User, []packets.UserProperty{{Key: "k", Val: "v1"}, {Key: "k", Val: "v2"}}) {
		t.Fatalf("user properties %v", p.User)
	}
	if p.MessageExpiryInterval == 0 || p.MessageExpiryInterval > 3600 {
		t.Fatalf("message expiry %d, want what is left of 3600", p.MessageExpiryInterval)
	}
	sub.none(300 * time.Millisecond)
	sub.disconnect()

	// The expired message is gone from the store; the clear survived.
	if err := b.st.Sync(); err != nil {
		t.Fatal(err)
	}
	keys, err := b.st.keysWithPrefix([]byte{kindRetained})
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || string(keys[0]) != string(retainedKey("ret/keep")) {
		t.Fatalf("retained keys %q", keys)
	}
	// The restored message expires: its expiry survived the restart.
	if rm, ok := b.srv.Topics.Retained.Get("ret/keep"); !ok || rm.Expiry == 0 || rm.ProtocolVersion != 5 {
		t.Fatalf("restored retained packet expiry %d version %d", rm.Expiry, rm.ProtocolVersion)
	}
}

// An expired retained message is not delivered on subscribe, even before
// mochi's expiry tick has removed it.
func TestExpiredRetainedNotDeliveredOnSubscribe(t *testing.T) {
	clock := time.Now()
	later := func() time.Time { return clock.Add(10 * time.Second) }
	b := startBroker(t, t.TempDir(), func(c *brokerCfg) { c.fixClock = later })
	pub, _ := dial(t, b.addr, "pub", connOpt{clean: true})
	pub.publish(1, "exp/ret", 1, []byte("stale"), retainProps(2))
	pub.publish(2, "exp/fresh", 1, []byte("fresh"), retainProps(60))
	sub, _ := dial(t, b.addr, "sub", connOpt{clean: true})
	sub.subscribe(1, packets.Subscription{Filter: "exp/#", Qos: 1})
	if got := sub.receive(1); got[0] != "fresh" {
		t.Fatalf("got %v", got)
	}
	// mochi acks the publisher before fanning out, so "fresh" may also
	// arrive live; "stale" must never arrive.
	for deadline := time.After(300 * time.Millisecond); ; {
		select {
		case pk := <-sub.in:
			if string(pk.Payload) != "fresh" {
				t.Fatalf("unexpected %q on %q", pk.Payload, pk.TopicName)
			}
			continue
		case <-deadline:
		}
		break
	}
	if _, ok := b.srv.Topics.Retained.Get("exp/ret"); ok {
		t.Fatal("expired retained message still indexed")
	}
}
