package hooks_test

import (
	"encoding/base64"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/courier-mqtt/courier/auth"
	"github.com/courier-mqtt/courier/hooks"
)

// TestConnectRefused is the CONNECT half of the attack matrix: every row is
// refused with the right reason code (MQTT 5 and 3.1.1), the connection is
// closed, and nothing leaks (the refused client's Will is never published).
func TestConnectRefused(t *testing.T) {
	t.Parallel()
	f := newTokenFixture(t, time.Second)
	g := auth.Grants{Pub: []string{"#"}, Sub: []string{"#"}}

	watcher := f.connectV5(t, "watcher", "watcher", auth.Grants{Pub: []string{"done"}, Sub: []string{"#"}})
	if codes := watcher.subscribe("#"); codes[0] != 1 {
		t.Fatalf("watcher SUBACK %v", codes)
	}

	otherKey, _ := auth.GenerateEd25519Key("k1") // same kid, other key: a forgery
	forger, _ := auth.NewKeySet("k1", otherKey)
	unknownKey, _ := auth.GenerateEd25519Key("k9")
	unknown, _ := auth.NewKeySet("k9", unknownKey)
	expired := func(c *auth.Claims) {
		c.IssuedAt, c.NotBefore, c.ExpiresAt = time.Now().Add(-2*time.Hour), time.Now().Add(-2*time.Hour), time.Now().Add(-time.Minute)
	}
	notYet := func(c *auth.Claims) { c.NotBefore = time.Now().Add(time.Minute); c.IssuedAt = c.NotBefore }
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"k1"}`)) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"alice","cid":"c-none","exp":4102444800}`)) + "."

	tests := []struct {
		name           string
		cid, user, tok string
		v5, v3         byte
		cause          error
	}{
		{"forged signature", "c-forged", "alice", mintWith(t, forger, "alice", "c-forged", g), 0x86, 4, auth.ErrBadSignature},
		{"unknown key id", "c-unknown", "alice", mintWith(t, unknown, "alice", "c-unknown", g), 0x86, 4, auth.ErrUnknownKey},
		{"expired", "c-expired", "alice", f.mint(t, "alice", "c-expired", g, expired), 0x86, 4, auth.ErrTokenExpired},
		{"not yet valid", "c-notyet", "alice", f.mint(t, "alice", "c-notyet", g, notYet), 0x86, 4, auth.ErrTokenNotYetValid},
		{"alg none", "c-none", "alice", none, 0x86, 4, auth.ErrAlgorithm},
		{"no password", "c-nopass", "alice", "", 0x86, 4, auth.ErrMalformed},
		{"username is not the subject", "c-user", "mallory", f.mint(t, "alice", "c-user", g), 0x86, 4, hooks.ErrUsernameMismatch},
		{"token for client id A used as B", "B", "alice", f.mint(t, "alice", "A", g), 0x87, 5, hooks.ErrClientIDMismatch},
	}
	for _, tt := range tests {
		for _, ver := range []byte{5, 4} {
			want := tt.v5
			if ver == 4 {
				want = tt.v3
			}
			t.Run(tt.name+"/v"+string('0'+ver), func(t *testing.T) {
				rc := dialRaw(t, f.srv.TCPAddr, ver)
				ack := rc.connect(connectOpts{clientID: tt.cid, username: tt.user, password: tt.tok, clean: true, will: "leak/will"})
				if ack.ReasonCode != want {
					t.Fatalf("CONNACK 0x%02x, want 0x%02x", ack.ReasonCode, want)
				}
				if ack.SessionPresent {
					t.Fatal("session present on a refused CONNACK [MQTT-3.2.2-6]")
				}
				rc.expectClosed()
				d, ok := f.lastDenial(hooks.OpConnect, tt.cid)
				if !ok || d.Reason != tt.v5 || !errors.Is(d.Err, tt.cause) {
					t.Fatalf("denial %+v (found %v), want reason 0x%02x cause %v", d, ok, tt.v5, tt.cause)
				}
			})
		}
	}

	pub := f.connectV5(t, "pub", "pub", auth.Grants{Pub: []string{"done"}})
	if _, err := pub.publish("done", false); err != nil {
		t.Fatal(err)
	}
	if leaked := watcher.collectUntil("done"); len(leaked) != 0 {
		t.Fatalf("watcher saw %v from refused clients", leaked)
	}
}

// TestSubscribeContainment: a grant "a/+" does not allow "a/#", $SYS needs
// admin, and nothing on the refused filters reaches the client.
func TestSubscribeContainment(t *testing.T) {
	t.Parallel()
	f := newTokenFixture(t, time.Second)
	pub := f.connectV5(t, "pub", "pub", auth.Grants{Pub: []string{"#"}})
	for _, tc := range []struct {
		ver  byte
		deny byte
	}{{5, 0x87}, {4, 0x80}} {
		t.Run("v"+string('0'+tc.ver), func(t *testing.T) {
			cid := "alice-v" + string('0'+tc.ver)
			rc := dialRaw(t, f.srv.TCPAddr, tc.ver)
			tok := f.mint(t, "alice", cid, auth.Grants{Sub: []string{"a/+"}})
			if ack := rc.connect(connectOpts{clientID: cid, username: "alice", password: tok, clean: true}); ack.ReasonCode != 0 {
				t.Fatalf("CONNACK 0x%02x", ack.ReasonCode)
			}
			got := rc.subscribe("a/#", "a/+", "$SYS/#", "$share/g/a/#", "$share/g/a/+", "+/+")
			want := []byte{tc.deny, 1, tc.deny, tc.deny, 1, tc.deny}
			if !slices.Equal(got, want) {
				t.Fatalf("SUBACK %x, want %x", got, want)
			}
			if d, ok := f.lastDenial(hooks.OpSubscribe, cid); !ok || d.Identity != "alice" {
				t.Fatalf("no subscribe denial recorded: %+v", d)
			}
			for _, topic := range []string{"a/x/y", "b/c", "a/done"} {
				if _, err := pub.publish(topic, false); err != nil {
					t.Fatal(err)
				}
			}
			if leaked := rc.collectUntil("a/done"); len(leaked) != 0 {
				t.Fatalf("received %v outside the grant", leaked)
			}
		})
	}
}

// TestSysNeedsAdmin: $SYS/# is refused without the admin flag and granted
// with it.
func TestSysNeedsAdmin(t *testing.T) {
	t.Parallel()
	f := newTokenFixture(t, time.Second)
	g := auth.Grants{Sub: []string{"#", "$SYS/#"}}
	user := f.connectV5(t, "user", "user", g)
	if got := user.subscribe("$SYS/#", "$SYS/broker/uptime"); !slices.Equal(got, []byte{0x87, 0x87}) {
		t.Fatalf("non-admin SUBACK %x", got)
	}
	root := f.connectV5(t, "root", "root", auth.Grants{}, admin)
	if got := root.subscribe("$SYS/#"); !slices.Equal(got, []byte{1}) {
		t.Fatalf("admin SUBACK %x", got)
	}
	// The user also subscribed to "#": $SYS must not arrive through it.
	if got := user.subscribe("#", "done"); !slices.Equal(got, []byte{1, 1}) {
		t.Fatalf("SUBACK %x", got)
	}
	pub := f.connectV5(t, "pub", "pub", auth.Grants{Pub: []string{"done"}})
	if _, err := pub.publish("done", false); err != nil {
		t.Fatal(err)
	}
	for _, topic := range user.collectUntil("done") {
		if topic[0] == '$' {
			t.Fatalf("non-admin received %q", topic)
		}
	}
}

// TestRetainedForbiddenTopic: mochi's retained scan for "#" and "+/secret"
// returns messages on $-topics other than $SYS (wildcards must not match
// them [MQTT-4.7.2-1]); the read check keeps such a message from a
// subscriber whose grants do not name it, while permitted retained messages
// on the same wildcards still arrive.
func TestRetainedForbiddenTopic(t *testing.T) {
	t.Parallel()
	f := newTokenFixture(t, time.Second)
	pub := f.connectV5(t, "pub", "pub", auth.Grants{Pub: []string{"$private/#", "x/#"}})
	for _, topic := range []string{"$private/secret", "x/ok", "x/secret"} {
		if ack, err := pub.publish(topic, true); err != nil || ack.ReasonCode != 0 {
			t.Fatalf("retain %s: %v 0x%02x", topic, err, ack.ReasonCode)
		}
	}
	// mochi acknowledges a PUBLISH before it fans it out: without this
	// PINGREQ the last message could still be routing when sub subscribes
	// and reach it live as well as retained. mochi handles one client's
	// packets in order, so the PINGRESP comes after the fan-out.
	pub.ping()
	sub := f.connectV5(t, "sub", "sub", auth.Grants{Sub: []string{"#", "+/secret"}})
	if got := sub.subscribe("#", "+/secret"); !slices.Equal(got, []byte{1, 1}) {
		t.Fatalf("SUBACK %x", got)
	}
	// mochi sends retained messages after the SUBACK, on the same goroutine
	// that answers the next packet: after PINGRESP every ACL decision is made.
	sub.ping()
	if n := f.countDenials(hooks.OpRead, "sub", "$private/secret"); n != 2 {
		t.Fatalf("%d read denials for $private/secret, want 2 (one per filter)", n)
	}
	seen := sub.collectN(3)
	slices.Sort(seen)
	if want := []string{"x/ok", "x/secret", "x/secret"}; !slices.Equal(seen, want) {
		t.Fatalf("retained delivered %v, want %v", seen, want)
	}
	sub.ping()
	if len(sub.pending) != 0 {
		t.Fatalf("extra delivery %q", sub.pending[0].TopicName)
	}
}

// TestWillOutsideGrantRefused: mochi publishes and retains a Will without an
// ACL check, so a Will topic outside the publish grants is refused at
// CONNECT; a permitted Will is still delivered when the client drops.
func TestWillOutsideGrantRefused(t *testing.T) {
	t.Parallel()
	f := newTokenFixture(t, time.Second)
	watcher := f.connectV5(t, "watcher", "watcher", auth.Grants{Sub: []string{"#"}})
	watcher.subscribe("#")
	g := auth.Grants{Pub: []string{"devices/%c/status"}}
	for _, tc := range []struct{ ver, want byte }{{5, 0x87}, {4, 5}} {
		cid := "w-v" + string('0'+tc.ver)
		rc := dialRaw(t, f.srv.TCPAddr, tc.ver)
		ack := rc.connect(connectOpts{clientID: cid, username: "alice", password: f.mint(t, "alice", cid, g), clean: true, will: "alerts/global"})
		if ack.ReasonCode != tc.want {
			t.Fatalf("v%d: CONNACK 0x%02x, want 0x%02x", tc.ver, ack.ReasonCode, tc.want)
		}
		rc.expectClosed()
		if d, ok := f.lastDenial(hooks.OpConnect, cid); !ok || !errors.Is(d.Err, hooks.ErrWillNotAllowed) {
			t.Fatalf("denial %+v", d)
		}
	}
	ok := dialRaw(t, f.srv.TCPAddr, 5)
	if ack := ok.connect(connectOpts{clientID: "w-ok", password: f.mint(t, "alice", "w-ok", g), clean: true, will: "devices/w-ok/status"}); ack.ReasonCode != 0 {
		t.Fatalf("permitted will: CONNACK 0x%02x", ack.ReasonCode)
	}
	ok.c.Close() // drop without DISCONNECT: the Will goes out
	if got := watcher.collectN(1); got[0] != "devices/w-ok/status" {
		t.Fatalf("watcher got %v, want only the permitted Will", got)
	}
}
