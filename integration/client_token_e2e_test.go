package integration_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/courier-mqtt/courier/auth"
	"github.com/courier-mqtt/courier/broker"
	"github.com/courier-mqtt/courier/broker/brokertest"
	"github.com/courier-mqtt/courier/client"
)

// clientTokenStack is the real token API (auth.TokenAPI over httptest) in front of a
// broker that verifies its tokens.
type clientTokenStack struct {
	srv    *brokertest.Server
	api    *httptest.Server
	apiKey string
}

func startClientTokenStack(t *testing.T) *clientTokenStack {
	t.Helper()
	key, err := auth.GenerateEd25519Key("k1")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := auth.NewKeySet("k1", key)
	if err != nil {
		t.Fatal(err)
	}
	srv := brokertest.Start(t, brokertest.WithoutStore(),
		brokertest.WithOptions(broker.WithTokenVerifier(auth.NewVerifier(keys, auth.VerifierOptions{}))))
	host, port := clientSplitAddr(t, srv.TCPAddr)
	issuer, err := auth.NewIssuer(auth.IssuerOptions{Keys: keys, Host: host, Port: int(port)})
	if err != nil {
		t.Fatal(err)
	}
	apiKey, entry, err := auth.NewAPIKeyEntry("app")
	if err != nil {
		t.Fatal(err)
	}
	authn, err := auth.NewAPIKeyAuthenticator([]auth.APIKeyEntry{entry})
	if err != nil {
		t.Fatal(err)
	}
	api, err := auth.NewTokenAPI(auth.TokenAPIOptions{
		Authenticator: authn,
		Issuer:        issuer,
		Policies: auth.Policies{Default: &auth.Policy{
			ClientID: "%u-*", KeepAlive: 30 * time.Second,
			Publish: []string{"chat/%u/#"}, Subscribe: []string{"chat/#"},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(api)
	t.Cleanup(hs.Close)
	return &clientTokenStack{srv: srv, api: hs, apiKey: apiKey}
}

func TestClientWithRealTokenAPI(t *testing.T) {
	st := startClientTokenStack(t)
	tok, err := client.NewTokenAPI(st.api.URL+auth.TokenPath+"?clientId=app-phone",
		client.WithTokenHeader(http.Header{"Authorization": {"Bearer " + st.apiKey}}))
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.NewClient(client.WithTokenAPI(tok), client.WithBackoff(func(int) time.Duration { return 10 * time.Millisecond }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.AwaitConnection(ctx); err != nil {
		t.Fatal(err)
	}
	if info := c.Info(); info.ClientID != "app-phone" || info.Username != "app" || info.KeepAlive != 30*time.Second || info.Address != st.srv.TCPAddr {
		t.Fatalf("connection from the token: %+v", info)
	}
	got := make(chan *client.Message, 1)
	if err := c.Subscribe(ctx, "chat/#", func(_ context.Context, _ client.PubSub, m *client.Message) { got <- m }, client.QOSOne); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(ctx, "chat/app/room", "hello", client.QOSOne); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if string(m.Payload()) != "hello" {
			t.Fatalf("got %q", m.Payload())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no message")
	}
	if err := c.Publish(ctx, "chat/other/room", "spoof", client.QOSOne); !errors.Is(err, client.ErrNotAuthorized) {
		t.Fatalf("publish outside the grant: %v, want ErrNotAuthorized", err)
	}
}

func TestClientTokenAPIWrongKeyIsNotRetried(t *testing.T) {
	st := startClientTokenStack(t)
	tok, err := client.NewTokenAPI(st.api.URL+auth.TokenPath,
		client.WithTokenHeader(http.Header{"Authorization": {"Bearer wrong"}}),
		client.WithTokenRetry(3, time.Millisecond, 5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.NewClient(client.WithTokenAPI(tok), client.WithAutoReconnect(false))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Start()
	if !errors.Is(err, client.ErrTokenRejected) {
		t.Fatalf("Start: %v, want ErrTokenRejected", err)
	}
	if n := tok.Fetches(); n != 1 {
		t.Fatalf("a 401 was retried: %d requests", n)
	}
}
