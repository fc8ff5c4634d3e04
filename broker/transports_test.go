package broker_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/courier-mqtt/courier/broker"
	"github.com/courier-mqtt/courier/broker/brokertest"
	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"
	pahov3 "github.com/eclipse/paho.mqtt.golang"
	"github.com/gorilla/websocket"
)

// v5Client connects an autopaho client to serverURL (tcp:// or ws://) and
// returns it with a channel of received publishes.
func v5Client(t *testing.T, serverURL, id string) (*autopaho.ConnectionManager, <-chan *paho.Publish) {
	t.Helper()
	u, err := url.Parse(serverURL)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *paho.Publish, 16)
	ctx, cancel := context.WithCancel(context.Background())
	cm, err := autopaho.NewConnection(ctx, autopaho.ClientConfig{
		ServerUrls:                    []*url.URL{u},
		KeepAlive:                     30,
		ConnectTimeout:                5 * time.Second,
		CleanStartOnInitialConnection: true,
		ClientConfig: paho.ClientConfig{
			ClientID: id,
			OnPublishReceived: []func(paho.PublishReceived) (bool, error){
				func(pr paho.PublishReceived) (bool, error) {
					select {
					case got <- pr.Packet:
					default:
					}
					return true, nil
				},
			},
		},
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = cm.Disconnect(dctx)
		dcancel()
		cancel()
		<-cm.Done()
	})
	if err := cm.AwaitConnection(ctxT(t, 10*time.Second)); err != nil {
		t.Fatalf("connect %s: %v", serverURL, err)
	}
	return cm, got
}

func TestV5ClientPublishesAndReceivesOverWebSocket(t *testing.T) {
	srv := brokertest.Start(t)
	cm, got := v5Client(t, srv.WSURL, "ws-client")
	ctx := ctxT(t, 10*time.Second)
	if _, err := cm.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "ws/+", QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := cm.Publish(ctx, &paho.Publish{Topic: "ws/echo", QoS: 1, Payload: []byte("over websocket")}); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-got:
		if p.Topic != "ws/echo" || string(p.Payload) != "over websocket" || p.QoS != 1 {
			t.Fatalf("got %s %q qos %d", p.Topic, p.Payload, p.QoS)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no message over websocket")
	}
}

func TestV311ClientPublishesAndReceives(t *testing.T) {
	srv := brokertest.Start(t)
	got := make(chan pahov3.Message, 4)
	opts := pahov3.NewClientOptions().AddBroker("tcp://" + srv.TCPAddr).SetClientID("v311").
		SetProtocolVersion(4).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	c := pahov3.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer c.Disconnect(100)
	if tok := c.Subscribe("v3/#", 2, func(_ pahov3.Client, m pahov3.Message) { got <- m }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	if tok := c.Publish("v3/x", 2, false, "three one one"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	select {
	case m := <-got:
		if m.Topic() != "v3/x" || string(m.Payload()) != "three one one" || m.Qos() != 2 {
			t.Fatalf("got %s %q qos %d", m.Topic(), m.Payload(), m.Qos())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no message")
	}
}

func TestMQTT31ClientConnects(t *testing.T) {
	srv := brokertest.Start(t)
	c := dialRaw(t, "tcp", srv.TCPAddr)
	c.connect(3, "old-timer", 30)
}

func TestUnixSocketListenerServesMQTT(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "mqtt.sock")
	srv := brokertest.Start(t, brokertest.WithConfig(func(c *broker.Config) {
		c.Listeners = append(c.Listeners, broker.ListenerConfig{Name: "unix", Type: broker.ListenerUnix, Addr: sock})
	}))
	if got := srv.Broker.Addr("unix"); got != sock {
		t.Fatalf("Addr(unix) = %q, want %q", got, sock)
	}
	for _, v := range []byte{4, 5} {
		c := dialRaw(t, "unix", sock)
		c.connect(v, "unix-client", 30)
	}
}

func TestTLSListenerServesMQTT(t *testing.T) {
	cert, pool := selfSigned(t)
	srv := brokertest.Start(t, brokertest.WithConfig(func(c *broker.Config) {
		c.Listeners = append(c.Listeners, broker.ListenerConfig{
			Name: "tls", Type: broker.ListenerTLS, Addr: "127.0.0.1:0",
			TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}},
		})
	}))
	conn, err := tls.Dial("tcp", srv.Broker.Addr("tls"), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	c := &rawClient{t: t, conn: conn, r: newReader(conn)}
	t.Cleanup(func() { _ = conn.Close() })
	c.connect(5, "tls-client", 30)
	// A plain-text client on the TLS port is refused without harm.
	plain := dialRaw(t, "tcp", srv.Broker.Addr("tls"))
	plain.send(connectPacket(4, "plain", 30))
	plain.expectClosed(5 * time.Second)
}

func TestWebSocketRefusesUnlistedBrowserOriginsAndMissingSubprotocol(t *testing.T) {
	srv := brokertest.Start(t, brokertest.WithConfig(func(c *broker.Config) {
		c.Listeners[1].AllowedOrigins = []string{"https://app.example"}
	}))
	dial := func(origin string, protos []string) (int, error) {
		d := websocket.Dialer{Subprotocols: protos, HandshakeTimeout: 5 * time.Second}
		h := http.Header{}
		if origin != "" {
			h.Set("Origin", origin)
		}
		c, resp, err := d.Dial(srv.WSURL, h)
		if c != nil {
			_ = c.Close()
		}
		if resp != nil {
			return resp.StatusCode, err
		}
		return 0, err
	}
	cases := []struct {
		name   string
		origin string
		protos []string
		want   int
	}{
		{"non-browser client without origin", "", []string{"mqtt"}, http.StatusSwitchingProtocols},
		{"allowed browser origin", "https://app.example", []string{"mqtt"}, http.StatusSwitchingProtocols},
		{"other browser origin", "https://evil.example", []string{"mqtt"}, http.StatusForbidden},
		{"no mqtt subprotocol", "", []string{"chat"}, http.StatusBadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _ := dial(tc.origin, tc.protos)
			if code != tc.want {
				t.Fatalf("status %d, want %d", code, tc.want)
			}
		})
	}
}

func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "courier test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}
