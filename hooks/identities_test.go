package hooks_test

import (
	"slices"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/courier-mqtt/courier/auth"
	"github.com/courier-mqtt/courier/broker"
	"github.com/courier-mqtt/courier/broker/brokertest"
	"github.com/courier-mqtt/courier/hooks"
)

// notifyingIdentities is MemoryIdentities that reports deletions.
type notifyingIdentities struct {
	*hooks.MemoryIdentities
	deleted chan string
}

func (n *notifyingIdentities) DeleteIdentity(id string) error {
	err := n.MemoryIdentities.DeleteIdentity(id)
	n.deleted <- id
	return err
}

// TestIdentitiesSurviveRestart: a binding saved by one hook instance is
// honoured by a fresh one (as after a broker restart): a restored offline
// session is authorized from the stored grants, another identity still
// cannot take it over, and the binding is deleted when the session ends.
func TestIdentitiesSurviveRestart(t *testing.T) {
	t.Parallel()
	store := &notifyingIdentities{MemoryIdentities: hooks.NewMemoryIdentities(), deleted: make(chan string, 8)}
	key, _ := auth.GenerateEd25519Key("k1")
	ks, _ := auth.NewKeySet("k1", key)
	newHook := func() *hooks.TokenAuth {
		h, err := hooks.NewTokenAuth(hooks.TokenAuthOptions{
			Verifier:   auth.NewVerifier(ks.Public(), auth.VerifierOptions{}),
			Identities: store,
		})
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	g := auth.Grants{Sub: []string{"a/+"}}

	// First "process": alice binds alice-p with a persistent session.
	first := brokertest.Start(t, brokertest.WithoutStore(), brokertest.WithOptions(broker.WithAuthHook(newHook(), nil)))
	alice := dialRaw(t, first.TCPAddr, 5)
	if ack := alice.connect(connectOpts{clientID: "alice-p", username: "alice", password: mintWith(t, ks, "alice", "alice-p", g), sessionExpiry: 300}); ack.ReasonCode != 0 {
		t.Fatalf("CONNACK 0x%02x", ack.ReasonCode)
	}
	if rec, ok, _ := store.LoadIdentity("alice-p"); !ok || rec.Identity != "alice" || !slices.Equal(rec.Grants.Sub, g.Sub) {
		t.Fatalf("stored %+v %v", rec, ok)
	}

	// A fresh hook, as after a restart: mochi restores alice-p as an offline
	// client; deliveries to it are checked against the stored grants.
	restarted := newHook()
	restored := mqtt.New(&mqtt.Options{}).NewClient(nil, "tcp", "alice-p", false)
	if !restarted.OnACLCheck(restored, "a/x", false) {
		t.Fatal("delivery to the restored session refused")
	}
	if restarted.OnACLCheck(restored, "b/x", false) || restarted.OnACLCheck(restored, "a/x", true) {
		t.Fatal("restored session allowed outside its grants")
	}

	second := brokertest.Start(t, brokertest.WithoutStore(), brokertest.WithOptions(broker.WithAuthHook(restarted, nil)))
	bob := dialRaw(t, second.TCPAddr, 5)
	if ack := bob.connect(connectOpts{clientID: "alice-p", username: "bob", password: mintWith(t, ks, "bob", "alice-p", g)}); ack.ReasonCode != 0x87 {
		t.Fatalf("takeover after restart: CONNACK 0x%02x, want 0x87", ack.ReasonCode)
	}
	bob.expectClosed()

	// alice comes back with a clean, non-persistent session and leaves: the
	// binding is deleted.
	alice2 := dialRaw(t, second.TCPAddr, 5)
	if ack := alice2.connect(connectOpts{clientID: "alice-p", username: "alice", password: mintWith(t, ks, "alice", "alice-p", g), clean: true}); ack.ReasonCode != 0 {
		t.Fatalf("CONNACK 0x%02x", ack.ReasonCode)
	}
	alice2.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Disconnect}})
	select {
	case id := <-store.deleted:
		if id != "alice-p" {
			t.Fatalf("deleted %q", id)
		}
	case <-time.After(waitFor):
		t.Fatal("binding not deleted when the session ended")
	}
	if _, ok, _ := store.LoadIdentity("alice-p"); ok {
		t.Fatal("binding still stored")
	}
}

// TestReauthStripsForbiddenWill: a re-authentication whose grants no longer
// cover the Will topic clears the Will, so it is never published.
func TestReauthStripsForbiddenWill(t *testing.T) {
	t.Parallel()
	key, _ := auth.GenerateEd25519Key("k1")
	ks, _ := auth.NewKeySet("k1", key)
	h, err := hooks.NewTokenAuth(hooks.TokenAuthOptions{Verifier: auth.NewVerifier(ks.Public(), auth.VerifierOptions{})})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Stop()
	cl := mqtt.New(&mqtt.Options{}).NewClient(nil, "tcp", "c1", false)
	cl.Properties.ProtocolVersion = 5
	cl.Properties.Will = mqtt.Will{Flag: 1, TopicName: "status/c1"}
	connect := packets.Packet{Connect: packets.ConnectParams{
		ClientIdentifier: "c1", WillFlag: true, WillTopic: "status/c1",
		Password: []byte(mintWith(t, ks, "alice", "c1", auth.Grants{Pub: []string{"status/%c"}})),
	}}
	if err := h.OnConnect(cl, connect); err != nil {
		t.Fatalf("OnConnect: %v", err)
	}
	if cl.Properties.Will.Flag != 1 {
		t.Fatal("permitted Will cleared at CONNECT")
	}
	reauth := packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Auth},
		ReasonCode:  packets.CodeReAuthenticate.Code,
		Properties: packets.Properties{AuthenticationMethod: hooks.AuthMethod,
			AuthenticationData: []byte(mintWith(t, ks, "alice", "c1", auth.Grants{Pub: []string{"other"}}))},
	}
	_, _ = h.OnAuthPacket(cl, reauth) // the AUTH answer cannot be written: no connection
	if cl.Properties.Will.Flag != 0 {
		t.Fatal("Will outside the new grants still armed")
	}
}
