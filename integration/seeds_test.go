package integration_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/courier-mqtt/courier/auth"
	"github.com/courier-mqtt/courier/broker"
	"github.com/courier-mqtt/courier/broker/brokertest"
	"github.com/courier-mqtt/courier/client"
)

// usersBroker starts a broker that authenticates against a users file with
// bcrypt hashes (at bcrypt's minimum cost, to keep -race runs quick); users
// maps username to password and every user may use "<prefix>/#".
func usersBroker(t testing.TB, prefix string, users map[string]string, opts ...brokertest.Option) *brokertest.Server {
	t.Helper()
	var b strings.Builder
	b.WriteString("users:\n")
	for name, pw := range users {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "  %s:\n    password: %q\n    publish: [%q]\n    subscribe: [%q]\n", name, h, prefix+"/#", prefix+"/#")
	}
	path := filepath.Join(t.TempDir(), "users.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := brokertest.WithConfig(func(c *broker.Config) { c.Auth.UsersFile = path })
	return brokertest.Start(t, append([]brokertest.Option{cfg}, opts...)...)
}

// TestSeedCourierGoGettingStartedTickerPublisherDeliversEveryTick runs
// courier-go's getting-started program against our stack: a client with
// username, password and address publishes {"time": <unix nanos>} at QoS 1
// on every tick until interrupted, then stops; a subscriber receives each
// tick. The interval is 20 ms instead of 1 s.
func TestSeedCourierGoGettingStartedTickerPublisherDeliversEveryTick(t *testing.T) {
	t.Parallel()
	srv := usersBroker(t, "ticks", map[string]string{"courier": "s3cret", "reader": "r3ader"})
	host, port := hostPort(t, srv.TCPAddr)

	type tick struct {
		Time int64 `json:"time"`
	}
	got := make(chan int64, 1000)
	reader := newClient(t, srv.TCPAddr, client.WithUsername("reader"), client.WithPassword("r3ader"), client.WithClientID(unique("reader")))
	if err := reader.Subscribe(context.Background(), "ticks/time", func(_ context.Context, _ client.PubSub, m *client.Message) {
		var v tick
		if err := m.DecodePayload(&v); err != nil {
			t.Errorf("decode %q: %v", m.Payload(), err)
		}
		got <- v.Time
	}, client.QOSOne); err != nil {
		t.Fatal(err)
	}
	startSubscribed(t, reader)

	// The seed program, with the signal replaced by a channel.
	c, err := client.NewClient(
		client.WithUsername("courier"),
		client.WithPassword("s3cret"),
		client.WithAddress(host, port),
		client.WithClientID(unique("ticker")),
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	awaitConnected(t, c)
	stopCh := make(chan struct{})
	sentCh := make(chan []int64, 1)
	go func() {
		var sent []int64
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case now := <-tk.C:
				msg := map[string]any{"time": now.UnixNano()}
				if err := c.Publish(context.Background(), "ticks/time", msg, client.QOSOne); err != nil {
					t.Errorf("publish: %v", err)
				}
				sent = append(sent, now.UnixNano())
			case <-stopCh:
				sentCh <- sent
				return
			}
		}
	}()

	// "Interrupt" after ten ticks have been received.
	var recv []int64
	for len(recv) < 10 {
		select {
		case v := <-got:
			recv = append(recv, v)
		case <-time.After(waitFor):
			t.Fatalf("only %d ticks received", len(recv))
		}
	}
	close(stopCh)
	sent := <-sentCh
	c.Stop()
	for len(recv) < len(sent) {
		select {
		case v := <-got:
			recv = append(recv, v)
		case <-time.After(waitFor):
			t.Fatalf("received %d of %d ticks", len(recv), len(sent))
		}
	}
	if fmt.Sprint(recv) != fmt.Sprint(sent) {
		t.Fatalf("ticks received differ from ticks sent:\n got  %v\n sent %v", recv, sent)
	}
}

// chatMessage is the Flutter sample's typed message.
type chatMessage struct {
	From string `json:"from"`
	Text string `json:"text"`
}

// TestSeedCourierFlutterFlowTokenStreamTypedMessageEventsDisconnectAndClear
// runs the Courier Flutter sample's flow: credentials from the token API,
// connect, subscribe chat/user1 at QoS 1, a per-topic stream receives a
// typed message published at QoS 1, the event stream reports every step;
// then disconnect, and disconnect-and-clear, after which nothing is renewed.
func TestSeedCourierFlutterFlowTokenStreamTypedMessageEventsDisconnectAndClear(t *testing.T) {
	t.Parallel()
	srv, keys := tokenBroker(t, map[string]auth.Policy{
		"user1": {ClientID: "%u", CleanSession: true, Publish: []string{"chat/%u", "chat/%u/#"}, Subscribe: []string{"chat/%u", "chat/%u/#"}},
	})
	dir := t.TempDir()
	c := newClient(t, srv.TCPAddr, client.WithTokenAPI(tokenAPIFor(t, srv, keys["user1"])), client.WithPersistence(dir))
	events := c.Events(256)
	defer events.Close()
	stream := c.Stream("chat/user1", 16)
	defer stream.Close()

	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	awaitConnected(t, c)
	ctx := ctxFor(t)
	if err := c.Subscribe(ctx, "chat/user1", nil, client.QOSOne); err != nil {
		t.Fatal(err)
	}
	sent := chatMessage{From: "user1", Text: "hello from flutter"}
	if err := c.Publish(ctx, "chat/user1", sent, client.QOSOne); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-stream.C:
		var got chatMessage
		if err := m.DecodePayload(&got); err != nil || got != sent || m.QoS != client.QOSOne {
			t.Fatalf("stream got %+v (qos %d, %v), want %+v", got, m.QoS, err, sent)
		}
	case <-time.After(waitFor):
		t.Fatal("per-topic stream received nothing")
	}
	c.Stop()

	// The event stream told every step, each after the one it depends on
	// (the message may come back before its PUBACK does).
	pos := map[client.EventType]int{}
	var seen []string
	for _, e := range eventsUntil(t, events, client.EventDisconnect) {
		if _, ok := pos[e.Type]; !ok {
			pos[e.Type] = len(seen)
		}
		seen = append(seen, e.Type.String())
		// From the connect on, events carry the connection the token set up.
		if _, up := pos[client.EventConnectSuccess]; up && e.Conn.ClientID != "user1" {
			t.Errorf("%s: connection info client id %q, want user1 (from the token)", e.Type, e.Conn.ClientID)
		}
	}
	t.Logf("events: %s", strings.Join(seen, " "))
	for _, step := range [][2]client.EventType{
		{client.EventConnectAttempt, client.EventAuthenticatorAttempt},
		{client.EventAuthenticatorAttempt, client.EventAuthenticatorSuccess},
		{client.EventAuthenticatorSuccess, client.EventConnectSuccess},
		{client.EventConnectSuccess, client.EventSubscribeAttempt},
		{client.EventSubscribeAttempt, client.EventSubscribeSuccess},
		{client.EventSubscribeSuccess, client.EventMessageSend},
		{client.EventMessageSend, client.EventMessageSendSuccess},
		{client.EventMessageSend, client.EventMessageReceive},
		{client.EventMessageReceive, client.EventDisconnect},
		{client.EventMessageSendSuccess, client.EventDisconnect},
	} {
		a, okA := pos[step[0]]
		b, okB := pos[step[1]]
		if !okA || !okB || a > b {
			t.Errorf("want %s before %s (positions %d/%v, %d/%v)", step[0], step[1], a, okA, b, okB)
		}
	}

	// Disconnect-and-clear drops the subscription store and the state on
	// disk: a new start renews nothing.
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	awaitConnected(t, c)
	if err := c.DisconnectAndClearState(); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"session", "queue"} {
		if entries, err := os.ReadDir(filepath.Join(dir, sub)); err == nil && len(entries) > 0 {
			t.Errorf("%s state left after DisconnectAndClearState: %d entries", sub, len(entries))
		}
	}
	all := c.Messages(16)
	defer all.Close()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	awaitConnected(t, c)
	if err := c.Subscribe(ctx, "chat/user1/fence", nil, client.QOSOne); err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct{ topic, payload string }{{"chat/user1", "after-clear"}, {"chat/user1/fence", "fence"}} {
		if err := c.Publish(ctx, p.topic, p.payload, client.QOSOne); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case m := <-all.C:
		if string(m.Payload()) != "fence" {
			t.Fatalf("after clearing, got %q on %s: the cleared subscription was renewed", m.Payload(), m.Topic)
		}
	case <-time.After(waitFor):
		t.Fatal("fence never arrived")
	}
}

// testCA is a certificate authority made for one test, with a server
// certificate for 127.0.0.1.
type testCA struct {
	pool   *x509.CertPool
	server tls.Certificate
}

func newTestCA(t testing.TB) testCA {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "courier test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return testCA{pool: pool, server: tls.Certificate{Certificate: [][]byte{srvDER}, PrivateKey: srvKey}}
}

// TestSeedToitTutorialFlowWithAndWithoutTLS runs the Toit MQTT tutorial's
// flow over TLS (a certificate from a test CA) and over plain TCP, with
// username and password: publish the JSON object {"value": 42} and receive
// it in a subscription callback; with a fixed client id and clean session
// off, a QoS 1 message published while the subscriber is offline reaches,
// when it comes back, the handler it registered before connecting; and a
// subscription with maximum QoS 0 gets a QoS 1 publication at QoS 0.
func TestSeedToitTutorialFlowWithAndWithoutTLS(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	srv := usersBroker(t, "toit", map[string]string{"device": "pa55word"}, brokertest.WithConfig(func(c *broker.Config) {
		c.Listeners = append(c.Listeners, broker.ListenerConfig{
			Name: "tls", Type: broker.ListenerTLS, Addr: "127.0.0.1:0",
			TLSConfig: &tls.Config{Certificates: []tls.Certificate{ca.server}, MinVersion: tls.VersionTLS12},
		})
	}))
	for _, tc := range []struct {
		name string
		addr string
		tls  *tls.Config
	}{
		{"tls", srv.Broker.Addr("tls"), &tls.Config{RootCAs: ca.pool, MinVersion: tls.VersionTLS12}},
		{"plain", srv.TCPAddr, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := func(id string, extra ...client.Option) []client.Option {
				o := []client.Option{client.WithUsername("device"), client.WithPassword("pa55word"), client.WithClientID(id)}
				if tc.tls != nil {
					o = append(o, client.WithTLS(tc.tls))
				}
				return append(o, extra...)
			}
			prefix := "toit/" + tc.name
			type reading struct {
				Value int `json:"value"`
			}
			values := make(chan reading, 16)
			onReading := func(_ context.Context, _ client.PubSub, m *client.Message) {
				var r reading
				if err := m.DecodePayload(&r); err != nil {
					t.Errorf("decode %q: %v", m.Payload(), err)
				}
				values <- r
			}
			nextValue := func() int {
				t.Helper()
				select {
				case r := <-values:
					return r.Value
				case <-time.After(waitFor):
					t.Fatal("callback never ran")
					return 0
				}
			}

			// Subscriber with a fixed id, persistent session, handler
			// registered before connecting.
			subID := unique("toit-sub")
			sub := newClient(t, tc.addr, opts(subID)...)
			if err := sub.Subscribe(context.Background(), prefix+"/data", onReading, client.QOSOne); err != nil {
				t.Fatal(err)
			}
			startSubscribed(t, sub)
			pub := startClient(t, tc.addr, opts(unique("toit-pub"), client.WithCleanSession(true))...)
			ctx := ctxFor(t)
			if err := pub.Publish(ctx, prefix+"/data", map[string]any{"value": 42}, client.QOSOne); err != nil {
				t.Fatal(err)
			}
			if v := nextValue(); v != 42 {
				t.Fatalf("callback got value %d, want 42", v)
			}

			// Offline delivery to a handler registered before connect.
			sub.Stop()
			if err := pub.Publish(ctx, prefix+"/data", map[string]any{"value": 43}, client.QOSOne); err != nil {
				t.Fatal(err)
			}
			back := newClient(t, tc.addr, opts(subID)...)
			if err := back.Subscribe(context.Background(), prefix+"/data", onReading, client.QOSOne); err != nil {
				t.Fatal(err)
			}
			if err := back.Start(); err != nil {
				t.Fatal(err)
			}
			v := nextValue()
			if v == 42 {
				// Legal at QoS 1: Stop can close the connection before the
				// PUBACK of the message just handled goes out, so the broker
				// resends it.
				t.Log("the 42 message was redelivered (QoS 1 duplicate)")
				v = nextValue()
			}
			if v != 43 {
				t.Fatalf("returning subscriber got value %d, want the queued 43", v)
			}

			// Maximum QoS 0 downgrades a QoS 1 publication [MQTT-3.8.4-8].
			low := newInbox()
			q0 := startClient(t, tc.addr, opts(unique("toit-q0"), client.WithCleanSession(true))...)
			if err := q0.Subscribe(ctx, prefix+"/q0", low.handler, client.QOSZero); err != nil {
				t.Fatal(err)
			}
			if err := pub.Publish(ctx, prefix+"/q0", map[string]any{"value": 42}, client.QOSOne); err != nil {
				t.Fatal(err)
			}
			if m := low.next(t); m.QoS != 0 || m.Payload != `{"value":42}` {
				t.Fatalf("max QoS 0 subscription got QoS %d %q, want QoS 0 {\"value\":42}", m.QoS, m.Payload)
			}
		})
	}
}
