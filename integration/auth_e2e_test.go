package integration_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	paho3 "github.com/eclipse/paho.mqtt.golang"

	"github.com/courier-mqtt/courier/auth"
	"github.com/courier-mqtt/courier/broker"
	"github.com/courier-mqtt/courier/broker/brokertest"
	"github.com/courier-mqtt/courier/client"
)

// tokenBroker starts a broker that checks broker tokens, with the token API
// on 127.0.0.1:0 and one API key per identity in policies; it returns the
// API keys by identity.
func tokenBroker(t testing.TB, policies map[string]auth.Policy, opts ...brokertest.Option) (*brokertest.Server, map[string]string) {
	t.Helper()
	dir := t.TempDir()
	key, err := auth.GenerateEd25519Key("k1")
	if err != nil {
		t.Fatal(err)
	}
	files, err := auth.WriteKeyPair(dir, key)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	var body strings.Builder
	body.WriteString("keys:\n")
	for identity := range policies {
		k, err := auth.GenerateAPIKey()
		if err != nil {
			t.Fatal(err)
		}
		keys[identity] = k
		fmt.Fprintf(&body, "  - identity: %s\n    sha256: %s\n", identity, auth.HashAPIKey(k))
	}
	keysFile := filepath.Join(dir, "api_keys.yaml")
	if err := os.WriteFile(keysFile, []byte(body.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := brokertest.WithConfig(func(c *broker.Config) {
		c.Auth.Keys = []auth.KeyConfig{{ID: "k1", PrivateKeyFile: files.Private}}
		c.Auth.ActiveKey = "k1"
		c.Auth.APIKeysFile = keysFile
		c.Auth.Leeway = 100 * time.Millisecond
		c.Auth.Policies.Identities = policies
		c.TokenAPI.Addr = "127.0.0.1:0"
	})
	return brokertest.Start(t, append([]brokertest.Option{cfg}, opts...)...), keys
}

// tokenAPIFor is our client's token API source for one API key.
func tokenAPIFor(t testing.TB, srv *brokertest.Server, apiKey string) *client.TokenAPI {
	t.Helper()
	api, err := client.NewTokenAPI("http://"+srv.Broker.Addr("token-api")+auth.TokenPath,
		client.WithTokenHeader(http.Header{"Authorization": {"Bearer " + apiKey}}),
		client.WithTokenRetry(3, 50*time.Millisecond, 200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	return api
}

// TestAPIKeyToTokenToConnectAllowsTrafficWithinGrantsOnly walks the Courier
// auth path: an API key buys a token from the token API, the token connects,
// and traffic inside the identity's grants flows while a publish outside
// them is refused with 0x87 and never reaches a subscriber.
func TestAPIKeyToTokenToConnectAllowsTrafficWithinGrantsOnly(t *testing.T) {
	t.Parallel()
	srv, keys := tokenBroker(t, map[string]auth.Policy{
		"alice": {Publish: []string{"chat/%u/#"}, Subscribe: []string{"chat/%u/#"}},
		"bob":   {Publish: []string{"chat/%u/#"}, Subscribe: []string{"chat/#"}},
	})
	alice := startClient(t, srv.TCPAddr, client.WithTokenAPI(tokenAPIFor(t, srv, keys["alice"])), client.WithCleanSession(true))
	in := newInbox()
	bob := newClient(t, srv.TCPAddr, client.WithTokenAPI(tokenAPIFor(t, srv, keys["bob"])), client.WithCleanSession(true))
	if err := bob.Subscribe(ctxFor(t), "chat/#", in.handler, client.QOSOne); err != nil {
		t.Fatal(err)
	}
	startSubscribed(t, bob)

	ctx := ctxFor(t)
	if err := alice.Publish(ctx, "chat/alice/room", "hello", client.QOSOne); err != nil {
		t.Fatalf("publish within grants: %v", err)
	}
	err := alice.Publish(ctx, "chat/bob/room", "spoof", client.QOSOne)
	if code, _ := client.ReasonCode(err); code != 0x87 {
		t.Fatalf("publish outside grants: %v, want reason 0x87", err)
	}
	if err := alice.Publish(ctx, "chat/alice/room", "fence", client.QOSOne); err != nil {
		t.Fatal(err)
	}
	got := in.until(t, "fence")
	if len(got) != 1 || got[0].Topic != "chat/alice/room" || got[0].Payload != "hello" {
		t.Fatalf("subscriber got %v, want only the granted message", got)
	}
}

// TestSubscribeOutsideGrantsIsRefusedWithTypedError: a SUBSCRIBE the token
// does not grant is answered 0x87, which our client reports as
// ErrNotAuthorized and does not keep in its subscription store.
func TestSubscribeOutsideGrantsIsRefusedWithTypedError(t *testing.T) {
	t.Parallel()
	srv, keys := tokenBroker(t, map[string]auth.Policy{
		"alice": {Publish: []string{"chat/%u/#"}, Subscribe: []string{"chat/%u/#"}},
	})
	alice := startClient(t, srv.TCPAddr, client.WithTokenAPI(tokenAPIFor(t, srv, keys["alice"])), client.WithCleanSession(true))
	events := alice.Events(256)
	defer events.Close()
	noop := func(_ context.Context, _ client.PubSub, _ *client.Message) {}
	if err := alice.Subscribe(ctxFor(t), "chat/alice/#", noop, client.QOSOne); err != nil {
		t.Fatal(err)
	}
	err := alice.Subscribe(ctxFor(t), "chat/bob/#", noop, client.QOSOne)
	if !errors.Is(err, client.ErrNotAuthorized) {
		t.Fatalf("subscribe outside grants: %v, want ErrNotAuthorized", err)
	}
	if code, _ := client.ReasonCode(err); code != 0x87 {
		t.Fatalf("reason code %#x, want 0x87", code)
	}
	// After a reconnect only the granted filter is renewed.
	srv.Restart(t)
	awaitEvent(t, events, client.EventReconnect)
	if e := awaitEvent(t, events, client.EventSubscribeAttempt); e.Topic != "chat/alice/#" {
		t.Fatalf("renewed %q after reconnect, want only chat/alice/#", e.Topic)
	}
}

// TestTokenExpiryRefetchReconnectResubscribeLosesNoMessage: a subscriber on
// a persistent session holds 3 s tokens (whole-second expiry: they last 2-3
// s, long enough for the check after the first reconnect to end before the
// next expiry, as a resume racing a publish can lose it: see
// TestMessageRoutedDuringSessionResumeIsDelivered). When its token expires
// the broker disconnects it; the client's cached token is refused (0x86), so it fetches
// a new one from the token API, reconnects, renews its subscription, and
// every QoS 1 message published meanwhile by another identity arrives.
func TestTokenExpiryRefetchReconnectResubscribeLosesNoMessage(t *testing.T) {
	t.Parallel()
	srv, keys := tokenBroker(t, map[string]auth.Policy{
		"app":    {ClientID: "%u", TokenTTL: 3 * time.Second, KeepAlive: 5 * time.Second, Subscribe: []string{"chat/%u/#"}},
		"sender": {Publish: []string{"chat/#"}},
	})
	appTokens := tokenAPIFor(t, srv, keys["app"])
	in := newInbox()
	app := newClient(t, srv.TCPAddr, client.WithTokenAPI(appTokens))
	if err := app.Subscribe(ctxFor(t), "chat/app/#", in.handler, client.QOSOne); err != nil {
		t.Fatal(err)
	}
	events := app.Events(1024)
	defer events.Close()
	conns := observe(t, srv, broker.EventClientConnected)
	startSubscribed(t, app)
	awaitBrokerEvent(t, conns, broker.EventClientConnected, "app")
	sender := startClient(t, srv.TCPAddr, client.WithTokenAPI(tokenAPIFor(t, srv, keys["sender"])), client.WithCleanSession(true))

	// Publish steadily until the subscriber has been cut off by its token's
	// expiry and come back with a fresh token, then a little more.
	ctx := ctxFor(t)
	sent := 0
	publish := func() {
		t.Helper()
		if err := sender.Publish(ctx, "chat/app/feed", strconv.Itoa(sent), client.QOSOne); err != nil {
			t.Fatalf("publish %d: %v", sent, err)
		}
		sent++
	}
	tick := time.NewTicker(20 * time.Millisecond) // pacing, not synchronisation
	defer tick.Stop()
	var lost, refused, back bool
	deadline := time.After(waitFor)
	for !back {
		select {
		case e := <-events.C:
			switch {
			case e.Type == client.EventConnectionLost:
				lost = true
			case e.Type == client.EventConnectFailure && lost:
				refused = errors.Is(e.Err, client.ErrBadCredentials)
			case e.Type == client.EventReconnect && lost:
				back = true
			}
		case <-tick.C:
			publish()
		case <-deadline:
			t.Fatalf("no expiry/reconnect cycle (lost=%v)", lost)
		}
	}
	if !refused {
		t.Log("the reconnect did not first try the expired token")
	}
	awaitEvent(t, events, client.EventSubscribeAttempt) // the renewal
	// The broker reports the resumed session once it has queued the
	// messages kept for it; "end" is published after that.
	awaitBrokerEvent(t, conns, broker.EventClientConnected, "app")
	for range 10 {
		publish()
	}
	if err := sender.Publish(ctx, "chat/app/feed", "end", client.QOSOne); err != nil {
		t.Fatal(err)
	}
	// Collect until every message and "end" are in, or the deadline.
	seen := map[string]bool{}
	missing := func() []int {
		var out []int
		for i := range sent {
			if !seen[strconv.Itoa(i)] {
				out = append(out, i)
			}
		}
		return out
	}
	collectUntil := time.After(waitFor)
collect:
	for !seen["end"] || len(missing()) > 0 {
		select {
		case m := <-in.c:
			seen[m.Payload] = true
		case <-collectUntil:
			break collect
		}
	}
	if !seen["end"] {
		t.Errorf("the last message (\"end\") never arrived")
	}
	if lost := missing(); len(lost) > 0 {
		t.Errorf("%d of %d messages lost across the token expiry: %v", len(lost), sent, lost)
	}
	if n := appTokens.Fetches(); n < 2 {
		t.Errorf("%d token fetches, want a refetch after expiry", n)
	}
}

// fetchToken asks the token API for a token with an API key.
func fetchToken(t testing.TB, srv *brokertest.Server, apiKey string) auth.TokenResponse {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+srv.Broker.Addr("token-api")+auth.TokenPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("token API status %d", resp.StatusCode)
	}
	var tr auth.TokenResponse
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil {
		t.Fatal(err)
	}
	return tr
}

// TestTokenCleanSessionLeavesNoSessionBehind: the token API hands out
// cleanSession: true (Courier's MQTT 3.1.1 meaning: the session ends with the
// connection). After our client disconnects, the broker must hold no session
// for it: a later connection with the same client id finds none.
func TestTokenCleanSessionLeavesNoSessionBehind(t *testing.T) {
	t.Parallel()
	srv, keys := tokenBroker(t, map[string]auth.Policy{
		"user1": {ClientID: "%u", CleanSession: true, Publish: []string{"chat/%u/#"}, Subscribe: []string{"chat/%u/#"}},
	})
	c := newClient(t, srv.TCPAddr, client.WithTokenAPI(tokenAPIFor(t, srv, keys["user1"])))
	if err := c.Subscribe(context.Background(), "chat/user1/#", nil, client.QOSOne); err != nil {
		t.Fatal(err)
	}
	startSubscribed(t, c)
	obs := observe(t, srv, broker.EventClientDisconnected)
	c.Stop()
	awaitBrokerEvent(t, obs, broker.EventClientDisconnected, "user1")

	tr := fetchToken(t, srv, keys["user1"])
	probe := dialV3(t, srv.TCPAddr, tr.ClientID, false, nil, func(o *paho3.ClientOptions) {
		o.SetUsername(tr.Username)
		o.SetPassword(tr.Password)
	})
	if probe.present() {
		t.Errorf("a session for %s outlived a cleanSession: true connection", tr.ClientID)
	}
}
