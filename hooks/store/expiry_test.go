package store

import (
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Issue 3 item 2, first half. Guards against mochi deleting an expired client
// but leaving its subscriptions in the topic index: a new session with the
// same client id then receives messages on the old subscriptions.
func TestExpiredSessionIsGoneEverywhere(t *testing.T) {
	w := newExpiryWatcher()
	b := startBroker(t, t.TempDir(), func(c *brokerCfg) { c.hooks = append(c.hooks, w) })

	ghost, _ := dial(t, b.addr, "ghost", connOpt{expiry: 1})
	ghost.subscribe(1, packets.Subscription{Filter: "ghost/t", Qos: 1})
	ghost.disconnect()

	pub, _ := dial(t, b.addr, "pub", connOpt{clean: true})
	pub.publish(1, "ghost/t", 1, []byte("queued")) // queued for the session, then expired with it

	select {
	case id := <-w.expired:
		if id != "ghost" {
			t.Fatalf("expired %q", id)
		}
	case <-time.After(waitFor):
		t.Fatal("session did not expire")
	}

	if subs := b.srv.Topics.Subscribers("ghost/t"); len(subs.Subscriptions) != 0 {
		t.Fatalf("topic index still holds %v", subs.Subscriptions)
	}
	if err := b.st.Sync(); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []byte{kindSession, kindSub, kindOutbound, kindInbound} {
		keys, err := b.st.keysWithPrefix(clientPrefix(kind, "ghost"))
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) != 0 {
			t.Fatalf("store still holds %d %q records for the expired session", len(keys), kind)
		}
	}

	fresh, ack := dial(t, b.addr, "ghost", connOpt{expiry: 60})
	if ack.SessionPresent {
		t.Fatal("expired session reported present")
	}
	pub.publish(2, "ghost/t", 1, []byte("after"))
	fresh.none(300 * time.Millisecond)
}

// Issue 3 item 2, second half. mochi restarts the expiry clock of every
// restored session at load (and its own Badger hook loses the interval); the
// store counts from the persisted disconnect time.
func TestSessionExpiryHoldsAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	b := startBroker(t, dir)
	for _, id := range []string{"short", "long"} {
		c, _ := dial(t, b.addr, id, connOpt{expiry: 2})
		c.subscribe(1, packets.Subscription{Filter: "exp/" + id, Qos: 1})
		c.disconnect()
	}
	// "long" reconnects with a long expiry; "short" keeps 2 s.
	c, _ := dial(t, b.addr, "long", connOpt{expiry: 3600})
	c.disconnect()
	b.stop(t)

	// The broker comes back 3 s (by the store's clock) after the disconnects.
	later := func() time.Time { return time.Now().Add(3 * time.Second) }
	b = startBroker(t, dir, func(c *brokerCfg) { c.opts.Now = later })
	if _, ok := b.srv.Clients.Get("short"); ok {
		t.Fatal("session with a 2 s expiry restored 3 s after its disconnect")
	}
	if subs := b.srv.Topics.Subscribers("exp/short"); len(subs.Subscriptions) != 0 {
		t.Fatalf("expired session's subscription restored: %v", subs.Subscriptions)
	}
	long, ok := b.srv.Clients.Get("long")
	if !ok {
		t.Fatal("live session not restored")
	}
	if got := long.Properties.Props.SessionExpiryInterval; got > 3600-3 || got < 3600-10 {
		t.Fatalf("restored expiry interval %d, want what is left of 3600 s", got)
	}
	if subs := b.srv.Topics.Subscribers("exp/long"); len(subs.Subscriptions) != 1 {
		t.Fatalf("live session's subscription not restored: %v", subs.Subscriptions)
	}
	if err := b.st.Sync(); err != nil {
		t.Fatal(err)
	}
	if keys, _ := b.st.keysWithPrefix(clientPrefix(kindSub, "short")); len(keys) != 0 {
		t.Fatal("expired session's subscription still stored")
	}
	_, ack := dial(t, b.addr, "short", connOpt{expiry: 2})
	if ack.SessionPresent {
		t.Fatal("expired session present after restart")
	}
}

// An MQTT 3.1.1 persistent session lives the server's maximum session
// expiry from its disconnect. mochi counts it from the restart for a
// restored session (it expires MQTT 3 sessions by the time their client
// object stopped, which for a restored one is the load), so a restart
// extended it by the time the broker had been down. Here the broker is
// restarted 29 s (store clock) into a 30 s maximum: the session must
// expire about 1 s later, not 30 s.
func TestMQTT311SessionExpiryCountsFromDisconnectAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	caps := func(c *brokerCfg) { c.caps = func(k *mqtt.Capabilities) { k.MaximumSessionExpiryInterval = 30 } }
	b := startBroker(t, dir, caps)
	old, _ := dial(t, b.addr, "old", connOpt{ver: 4})
	old.subscribe(1, packets.Subscription{Filter: "old/t", Qos: 1})
	old.disconnect()
	w := newExpiryWatcher()
	b.stop(t)

	later := func(c *brokerCfg) { c.opts.Now = func() time.Time { return time.Now().Add(29 * time.Second) } }
	b = startBroker(t, dir, caps, later, withHooks(w))
	if _, ok := b.srv.Clients.Get("old"); !ok {
		t.Fatal("session not restored")
	}
	select {
	case id := <-w.expired:
		if id != "old" {
			t.Fatalf("expired %q", id)
		}
	case <-time.After(waitFor):
		t.Fatal("session did not expire 30 s after its disconnect")
	}
	if subs := b.srv.Topics.Subscribers("old/t"); len(subs.Subscriptions) != 0 {
		t.Fatalf("topic index still holds %v", subs.Subscriptions)
	}
}
