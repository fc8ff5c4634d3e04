package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/courier-mqtt/courier/broker/brokertest"
	"github.com/courier-mqtt/courier/client"
)

type info struct {
	Connected     bool   `json:"connected"`
	Started       bool   `json:"started"`
	ClientID      string `json:"client_id"`
	Username      string `json:"username"`
	Address       string `json:"address"`
	KeepAlive     int    `json:"keepalive_seconds"`
	Subscriptions []struct {
		Topic string `json:"topic"`
		QoS   int    `json:"qos"`
	} `json:"subscriptions"`
}

func getInfo(t *testing.T, c *client.Client) info {
	t.Helper()
	rec := httptest.NewRecorder()
	c.InfoHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	var i info
	if err := json.Unmarshal(rec.Body.Bytes(), &i); err != nil {
		t.Fatalf("info json %q: %v", rec.Body.String(), err)
	}
	return i
}

func TestWebSocketURL(t *testing.T) {
	srv := brokertest.Start(t, brokertest.WithoutStore())
	c, err := client.NewClient(client.WithBrokerURL(srv.WSURL), client.WithBackoff(fastBackoff))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	awaitConnected(t, c)
	col := newCollector()
	if err := c.Subscribe(ctxT(t), "ws/t", col.handle, client.QOSOne); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(ctxT(t), "ws/t", []byte("over websocket"), client.QOSOne); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, col.ch); string(m.Payload()) != "over websocket" {
		t.Fatalf("got %q", m.Payload())
	}
	if a := getInfo(t, c).Address; a != srv.WSURL {
		t.Fatalf("info address %q, want %q", a, srv.WSURL)
	}
}

func deadAddr(t *testing.T) (string, uint16) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return hostPort(t, addr)
}

func TestAddressFallbackAndEventConnectionInfo(t *testing.T) {
	srv := brokertest.Start(t, brokertest.WithoutStore())
	dh, dp := deadAddr(t)
	h, p := hostPort(t, srv.TCPAddr)
	c, err := client.NewClient(
		client.WithAddress(dh, dp), client.WithTCPAddress(h, p),
		client.WithClientID("fallback"), client.WithUsername("alice"), client.WithPassword("pw"),
		client.WithKeepAlive(30*time.Second), client.WithBackoff(fastBackoff))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	ev := c.Events(64)
	defer ev.Close()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	fail := waitEvent(t, ev, client.EventSocketConnectFailure, nil)
	if fail.Topic != net.JoinHostPort(dh, strconv.Itoa(int(dp))) || fail.Err == nil {
		t.Fatalf("socket failure event %+v", fail)
	}
	if ok := waitEvent(t, ev, client.EventSocketConnectSuccess, nil); ok.Topic != srv.TCPAddr {
		t.Fatalf("socket success event for %s", ok.Topic)
	}
	e := waitEvent(t, ev, client.EventConnectSuccess, nil)
	want := client.ConnectionInfo{ClientID: "fallback", Username: "alice", KeepAlive: 30 * time.Second, Address: srv.TCPAddr}
	if e.Conn != want {
		t.Fatalf("connection info %+v, want %+v", e.Conn, want)
	}
	if e.Duration <= 0 || e.Time.IsZero() {
		t.Fatalf("success event without timing: %+v", e)
	}
	if e.Type.String() != "MqttConnectSuccess" {
		t.Fatalf("event name %q", e.Type)
	}
}

type chanResolver struct {
	ch   chan []client.TCPAddress
	done chan struct{}
}

func (r chanResolver) UpdateChan() <-chan []client.TCPAddress { return r.ch }
func (r chanResolver) Done() <-chan struct{}                  { return r.done }

func TestResolverSuppliesAddresses(t *testing.T) {
	srv := brokertest.Start(t, brokertest.WithoutStore())
	r := chanResolver{ch: make(chan []client.TCPAddress, 1), done: make(chan struct{})}
	defer close(r.done)
	c, err := client.NewClient(client.WithResolver(r), client.WithBackoff(fastBackoff))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	h, p := hostPort(t, srv.TCPAddr)
	dh, dp := deadAddr(t)
	r.ch <- []client.TCPAddress{{Host: dh, Port: dp}, {Host: h, Port: p}}
	awaitConnected(t, c)
}

type countingFetcher struct{ n atomic.Int64 }

func (f *countingFetcher) Credentials(context.Context) (*client.Credential, error) {
	f.n.Add(1)
	return &client.Credential{Username: "fetched", Password: "secret"}, nil
}

func TestCredentialFetcherCalledOnEveryConnect(t *testing.T) {
	srv := brokertest.Start(t, brokertest.WithoutStore())
	f := &countingFetcher{}
	d := &captureDialer{}
	c := startClient(t, srv, client.WithCredentialFetcher(f), client.WithDialer(d))
	ev := c.Events(64)
	defer ev.Close()
	d.cut()
	waitEvent(t, ev, client.EventAuthenticatorSuccess, nil)
	waitEvent(t, ev, client.EventReconnect, nil)
	if n := f.n.Load(); n != 2 {
		t.Fatalf("fetcher called %d times over two connects", n)
	}
	if u := getInfo(t, c).Username; u != "fetched" {
		t.Fatalf("username %q", u)
	}
}

func TestStartWithoutAutoReconnectFails(t *testing.T) {
	dh, dp := deadAddr(t)
	c, err := client.NewClient(client.WithAddress(dh, dp), client.WithAutoReconnect(false), client.WithConnectTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err == nil {
		t.Fatal("Start against a dead address succeeded")
	}
	if err := c.Publish(context.Background(), "t", "x"); !errors.Is(err, client.ErrNotStarted) {
		t.Fatalf("publish on stopped client: %v", err)
	}
}

func TestRunStopsWithContext(t *testing.T) {
	srv := brokertest.Start(t, brokertest.WithoutStore())
	c := newClient(t, srv.TCPAddr)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	if !client.WaitForConnection(c, waitFor, 10*time.Millisecond) {
		t.Fatal("not connected")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitFor):
		t.Fatal("Run did not return")
	}
	if c.IsConnected() {
		t.Fatal("connected after Run returned")
	}
}

func TestMiddlewareOrderAndReceivePath(t *testing.T) {
	srv := brokertest.Start(t, brokertest.WithoutStore())
	c := startClient(t, srv)
	var mu sync.Mutex
	var order []string
	note := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
	pubMW := func(name string) client.PublisherMiddlewareFunc {
		return func(next client.Publisher) client.Publisher {
			return client.PublisherFunc(func(ctx context.Context, topic string, msg any, opts ...client.CallOption) error {
				note(name)
				return next.Publish(ctx, topic, msg, opts...)
			})
		}
	}
	c.UsePublisherMiddleware(pubMW("outer"), pubMW("inner"))
	c.UseSubscriberMiddleware(func(next client.Subscriber) client.Subscriber {
		return client.SubscriberFuncs{
			SubscribeFunc: func(ctx context.Context, topic string, cb client.MessageHandler, opts ...client.CallOption) error {
				note("sub " + topic)
				return next.Subscribe(ctx, topic, cb, opts...)
			},
			SubscribeMultipleFunc: next.SubscribeMultiple,
		}
	})
	c.UseUnsubscriberMiddleware(func(next client.Unsubscriber) client.Unsubscriber {
		return client.UnsubscriberFunc(func(ctx context.Context, topics ...string) error {
			note("unsub")
			return next.Unsubscribe(ctx, topics...)
		})
	})
	c.UseReceiverMiddleware(func(next client.MessageHandler) client.MessageHandler {
		return func(ctx context.Context, ps client.PubSub, m *client.Message) {
			note("recv " + m.Topic)
			next(ctx, ps, m)
		}
	})
	col := newCollector()
	if err := c.Subscribe(ctxT(t), "mw/t", col.handle, client.QOSOne); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(ctxT(t), "mw/t", "x", client.QOSOne); err != nil {
		t.Fatal(err)
	}
	recv(t, col.ch)
	if err := c.Unsubscribe(ctxT(t), "mw/t"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"sub mw/t", "outer", "inner", "recv mw/t", "unsub"}
	if !slices.Equal(order, want) {
		t.Fatalf("order %v, want %v", order, want)
	}
}

func TestStreamsHonourWildcards(t *testing.T) {
	srv := brokertest.Start(t, brokertest.WithoutStore())
	c := newClient(t, srv.TCPAddr)
	// Registered before Start.
	temps := c.Stream("sensors/+/temp", 8)
	defer temps.Close()
	all := c.Messages(8)
	defer all.Close()
	if err := c.SubscribeMultiple(ctxT(t), map[string]client.QOSLevel{"sensors/#": client.QOSOne, "other": client.QOSZero}, nil); err != nil {
		t.Fatal(err)
	}
	ev := c.Events(64)
	defer ev.Close()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ev, client.EventSubscribeSuccess, nil)
	for _, topic := range []string{"sensors/a/humidity", "sensors/b/temp", "other"} {
		if err := c.Publish(ctxT(t), topic, topic, client.QOSOne); err != nil {
			t.Fatal(err)
		}
	}
	if m := recv(t, temps.C); m.Topic != "sensors/b/temp" {
		t.Fatalf("temp stream got %s", m.Topic)
	}
	var got []string
	for range 3 {
		got = append(got, recv(t, all.C).Topic)
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"other", "sensors/a/humidity", "sensors/b/temp"}) {
		t.Fatalf("global stream got %v", got)
	}
	if len(temps.C) != 0 || temps.Dropped() != 0 {
		t.Fatal("temp stream got extra messages")
	}
	subs := getInfo(t, c).Subscriptions
	if len(subs) != 2 || subs[0].Topic != "other" || subs[1].Topic != "sensors/#" || subs[1].QoS != 1 {
		t.Fatalf("info subscriptions %+v", subs)
	}
}

func TestSlowEventReaderNeverBlocks(t *testing.T) {
	srv := brokertest.Start(t, brokertest.WithoutStore())
	c := startClient(t, srv)
	ev := c.Events(1) // never read
	defer ev.Close()
	for i := range 20 {
		if err := c.Publish(ctxT(t), "slow/t", i, client.QOSOne); err != nil {
			t.Fatal(err)
		}
	}
	if ev.Dropped() == 0 {
		t.Fatal("no events dropped for a full stream")
	}
}

func TestManualAckRedeliversUnackedMessage(t *testing.T) {
	srv := brokertest.Start(t, brokertest.WithoutStore())
	d := &captureDialer{}
	sub := startClient(t, srv, client.WithClientID("manual"), client.WithManualAck(), client.WithDialer(d))
	col := newCollector()
	if err := sub.Subscribe(ctxT(t), "ack/t", col.handle, client.QOSOne); err != nil {
		t.Fatal(err)
	}
	pub := startClient(t, srv, client.WithClientID("acker-pub"))
	if err := pub.Publish(ctxT(t), "ack/t", "needs-ack", client.QOSOne); err != nil {
		t.Fatal(err)
	}
	first := recv(t, col.ch)
	if first.Duplicate {
		t.Fatal("first delivery marked duplicate")
	}
	// Not acked: after a reconnect the broker sends it again.
	d.cut()
	again := recv(t, col.ch)
	if string(again.Payload()) != "needs-ack" || !again.Duplicate {
		t.Fatalf("redelivery %q dup=%v", again.Payload(), again.Duplicate)
	}
	if err := again.Ack(); err != nil {
		t.Fatalf("Ack: %v", err)
	}
}

func TestWillIsPublishedOnAbruptLoss(t *testing.T) {
	srv := brokertest.Start(t, brokertest.WithoutStore())
	watcher := startClient(t, srv, client.WithClientID("watcher"))
	col := newCollector()
	if err := watcher.Subscribe(ctxT(t), "status/+", col.handle, client.QOSOne); err != nil {
		t.Fatal(err)
	}
	d := &captureDialer{}
	startClient(t, srv, client.WithClientID("dev"), client.WithDialer(d), client.WithAutoReconnect(false),
		client.WithWill(client.Will{Topic: "status/dev", Payload: []byte("offline"), QoS: client.QOSOne}))
	d.cut()
	if m := recv(t, col.ch); m.Topic != "status/dev" || string(m.Payload()) != "offline" {
		t.Fatalf("will %s %q", m.Topic, m.Payload())
	}
}

func TestKeepAlivePings(t *testing.T) {
	srv := brokertest.Start(t, brokertest.WithoutStore())
	c := newClient(t, srv.TCPAddr, client.WithKeepAlive(time.Second))
	ev := c.Events(64)
	defer ev.Close()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ev, client.EventPingInitiated, nil)
	waitEvent(t, ev, client.EventPingSuccess, nil)
	if ka := getInfo(t, c).KeepAlive; ka != 1 {
		t.Fatalf("keepalive %d", ka)
	}
}

func TestHandlerCanReplyThroughPubSub(t *testing.T) {
	srv := brokertest.Start(t, brokertest.WithoutStore())
	responder := startClient(t, srv, client.WithClientID("responder"))
	if err := responder.Subscribe(ctxT(t), "rpc/req", func(ctx context.Context, ps client.PubSub, m *client.Message) {
		_ = ps.Publish(ctx, m.Properties.ResponseTopic, "pong", client.QOSOne, client.CorrelationData(m.Properties.CorrelationData))
	}, client.QOSOne); err != nil {
		t.Fatal(err)
	}
	requester := startClient(t, srv, client.WithClientID("requester"))
	col := newCollector()
	if err := requester.Subscribe(ctxT(t), "rpc/resp", col.handle, client.QOSOne); err != nil {
		t.Fatal(err)
	}
	if err := requester.Publish(ctxT(t), "rpc/req", "ping", client.QOSOne, client.ResponseTopic("rpc/resp"), client.CorrelationData([]byte("id-7"))); err != nil {
		t.Fatal(err)
	}
	m := recv(t, col.ch)
	if string(m.Payload()) != "pong" || string(m.Properties.CorrelationData) != "id-7" {
		t.Fatalf("reply %q corr %q", m.Payload(), m.Properties.CorrelationData)
	}
}

// mochi answers 0x91 when a client packet id equals one of its own in-flight
// ids towards the client; the client resends with the next id.
func TestPacketIDCollisionWithBrokerInFlightIsRetried(t *testing.T) {
	srv := brokertest.Start(t, brokertest.WithoutStore())
	sub := startClient(t, srv, client.WithClientID("collide"), client.WithManualAck())
	col := newCollector()
	if err := sub.Subscribe(ctxT(t), "pid/t", col.handle, client.QOSOne); err != nil {
		t.Fatal(err)
	}
	pub := startClient(t, srv, client.WithClientID("collide-pub"))
	// Deliveries left unacknowledged keep broker ids 1-3 in flight.
	for _, p := range []string{"a", "b", "c"} {
		if err := pub.Publish(ctxT(t), "pid/t", p, client.QOSOne); err != nil {
			t.Fatal(err)
		}
		recv(t, col.ch)
	}
	if err := sub.Unsubscribe(ctxT(t), "pid/t"); err != nil {
		t.Fatalf("Unsubscribe while the broker holds in-flight ids: %v", err)
	}
	if err := sub.Subscribe(ctxT(t), "pid/u", col.handle, client.QOSOne); err != nil {
		t.Fatalf("Subscribe while the broker holds in-flight ids: %v", err)
	}
	if err := sub.Publish(ctxT(t), "pid/v", "x", client.QOSOne); err != nil {
		t.Fatalf("Publish while the broker holds in-flight ids: %v", err)
	}
}

func TestRetainedPublishAndDelivery(t *testing.T) {
	srv := brokertest.Start(t, brokertest.WithoutStore())
	pub := startClient(t, srv, client.WithClientID("ret-pub"))
	if err := pub.Publish(ctxT(t), "ret/state", "on", client.QOSOne, client.Retained(true)); err != nil {
		t.Fatal(err)
	}
	sub := startClient(t, srv, client.WithClientID("ret-sub"))
	col := newCollector()
	if err := sub.Subscribe(ctxT(t), "ret/#", col.handle, client.QOSOne); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, col.ch); string(m.Payload()) != "on" || !m.Retained {
		t.Fatalf("retained message %q retained=%v", m.Payload(), m.Retained)
	}
	if err := pub.Publish(ctxT(t), "ret/event", "live", client.QOSOne, client.Retained(false)); err != nil {
		t.Fatal(err)
	}
	// mochi acknowledges a publish before fanning it out, so the retained
	// message may also arrive once as a live copy; skip to "live".
	for {
		m := recv(t, col.ch)
		if string(m.Payload()) != "live" {
			continue
		}
		if m.Retained {
			t.Fatal("live message flagged retained")
		}
		break
	}
}

// TestConnectionInfoReportsSessionPresent: a persistent client that
// reconnects to a broker holding its session sees SessionPresent; the first
// connection, and a clean one, do not.
func TestConnectionInfoReportsSessionPresent(t *testing.T) {
	srv := brokertest.Start(t)
	c := startClient(t, srv, client.WithClientID("sp-1"), client.WithCleanSession(false), client.WithSessionExpiry(time.Minute))
	if c.Info().SessionPresent {
		t.Fatal("first connection reports a session present")
	}
	c.Stop()
	c = startClient(t, srv, client.WithClientID("sp-1"), client.WithCleanSession(false), client.WithSessionExpiry(time.Minute))
	if !c.Info().SessionPresent {
		t.Fatal("reconnection to a stored session reports none")
	}
	c.Stop()
	c = startClient(t, srv, client.WithClientID("sp-1"), client.WithCleanSession(true))
	if c.Info().SessionPresent {
		t.Fatal("clean connection reports a session present")
	}
}

// TestEmptyClientIDTakesTheAssignedOne: an MQTT 5 client without a client
// id gets one from the broker's CONNACK, and Info reports it.
func TestEmptyClientIDTakesTheAssignedOne(t *testing.T) {
	srv := brokertest.Start(t, brokertest.WithoutStore())
	c := startClient(t, srv, client.WithClientID(""), client.WithCleanSession(true))
	if id := c.Info().ClientID; id == "" {
		t.Fatal("no assigned client id reported")
	}
}
