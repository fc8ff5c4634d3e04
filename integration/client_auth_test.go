package integration_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/courier-mqtt/courier/broker"
	"github.com/courier-mqtt/courier/broker/brokertest"
	"github.com/courier-mqtt/courier/client"
)

// clientPasswordHook accepts one password and refuses writes to
// topics under "denied/".
type clientPasswordHook struct {
	mqtt.HookBase
	mu       sync.Mutex
	password string
}

func (h *clientPasswordHook) ID() string { return "test-password" }

func (h *clientPasswordHook) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}

func (h *clientPasswordHook) OnConnectAuthenticate(_ *mqtt.Client, pk packets.Packet) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return bytes.Equal(pk.Connect.Password, []byte(h.password))
}

func (h *clientPasswordHook) OnACLCheck(_ *mqtt.Client, topic string, write bool) bool {
	if strings.HasPrefix(topic, "secret/") {
		return false
	}
	return !write || !strings.HasPrefix(topic, "denied/")
}

func startClientAuthBroker(t *testing.T, password string) (*brokertest.Server, *clientPasswordHook) {
	t.Helper()
	h := &clientPasswordHook{password: password}
	srv := brokertest.Start(t, brokertest.WithoutStore(), brokertest.WithOptions(broker.WithAuthHook(h, nil)))
	return srv, h
}

func clientSplitAddr(t *testing.T, addr string) (string, uint16) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	return host, uint16(p)
}

func clientWaitEvent(t *testing.T, s *client.EventStream, typ client.EventType) client.Event {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case e := <-s.C:
			if e.Type == typ {
				return e
			}
		case <-deadline:
			t.Fatalf("no %s event", typ)
		}
	}
}

func TestClientRefreshesTokenWhenBrokerRejectsIt(t *testing.T) {
	srv, _ := startClientAuthBroker(t, "good-1")
	host, port := clientSplitAddr(t, srv.TCPAddr)
	var fetches atomic.Int64
	tokenSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Token 1 is stale by the time it is used; token 2 works.
		n := fetches.Add(1)
		pw := "stale"
		if n > 1 {
			pw = "good-1"
		}
		_, _ = w.Write([]byte(`{"username":"u","password":"` + pw + `","host":"` + host + `","port":` + strconv.Itoa(int(port)) + `}`))
	}))
	t.Cleanup(tokenSrv.Close)
	tok, err := client.NewTokenAPI(tokenSrv.URL)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.NewClient(client.WithTokenAPI(tok), client.WithBackoff(func(int) time.Duration { return 10 * time.Millisecond }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	ev := c.Events(64)
	defer ev.Close()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	fail := clientWaitEvent(t, ev, client.EventConnectFailure)
	if !errors.Is(fail.Err, client.ErrBadCredentials) {
		t.Fatalf("connect failure %v, want ErrBadCredentials (0x86)", fail.Err)
	}
	clientWaitEvent(t, ev, client.EventConnectSuccess)
	if n := fetches.Load(); n != 2 {
		t.Fatalf("%d token fetches, want 2 (initial + forced refresh)", n)
	}
	// Cached credentials are reused on a plain reconnect.
	srv.Restart(t)
	clientWaitEvent(t, ev, client.EventReconnect)
	if n := fetches.Load(); n != 2 {
		t.Fatalf("reconnect refetched the token: %d fetches", n)
	}
}

func TestClientRefusalsAreTypedErrors(t *testing.T) {
	srv, _ := startClientAuthBroker(t, "pw")
	host, port := clientSplitAddr(t, srv.TCPAddr)
	c, err := client.NewClient(client.WithAddress(host, port), client.WithUsername("u"), client.WithPassword("pw"))
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
	err = c.Publish(ctx, "denied/x", "no", client.QOSOne)
	if !errors.Is(err, client.ErrNotAuthorized) {
		t.Fatalf("refused publish: %v, want ErrNotAuthorized", err)
	}
	if code, _ := client.ReasonCode(err); code != 0x87 {
		t.Fatalf("reason code %x", code)
	}
	if err := c.Publish(ctx, "allowed/x", "yes", client.QOSOne); err != nil {
		t.Fatalf("allowed publish: %v", err)
	}
	err = c.Subscribe(ctx, "secret/#", nil, client.QOSOne)
	if !errors.Is(err, client.ErrNotAuthorized) {
		t.Fatalf("refused subscribe: %v, want ErrNotAuthorized", err)
	}
	if err := c.SubscribeMultiple(ctx, map[string]client.QOSLevel{"open/1": client.QOSOne, "secret/2": client.QOSOne}, nil); !errors.Is(err, client.ErrNotAuthorized) {
		t.Fatalf("partly refused subscribe: %v", err)
	}
	rec := httptest.NewRecorder()
	c.InfoHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if body := rec.Body.String(); strings.Contains(body, "secret/") || !strings.Contains(body, "open/1") {
		t.Fatalf("refused filters must leave the store, granted ones stay: %s", body)
	}
}

func TestClientWrongPasswordWithoutReconnectFailsStart(t *testing.T) {
	srv, _ := startClientAuthBroker(t, "pw")
	host, port := clientSplitAddr(t, srv.TCPAddr)
	c, err := client.NewClient(client.WithAddress(host, port), client.WithPassword("wrong"), client.WithAutoReconnect(false))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); !errors.Is(err, client.ErrBadCredentials) {
		t.Fatalf("Start: %v, want ErrBadCredentials", err)
	}
}
