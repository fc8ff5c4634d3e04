package hooks_test

import (
	"slices"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/courier-mqtt/courier/auth"
	"github.com/courier-mqtt/courier/broker"
	"github.com/courier-mqtt/courier/broker/brokertest"
	"github.com/courier-mqtt/courier/hooks"
)

func hash(t *testing.T, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func TestUsersAuth(t *testing.T) {
	t.Parallel()
	users, err := auth.NewUsers(map[string]auth.UserEntry{
		"alice": {Password: hash(t, "alice-pw"), Publish: []string{"devices/%c/out"}, Subscribe: []string{"devices/%c/in/+"}},
		"bob":   {Password: hash(t, "bob-pw"), Publish: []string{"#"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu      sync.Mutex
		denials []hooks.Denial
	)
	h, err := hooks.NewUsersAuth(hooks.UsersAuthOptions{Users: users, OnDenied: func(d hooks.Denial) {
		mu.Lock()
		denials = append(denials, d)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	srv := brokertest.Start(t, brokertest.WithoutStore(), brokertest.WithOptions(broker.WithAuthHook(h, nil)))

	t.Run("refused", func(t *testing.T) {
		for _, tc := range []struct {
			name, user, pw, cid string
			v5, v3              byte
		}{
			{"wrong password", "alice", "nope", "x1", 0x86, 4},
			{"unknown user", "mallory", "alice-pw", "x2", 0x86, 4},
			{"no credentials", "", "", "x3", 0x86, 4},
		} {
			for _, ver := range []byte{5, 4} {
				rc := dialRaw(t, srv.TCPAddr, ver)
				want := tc.v5
				if ver == 4 {
					want = tc.v3
				}
				if ack := rc.connect(connectOpts{clientID: tc.cid, username: tc.user, password: tc.pw, clean: true}); ack.ReasonCode != want {
					t.Fatalf("%s v%d: CONNACK 0x%02x, want 0x%02x", tc.name, ver, ack.ReasonCode, want)
				}
				rc.expectClosed()
			}
		}
	})

	alice := dialRaw(t, srv.TCPAddr, 5)
	if ack := alice.connect(connectOpts{clientID: "dev1", username: "alice", password: "alice-pw", clean: true}); ack.ReasonCode != 0 {
		t.Fatalf("alice CONNACK 0x%02x", ack.ReasonCode)
	}
	if got := alice.subscribe("devices/dev1/in/+", "devices/dev1/in/#", "devices/dev2/in/+"); !slices.Equal(got, []byte{1, 0x87, 0x87}) {
		t.Fatalf("SUBACK %x", got)
	}
	if ack, _ := alice.publish("devices/dev1/out", false); ack.ReasonCode != 0 {
		t.Fatalf("own topic: 0x%02x", ack.ReasonCode)
	}
	if ack, _ := alice.publish("devices/dev2/out", false); ack.ReasonCode != 0x87 {
		t.Fatalf("other device: 0x%02x", ack.ReasonCode)
	}

	t.Run("takeover by another user", func(t *testing.T) {
		for _, tc := range []struct{ ver, want byte }{{5, 0x87}, {4, 5}} {
			bob := dialRaw(t, srv.TCPAddr, tc.ver)
			if ack := bob.connect(connectOpts{clientID: "dev1", username: "bob", password: "bob-pw", clean: true}); ack.ReasonCode != tc.want {
				t.Fatalf("v%d: CONNACK 0x%02x, want 0x%02x", tc.ver, ack.ReasonCode, tc.want)
			}
			bob.expectClosed()
		}
		alice.ping()
	})

	bob := dialRaw(t, srv.TCPAddr, 5)
	if ack := bob.connect(connectOpts{clientID: "bob-1", username: "bob", password: "bob-pw", clean: true}); ack.ReasonCode != 0 {
		t.Fatalf("bob CONNACK 0x%02x", ack.ReasonCode)
	}
	for _, topic := range []string{"devices/dev1/in/secret/deep", "devices/dev1/in/cmd"} {
		if _, err := bob.publish(topic, false); err != nil {
			t.Fatal(err)
		}
	}
	if leaked := alice.collectUntil("devices/dev1/in/cmd"); len(leaked) != 0 {
		t.Fatalf("alice received %v", leaked)
	}
	mu.Lock()
	defer mu.Unlock()
	var connects, takeovers int
	for _, d := range denials {
		if d.Op == hooks.OpConnect && d.Reason == 0x86 {
			connects++
		}
		if d.Op == hooks.OpConnect && d.Reason == 0x87 && d.Identity == "bob" {
			takeovers++
		}
	}
	if connects != 6 || takeovers != 2 {
		t.Fatalf("denials: %d bad credentials (want 6), %d takeovers (want 2)", connects, takeovers)
	}
}

// TestTokenAuthUsersFallback: one hook serves apps with tokens and devices
// with users-file passwords.
func TestTokenAuthUsersFallback(t *testing.T) {
	t.Parallel()
	users, err := auth.NewUsers(map[string]auth.UserEntry{
		"dev": {Password: hash(t, "dev-pw"), Publish: []string{"devices/%c/out"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := auth.GenerateEd25519Key("k1")
	ks, _ := auth.NewKeySet("k1", key)
	h, err := hooks.NewTokenAuth(hooks.TokenAuthOptions{Verifier: auth.NewVerifier(ks.Public(), auth.VerifierOptions{}), Users: users})
	if err != nil {
		t.Fatal(err)
	}
	srv := brokertest.Start(t, brokertest.WithoutStore(), brokertest.WithOptions(broker.WithAuthHook(h, nil)))

	dev := dialRaw(t, srv.TCPAddr, 4)
	if ack := dev.connect(connectOpts{clientID: "d1", username: "dev", password: "dev-pw", clean: true}); ack.ReasonCode != 0 {
		t.Fatalf("device CONNACK %d", ack.ReasonCode)
	}
	if _, err := dev.publish("devices/d1/out", false); err != nil {
		t.Fatalf("device publish: %v", err)
	}
	wrong := dialRaw(t, srv.TCPAddr, 4)
	if ack := wrong.connect(connectOpts{clientID: "d2", username: "dev", password: "nope", clean: true}); ack.ReasonCode != 4 {
		t.Fatalf("wrong password CONNACK %d, want 4", ack.ReasonCode)
	}
	app := dialRaw(t, srv.TCPAddr, 5)
	if ack := app.connect(connectOpts{clientID: "app-1", password: mintWith(t, ks, "app", "app-1", auth.Grants{}), clean: true}); ack.ReasonCode != 0 {
		t.Fatalf("token CONNACK 0x%02x", ack.ReasonCode)
	}
	// A token-shaped password never falls back to the users file.
	forged := dialRaw(t, srv.TCPAddr, 5)
	if ack := forged.connect(connectOpts{clientID: "d1x", username: "dev", password: "a.b.c", clean: true}); ack.ReasonCode != 0x86 {
		t.Fatalf("forged token CONNACK 0x%02x", ack.ReasonCode)
	}
}
