package hooks_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	paho3 "github.com/eclipse/paho.mqtt.golang"
	p3packets "github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/courier-mqtt/courier/auth"
	"github.com/courier-mqtt/courier/broker"
	"github.com/courier-mqtt/courier/broker/brokertest"
	"github.com/courier-mqtt/courier/hooks"
)

const appKey = "ck_app-test-key"

// loop is the whole Courier loop: an HTTP token API and a broker sharing a
// key set (the broker only its public half).
type loop struct {
	srv *brokertest.Server
	api *httptest.Server
}

func newLoop(t *testing.T, perIdentity auth.RateLimit) *loop {
	t.Helper()
	key, err := auth.GenerateEd25519Key("k1")
	if err != nil {
		t.Fatal(err)
	}
	ks, _ := auth.NewKeySet("k1", key)
	h, err := hooks.NewTokenAuth(hooks.TokenAuthOptions{Verifier: auth.NewVerifier(ks.Public(), auth.VerifierOptions{})})
	if err != nil {
		t.Fatal(err)
	}
	srv := brokertest.Start(t, brokertest.WithoutStore(), brokertest.WithOptions(broker.WithAuthHook(h, nil)))
	host, port, _ := net.SplitHostPort(srv.TCPAddr)
	var portN int
	fmt.Sscan(port, &portN)
	iss, err := auth.NewIssuer(auth.IssuerOptions{Keys: ks, Host: host, Port: portN})
	if err != nil {
		t.Fatal(err)
	}
	authn, err := auth.NewAPIKeyAuthenticator([]auth.APIKeyEntry{{Identity: "app", SHA256: auth.HashAPIKey(appKey)}})
	if err != nil {
		t.Fatal(err)
	}
	api, err := auth.NewTokenAPI(auth.TokenAPIOptions{
		Authenticator: authn,
		Issuer:        iss,
		Policies: auth.Policies{Identities: map[string]auth.Policy{"app": {
			ClientID: "%u-*", CleanSession: true, KeepAlive: 30 * time.Second, TokenTTL: time.Hour,
			Publish: []string{"chat/%u"}, Subscribe: []string{"chat/+"},
		}}},
		PerIdentity: perIdentity,
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(api)
	t.Cleanup(hs.Close)
	return &loop{srv: srv, api: hs}
}

func (l *loop) token(t *testing.T, key, clientID string) (int, auth.TokenResponse, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, l.api.URL+auth.TokenPath+"?clientId="+clientID, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := l.api.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr auth.TokenResponse
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode, tr, resp.Header
}

// TestTokenAPIRefusals: the token API rows of the attack matrix.
func TestTokenAPIRefusals(t *testing.T) {
	t.Parallel()
	l := newLoop(t, auth.RateLimit{Rate: 0.001, Burst: 3}) // no refill within the test
	if code, _, _ := l.token(t, "", ""); code != http.StatusUnauthorized {
		t.Fatalf("without key: %d", code)
	}
	if code, _, _ := l.token(t, "ck_wrong", ""); code != http.StatusUnauthorized {
		t.Fatalf("wrong key: %d", code)
	}
	ok, limited := 0, 0
	for range 1000 {
		switch code, _, h := l.token(t, appKey, ""); code {
		case http.StatusOK:
			ok++
		case http.StatusTooManyRequests:
			limited++
			if h.Get("Retry-After") == "" {
				t.Fatal("429 without Retry-After")
			}
		default:
			t.Fatalf("status %d", code)
		}
	}
	if ok != 3 || limited != 1000-3 {
		t.Fatalf("ok=%d limited=%d", ok, limited)
	}
}

// TestSuccessPathV5: API key -> token API -> CONNECT (paho.golang, MQTT 5)
// -> publish and subscribe within the grants; outside them refused.
func TestSuccessPathV5(t *testing.T) {
	t.Parallel()
	l := newLoop(t, auth.RateLimit{})
	code, tr, _ := l.token(t, appKey, "app-phone")
	if code != http.StatusOK {
		t.Fatalf("token API: %d", code)
	}
	conn, err := net.Dial("tcp", net.JoinHostPort(tr.Host, fmt.Sprint(tr.Port)))
	if err != nil {
		t.Fatal(err)
	}
	msgs := make(chan string, 16)
	c := paho.NewClient(paho.ClientConfig{
		Conn: conn,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			msgs <- pr.Packet.Topic + "=" + string(pr.Packet.Payload)
			return true, nil
		}},
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	ca, err := c.Connect(ctx, &paho.Connect{
		ClientID: tr.ClientID, CleanStart: tr.CleanSession, KeepAlive: uint16(tr.KeepAlive),
		Username: tr.Username, UsernameFlag: true, Password: []byte(tr.Password), PasswordFlag: true,
	})
	if err != nil || ca.ReasonCode != 0 {
		t.Fatalf("connect: %v %+v", err, ca)
	}
	defer func() {
		_ = c.Disconnect(&paho.Disconnect{})
		<-c.Done()
	}()
	sa, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "chat/+", QoS: 1}, {Topic: "chat/#", QoS: 1}}})
	// paho reports an error when any filter is refused; the reasons tell which.
	if sa == nil || len(sa.Reasons) != 2 || sa.Reasons[0] != 1 || sa.Reasons[1] != 0x87 {
		t.Fatalf("subscribe: %v %+v", err, sa)
	}
	if _, err := c.Publish(ctx, &paho.Publish{Topic: "chat/app", QoS: 1, Payload: []byte("hello")}); err != nil {
		t.Fatalf("publish within grant: %v", err)
	}
	select {
	case m := <-msgs:
		if m != "chat/app=hello" {
			t.Fatalf("received %q", m)
		}
	case <-time.After(waitFor):
		t.Fatal("no message within the grant")
	}
	pr, err := c.Publish(ctx, &paho.Publish{Topic: "chat/bob", QoS: 1, Payload: []byte("spoof")})
	if err == nil || pr == nil || pr.ReasonCode != 0x87 {
		t.Fatalf("publish outside grant: %v %+v", err, pr)
	}

	// Before the token expires the client fetches a fresh one for the same
	// client id and re-authenticates in band.
	code, fresh, _ := l.token(t, appKey, tr.ClientID)
	if code != http.StatusOK || fresh.Password == tr.Password {
		t.Fatalf("fresh token: %d", code)
	}
	ar, err := c.Authenticate(ctx, &paho.Auth{ReasonCode: 0x19, Properties: &paho.AuthProperties{
		AuthMethod: hooks.AuthMethod, AuthData: []byte(fresh.Password)}})
	if err != nil || ar == nil || !ar.Success {
		t.Fatalf("re-authenticate: %v %+v", err, ar)
	}
	if _, err := c.Publish(ctx, &paho.Publish{Topic: "chat/app", QoS: 1, Payload: []byte("after")}); err != nil {
		t.Fatalf("publish after re-auth: %v", err)
	}
}

// TestSuccessPathV311: the same loop with paho.mqtt.golang (MQTT 3.1.1),
// and a refused token seen by that client as return code 4.
func TestSuccessPathV311(t *testing.T) {
	t.Parallel()
	l := newLoop(t, auth.RateLimit{})
	code, tr, _ := l.token(t, appKey, "")
	if code != http.StatusOK {
		t.Fatalf("token API: %d", code)
	}
	msgs := make(chan string, 16)
	newClient := func(cid, user, pass string) paho3.Client {
		o := paho3.NewClientOptions().AddBroker(fmt.Sprintf("tcp://%s:%d", tr.Host, tr.Port)).
			SetClientID(cid).SetUsername(user).SetPassword(pass).SetProtocolVersion(4).
			SetCleanSession(true).SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(waitFor)
		return paho3.NewClient(o)
	}
	c := newClient(tr.ClientID, tr.Username, tr.Password)
	if tok := c.Connect(); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer c.Disconnect(100)
	tok := c.Subscribe("chat/+", 1, func(_ paho3.Client, m paho3.Message) { msgs <- m.Topic() })
	if !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	if tok := c.Publish("chat/app", 1, false, "hi"); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	select {
	case m := <-msgs:
		if m != "chat/app" {
			t.Fatalf("received %q", m)
		}
	case <-time.After(waitFor):
		t.Fatal("no message within the grant")
	}

	bad := newClient("app-x", "app", tr.Password) // token bound to another client id
	tok = bad.Connect()
	if !tok.WaitTimeout(waitFor) || !errors.Is(tok.Error(), packets3NotAuthorized) {
		t.Fatalf("client id mismatch: %v", tok.Error())
	}
	bad = newClient(tr.ClientID+"x", "app", "not-a-token")
	tok = bad.Connect()
	if !tok.WaitTimeout(waitFor) || !errors.Is(tok.Error(), packets3BadCredentials) {
		t.Fatalf("bad token: %v", tok.Error())
	}
}

var (
	packets3NotAuthorized  = p3packets.ErrorRefusedNotAuthorised
	packets3BadCredentials = p3packets.ErrorRefusedBadUsernameOrPassword
)
