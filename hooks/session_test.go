package hooks_test

import (
	"slices"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/courier-mqtt/courier/auth"
	"github.com/courier-mqtt/courier/hooks"
)

// TestTakeoverByOtherIdentityRefused: a token for another identity that
// names a bound client id is refused (0x87 / 5) and the session stays with
// its owner, connected or offline.
func TestTakeoverByOtherIdentityRefused(t *testing.T) {
	t.Parallel()
	f := newTokenFixture(t, time.Second)
	g := auth.Grants{Pub: []string{"a/#"}, Sub: []string{"a/#"}}
	alice := dialRaw(t, f.srv.TCPAddr, 5)
	ack := alice.connect(connectOpts{clientID: "shared-1", username: "alice", password: f.mint(t, "alice", "shared-1", g), sessionExpiry: 300})
	if ack.ReasonCode != 0 {
		t.Fatalf("alice CONNACK 0x%02x", ack.ReasonCode)
	}
	if got := alice.subscribe("a/b"); !slices.Equal(got, []byte{1}) {
		t.Fatalf("SUBACK %x", got)
	}

	for _, tc := range []struct {
		ver  byte
		want byte
	}{{5, 0x87}, {4, 5}} {
		bob := dialRaw(t, f.srv.TCPAddr, tc.ver)
		ack := bob.connect(connectOpts{clientID: "shared-1", username: "bob", password: f.mint(t, "bob", "shared-1", g)})
		if ack.ReasonCode != tc.want || ack.SessionPresent {
			t.Fatalf("v%d bob CONNACK 0x%02x present=%v, want 0x%02x", tc.ver, ack.ReasonCode, ack.SessionPresent, tc.want)
		}
		bob.expectClosed()
	}
	if d, ok := f.lastDenial(hooks.OpConnect, "shared-1"); !ok || d.Identity != "bob" || d.Reason != 0x87 {
		t.Fatalf("denial %+v", d)
	}

	// alice was not disconnected and still gets her messages.
	alice.ping()
	pub := f.connectV5(t, "pub", "pub", auth.Grants{Pub: []string{"a/#"}})
	if _, err := pub.publish("a/b", false); err != nil {
		t.Fatal(err)
	}
	if got := alice.collectN(1); got[0] != "a/b" {
		t.Fatalf("alice got %v", got)
	}

	// Offline, the session is still alice's.
	alice.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Disconnect}})
	alice.expectClosed()
	bob := dialRaw(t, f.srv.TCPAddr, 5)
	if ack := bob.connect(connectOpts{clientID: "shared-1", username: "bob", password: f.mint(t, "bob", "shared-1", g)}); ack.ReasonCode != 0x87 {
		t.Fatalf("bob on alice's offline session: CONNACK 0x%02x", ack.ReasonCode)
	}
	bob.expectClosed()
}

// TestPersistentSession: a message for an offline persistent session is
// authorized from the stored identity and delivered on reconnect; a
// reconnect with a narrower token stops deliveries on the old, wider
// subscription and drops queued messages the new token does not allow.
func TestPersistentSession(t *testing.T) {
	t.Parallel()
	f := newTokenFixture(t, time.Second)
	wide := auth.Grants{Sub: []string{"a/#"}}
	connect := func(g auth.Grants) *rawClient {
		rc := dialRaw(t, f.srv.TCPAddr, 5)
		ack := rc.connect(connectOpts{clientID: "alice-p", username: "alice", password: f.mint(t, "alice", "alice-p", g), sessionExpiry: 300})
		if ack.ReasonCode != 0 {
			t.Fatalf("CONNACK 0x%02x", ack.ReasonCode)
		}
		return rc
	}
	alice := connect(wide)
	if got := alice.subscribe("a/+"); !slices.Equal(got, []byte{1}) {
		t.Fatalf("SUBACK %x", got)
	}
	alice.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Disconnect}})
	alice.expectClosed()

	pub := f.connectV5(t, "pub", "pub", auth.Grants{Pub: []string{"a/#"}})
	for _, topic := range []string{"a/offline", "a/secret"} {
		if _, err := pub.publish(topic, false); err != nil {
			t.Fatal(err)
		}
	}

	// Reconnect with the same wide grant: both queued messages arrive.
	alice = connect(wide)
	got := alice.collectN(2)
	slices.Sort(got)
	if !slices.Equal(got, []string{"a/offline", "a/secret"}) {
		t.Fatalf("queued delivery %v", got)
	}
	alice.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Disconnect}})
	alice.expectClosed()

	// Queue more while offline, then come back with a narrower token.
	for _, topic := range []string{"a/secret", "a/public"} {
		if _, err := pub.publish(topic, false); err != nil {
			t.Fatal(err)
		}
	}
	alice = connect(auth.Grants{Sub: []string{"a/public"}})
	if got := alice.collectN(1); got[0] != "a/public" {
		t.Fatalf("queued under the old token, delivered under the new: %v", got)
	}
	// Live messages on the old subscription "a/+".
	for _, topic := range []string{"a/secret", "a/public"} {
		if _, err := pub.publish(topic, false); err != nil {
			t.Fatal(err)
		}
	}
	if leaked := alice.collectUntil("a/public"); len(leaked) != 0 {
		t.Fatalf("narrowed token still received %v", leaked)
	}
	if n := f.countDenials(hooks.OpRead, "alice-p", "a/secret"); n < 1 {
		t.Fatal("no read denial for a/secret")
	}
}

// TestPublishDenied: MQTT 5 QoS 1 gets PUBACK 0x87, MQTT 3.1.1 is
// disconnected; subscribers never see the message.
func TestPublishDenied(t *testing.T) {
	t.Parallel()
	f := newTokenFixture(t, time.Second)
	watcher := f.connectV5(t, "watcher", "watcher", auth.Grants{Sub: []string{"#"}})
	watcher.subscribe("#")

	p5 := f.connectV5(t, "p5", "p5", auth.Grants{Pub: []string{"ok/%c"}})
	if ack, err := p5.publish("ok/p5", false); err != nil || ack.ReasonCode != 0 {
		t.Fatalf("permitted publish: %v 0x%02x", err, ack.ReasonCode)
	}
	if ack, err := p5.publish("ok/other", false); err != nil || ack.ReasonCode != 0x87 {
		t.Fatalf("forbidden publish: %v 0x%02x", err, ack.ReasonCode)
	}

	p3 := dialRaw(t, f.srv.TCPAddr, 4)
	if ack := p3.connect(connectOpts{clientID: "p3", username: "p3", password: f.mint(t, "p3", "p3", auth.Grants{Pub: []string{"ok/%c"}}), clean: true}); ack.ReasonCode != 0 {
		t.Fatalf("v3 CONNACK %d", ack.ReasonCode)
	}
	if _, err := p3.publish("ok/other", false); err == nil {
		t.Fatal("v3 forbidden publish was acknowledged")
	}
	if _, err := p5.publish("ok/p5", false); err != nil {
		t.Fatal(err)
	}
	if got := watcher.collectUntil("ok/p5"); len(got) != 0 {
		// the first ok/p5 is the stop marker; nothing may precede it
		t.Fatalf("watcher saw %v", got)
	}
	if got := watcher.collectUntil("ok/p5"); len(got) != 0 {
		t.Fatalf("watcher saw %v", got)
	}
	if d, ok := f.lastDenial(hooks.OpPublish, "p3"); !ok || d.Topic != "ok/other" {
		t.Fatalf("denial %+v", d)
	}
}

// TestTokenExpiryDisconnects: MQTT 5 gets DISCONNECT 0xA0 (maximum connect
// time) when the token expires; MQTT 3.1.1 is closed.
func TestTokenExpiryDisconnects(t *testing.T) {
	t.Parallel()
	f := newTokenFixture(t, -1) // no leeway
	short := func(c *auth.Claims) { c.ExpiresAt = time.Now().Add(3 * time.Second) }
	for _, ver := range []byte{5, 4} {
		t.Run("v"+string('0'+ver), func(t *testing.T) {
			t.Parallel()
			cid := "short-v" + string('0'+ver)
			rc := dialRaw(t, f.srv.TCPAddr, ver)
			tok := f.mint(t, "alice", cid, auth.Grants{}, short)
			if ack := rc.connect(connectOpts{clientID: cid, username: "alice", password: tok, clean: true}); ack.ReasonCode != 0 {
				t.Fatalf("CONNACK 0x%02x", ack.ReasonCode)
			}
			if ver == 5 {
				pk := rc.read()
				if pk.FixedHeader.Type != packets.Disconnect || pk.ReasonCode != 0xA0 {
					t.Fatalf("got %s 0x%02x, want DISCONNECT 0xA0", packets.PacketNames[pk.FixedHeader.Type], pk.ReasonCode)
				}
			}
			rc.expectClosed()
			if d, ok := f.lastDenial(hooks.OpExpired, cid); !ok || d.Reason != 0xA0 {
				t.Fatalf("denial %+v", d)
			}
		})
	}
}

func (rc *rawClient) reauth(method, token string) packets.Packet {
	rc.t.Helper()
	rc.send(packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Auth},
		ReasonCode:  packets.CodeReAuthenticate.Code,
		Properties:  packets.Properties{AuthenticationMethod: method, AuthenticationData: []byte(token)},
	})
	return rc.read()
}

// TestReauthExtendsSession: an AUTH packet with a fresh token is answered
// AUTH 0x00, replaces the grants, and the client outlives the old token.
func TestReauthExtendsSession(t *testing.T) {
	t.Parallel()
	f := newTokenFixture(t, -1)
	exp := time.Now().Add(3 * time.Second)
	short := func(c *auth.Claims) { c.ExpiresAt = exp }
	rc := dialRaw(t, f.srv.TCPAddr, 5)
	if ack := rc.connect(connectOpts{clientID: "re", password: f.mint(t, "alice", "re", auth.Grants{Pub: []string{"old"}}, short), clean: true}); ack.ReasonCode != 0 {
		t.Fatalf("CONNACK 0x%02x", ack.ReasonCode)
	}
	resp := rc.reauth(hooks.AuthMethod, f.mint(t, "alice", "re", auth.Grants{Pub: []string{"new"}}))
	if resp.FixedHeader.Type != packets.Auth || resp.ReasonCode != 0 || resp.Properties.AuthenticationMethod != hooks.AuthMethod {
		t.Fatalf("got %s 0x%02x %q", packets.PacketNames[resp.FixedHeader.Type], resp.ReasonCode, resp.Properties.AuthenticationMethod)
	}
	if ack, _ := rc.publish("new", false); ack.ReasonCode != 0 {
		t.Fatalf("new grant not applied: 0x%02x", ack.ReasonCode)
	}
	if ack, _ := rc.publish("old", false); ack.ReasonCode != 0x87 {
		t.Fatalf("old grant still applied: 0x%02x", ack.ReasonCode)
	}
	// Staying connected past the old expiry can only be shown by waiting for it.
	<-time.After(time.Until(exp) + 500*time.Millisecond)
	rc.ping()
}

// TestReauthRefused: a token for another client id gets DISCONNECT 0x87, a
// wrong method DISCONNECT 0x8C.
func TestReauthRefused(t *testing.T) {
	t.Parallel()
	f := newTokenFixture(t, time.Second)
	for _, tc := range []struct {
		name, method, cid string
		want              byte
	}{
		{"other client id", hooks.AuthMethod, "someone-else", 0x87},
		{"wrong method", "SCRAM-SHA-1", "ra", 0x8C},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := f.connectV5(t, "alice", "ra", auth.Grants{})
			pk := rc.reauth(tc.method, f.mint(t, "alice", tc.cid, auth.Grants{Pub: []string{"#"}}))
			if pk.FixedHeader.Type != packets.Disconnect || pk.ReasonCode != tc.want {
				t.Fatalf("got %s 0x%02x, want DISCONNECT 0x%02x", packets.PacketNames[pk.FixedHeader.Type], pk.ReasonCode, tc.want)
			}
			rc.expectClosed()
		})
	}
}

// TestTopicAliasPublish: mochi checks the ACL before resolving an inbound
// topic alias; the hook resolves it first, so alias-only publishes within
// the grants pass and an alias set on a refused publish stays refused.
func TestTopicAliasPublish(t *testing.T) {
	t.Parallel()
	f := newTokenFixture(t, time.Second)
	watcher := f.connectV5(t, "watcher", "watcher", auth.Grants{Sub: []string{"#"}})
	watcher.subscribe("#")
	rc := f.connectV5(t, "alice", "alias", auth.Grants{Pub: []string{"ok/#"}})
	publish := func(topic string, alias uint16) byte {
		t.Helper()
		rc.pid++
		rc.send(packets.Packet{
			FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1},
			TopicName:   topic, PacketID: rc.pid, Payload: []byte("x"),
			Properties: packets.Properties{TopicAlias: alias, TopicAliasFlag: true},
		})
		for {
			pk := rc.read()
			if pk.FixedHeader.Type == packets.Puback && pk.PacketID == rc.pid {
				return pk.ReasonCode
			}
		}
	}
	steps := []struct {
		topic string
		alias uint16
		want  byte
	}{
		{"ok/a", 1, 0},     // sets alias 1
		{"", 1, 0},         // alias only: ok/a
		{"bad/b", 2, 0x87}, // refused, alias 2 never set
		{"", 2, 0x87},      // alias only: nothing behind it
		{"ok/done", 3, 0},
	}
	for i, s := range steps {
		if got := publish(s.topic, s.alias); got != s.want {
			t.Fatalf("step %d (%q alias %d): PUBACK 0x%02x, want 0x%02x", i, s.topic, s.alias, got, s.want)
		}
	}
	if got := watcher.collectUntil("ok/done"); !slices.Equal(got, []string{"ok/a", "ok/a"}) {
		t.Fatalf("watcher saw %v, want [ok/a ok/a]", got)
	}
}

// TestEnhancedAuthConnect: a CONNECT may carry the token as Authentication
// Data with method AuthMethod (then re-authentication is spec-conformant
// [MQTT-4.12.1-1]); the CONNACK names the method [MQTT-4.12.0-5]. Another
// method is refused with 0x8C.
func TestEnhancedAuthConnect(t *testing.T) {
	t.Parallel()
	f := newTokenFixture(t, time.Second)
	rc := dialRaw(t, f.srv.TCPAddr, 5)
	ack := rc.connect(connectOpts{clientID: "ea", clean: true, authMethod: hooks.AuthMethod,
		authData: f.mint(t, "alice", "ea", auth.Grants{Pub: []string{"x"}})})
	if ack.ReasonCode != 0 || ack.Properties.AuthenticationMethod != hooks.AuthMethod {
		t.Fatalf("CONNACK 0x%02x method %q", ack.ReasonCode, ack.Properties.AuthenticationMethod)
	}
	if resp := rc.reauth(hooks.AuthMethod, f.mint(t, "alice", "ea", auth.Grants{})); resp.FixedHeader.Type != packets.Auth || resp.ReasonCode != 0 {
		t.Fatalf("re-auth: %s 0x%02x", packets.PacketNames[resp.FixedHeader.Type], resp.ReasonCode)
	}

	other := dialRaw(t, f.srv.TCPAddr, 5)
	ack = other.connect(connectOpts{clientID: "eb", clean: true, authMethod: "SCRAM-SHA-256", authData: "x"})
	if ack.ReasonCode != 0x8C {
		t.Fatalf("unknown method: CONNACK 0x%02x, want 0x8C", ack.ReasonCode)
	}
	other.expectClosed()

	// A plain password CONNACK carries no method.
	plain := dialRaw(t, f.srv.TCPAddr, 5)
	ack = plain.connect(connectOpts{clientID: "ec", clean: true, password: f.mint(t, "alice", "ec", auth.Grants{})})
	if ack.ReasonCode != 0 || ack.Properties.AuthenticationMethod != "" {
		t.Fatalf("plain CONNACK 0x%02x method %q", ack.ReasonCode, ack.Properties.AuthenticationMethod)
	}
}
