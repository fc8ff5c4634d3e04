package hooks_test

import (
	"sync"
	"testing"
	"time"

	"github.com/courier-mqtt/courier/auth"
	"github.com/courier-mqtt/courier/broker"
	"github.com/courier-mqtt/courier/broker/brokertest"
	"github.com/courier-mqtt/courier/hooks"
)

// fixture is a real broker with the token auth hook, and the key to mint
// tokens for it.
type fixture struct {
	srv  *brokertest.Server
	keys *auth.KeySet

	mu      sync.Mutex
	denials []hooks.Denial
}

func newTokenFixture(t *testing.T, leeway time.Duration) *fixture {
	t.Helper()
	key, err := auth.GenerateEd25519Key("k1")
	if err != nil {
		t.Fatal(err)
	}
	ks, err := auth.NewKeySet("k1", key)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{keys: ks}
	h, err := hooks.NewTokenAuth(hooks.TokenAuthOptions{
		Verifier: auth.NewVerifier(ks.Public(), auth.VerifierOptions{Leeway: leeway}),
		OnDenied: f.record,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = brokertest.Start(t, brokertest.WithoutStore(), brokertest.WithOptions(broker.WithAuthHook(h, nil)))
	return f
}

func (f *fixture) record(d hooks.Denial) {
	f.mu.Lock()
	f.denials = append(f.denials, d)
	f.mu.Unlock()
}

// lastDenial returns the most recent denial of op for clientID.
func (f *fixture) lastDenial(op, clientID string) (hooks.Denial, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.denials) - 1; i >= 0; i-- {
		if d := f.denials[i]; d.Op == op && d.ClientID == clientID {
			return d, true
		}
	}
	return hooks.Denial{}, false
}

// countDenials counts denials of op for clientID on topic.
func (f *fixture) countDenials(op, clientID, topic string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, d := range f.denials {
		if d.Op == op && d.ClientID == clientID && d.Topic == topic {
			n++
		}
	}
	return n
}

type claimOpt func(*auth.Claims)

func admin(c *auth.Claims) { c.Admin = true }

// mint signs a token valid for an hour.
func (f *fixture) mint(t *testing.T, sub, cid string, g auth.Grants, opts ...claimOpt) string {
	t.Helper()
	return mintWith(t, f.keys, sub, cid, g, opts...)
}

func mintWith(t *testing.T, ks *auth.KeySet, sub, cid string, g auth.Grants, opts ...claimOpt) string {
	t.Helper()
	now := time.Now()
	c := &auth.Claims{
		Subject: sub, ClientID: cid, IssuedAt: now, NotBefore: now,
		ExpiresAt: now.Add(time.Hour), ID: cid + "-jti", Perms: g,
	}
	for _, o := range opts {
		o(c)
	}
	tok, err := ks.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// connectV5 connects an authorized MQTT 5 raw client or fails the test.
func (f *fixture) connectV5(t *testing.T, sub, cid string, g auth.Grants, opts ...claimOpt) *rawClient {
	t.Helper()
	rc := dialRaw(t, f.srv.TCPAddr, 5)
	ack := rc.connect(connectOpts{clientID: cid, username: sub, password: f.mint(t, sub, cid, g, opts...), clean: true})
	if ack.ReasonCode != 0 {
		t.Fatalf("connect %s: CONNACK 0x%02x", cid, ack.ReasonCode)
	}
	return rc
}
