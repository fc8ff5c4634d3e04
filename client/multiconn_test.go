package client_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/courier-mqtt/courier/broker/brokertest"
	"github.com/courier-mqtt/courier/client"
)

// memResolver is an in-memory Resolver: Set hands the client a new list and
// returns once the client has taken it.
type memResolver struct {
	ch   chan []client.TCPAddress
	done chan struct{}
}

func newMemResolver() *memResolver {
	return &memResolver{ch: make(chan []client.TCPAddress), done: make(chan struct{})}
}

func (r *memResolver) UpdateChan() <-chan []client.TCPAddress { return r.ch }
func (r *memResolver) Done() <-chan struct{}                  { return r.done }

func (r *memResolver) Set(t testing.TB, srvs ...*brokertest.Server) {
	t.Helper()
	list := make([]client.TCPAddress, len(srvs))
	for i, s := range srvs {
		h, p := hostPort(t, s.TCPAddr)
		list[i] = client.TCPAddress{Host: h, Port: p}
	}
	select {
	case r.ch <- list:
	case <-time.After(waitFor):
		t.Fatal("the client did not take the address list")
	}
}

func startBrokers(t *testing.T, n int) []*brokertest.Server {
	srvs := make([]*brokertest.Server, n)
	for i := range srvs {
		srvs[i] = brokertest.Start(t, brokertest.WithoutStore())
	}
	return srvs
}

// newMultiClient builds a multi-connection client on r, stopped in Cleanup.
func newMultiClient(t *testing.T, r *memResolver, opts ...client.Option) *client.Client {
	t.Helper()
	base := []client.Option{
		client.WithResolver(r),
		client.UseMultiConnectionMode,
		client.WithClientID("multi"),
		client.WithCleanSession(true),
		client.WithBackoff(fastBackoff),
		client.WithConnectTimeout(5 * time.Second),
		client.WithWriteTimeout(5 * time.Second),
		client.WithGracefulShutdownPeriod(5 * time.Second),
	}
	c, err := client.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(c.Stop)
	return c
}

// awaitAddresses waits for an event of type typ from each of srvs' addresses.
func awaitAddresses(t *testing.T, ev *client.EventStream, typ client.EventType, srvs ...*brokertest.Server) {
	t.Helper()
	want := map[string]bool{}
	for _, s := range srvs {
		want[s.TCPAddr] = true
	}
	for len(want) > 0 {
		e := waitEvent(t, ev, typ, func(e client.Event) bool { return want[e.Conn.Address] })
		delete(want, e.Conn.Address)
	}
}

func TestMultiConnectionPublishesRoundRobin(t *testing.T) {
	srvs := startBrokers(t, 2)
	cols := make([]*collector, len(srvs))
	for i, s := range srvs {
		sub := startClient(t, s, client.WithClientID(fmt.Sprintf("sub-%d", i)))
		cols[i] = newCollector()
		if err := sub.Subscribe(ctxT(t), "mc/pub", cols[i].handle, client.QOSOne); err != nil {
			t.Fatal(err)
		}
	}
	r := newMemResolver()
	c := newMultiClient(t, r)
	ev := c.Events(256)
	defer ev.Close()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	r.Set(t, srvs...)
	awaitAddresses(t, ev, client.EventConnectSuccess, srvs...)
	if !c.IsConnected() {
		t.Fatal("IsConnected false with two connections up")
	}

	const n = 10
	for i := range n {
		if err := c.Publish(ctxT(t), "mc/pub", fmt.Sprintf("m%d", i), client.QOSOne); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	// Both connections are up, so the round-robin alternates: n/2 each.
	for i, col := range cols {
		for range n / 2 {
			recv(t, col.ch)
		}
		select {
		case m := <-col.ch:
			t.Fatalf("broker %d got more than %d messages: %s", i, n/2, m.Payload())
		default:
		}
	}
	awaitAddresses(t, ev, client.EventMessageSendSuccess, srvs...)
}

func TestMultiConnectionSharedSubscriptionOnEveryBroker(t *testing.T) {
	srvs := startBrokers(t, 2)
	r := newMemResolver()
	c := newMultiClient(t, r)
	ev := c.Events(256)
	defer ev.Close()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	r.Set(t, srvs...)
	awaitAddresses(t, ev, client.EventConnectSuccess, srvs...)
	shared, plain := newCollector(), newCollector()
	if err := c.Subscribe(ctxT(t), "$share/g/mc/shared", shared.handle, client.QOSOne); err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(ctxT(t), "mc/plain", plain.handle, client.QOSOne); err != nil {
		t.Fatal(err)
	}

	pubs := make([]*client.Client, len(srvs))
	for i, s := range srvs {
		pubs[i] = startClient(t, s, client.WithClientID(fmt.Sprintf("pub-%d", i)))
		if err := pubs[i].Publish(ctxT(t), "mc/plain", fmt.Sprintf("plain-%d", i), client.QOSOne); err != nil {
			t.Fatal(err)
		}
		if err := pubs[i].Publish(ctxT(t), "mc/shared", fmt.Sprintf("shared-%d", i), client.QOSOne); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]bool{}
	for range srvs {
		got[string(recv(t, shared.ch).Payload())] = true
	}
	if !got["shared-0"] || !got["shared-1"] {
		t.Fatalf("shared subscription got %v, want a message from each broker", got)
	}
	// The plain subscription lives on the first address only; broker 1's
	// plain message was published before its shared one, which has arrived.
	if m := recv(t, plain.ch); string(m.Payload()) != "plain-0" {
		t.Fatalf("plain subscription got %s", m.Payload())
	}
	if n := plain.count("plain-1"); n != 0 {
		t.Fatalf("plain subscription got broker 1's message %d times", n)
	}
}

func TestMultiConnectionFollowsResolver(t *testing.T) {
	srvs := startBrokers(t, 3)
	r := newMemResolver()
	c := newMultiClient(t, r)
	ev := c.Events(512)
	defer ev.Close()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	r.Set(t, srvs[0], srvs[1])
	awaitAddresses(t, ev, client.EventConnectSuccess, srvs[0], srvs[1])
	shared, plain := newCollector(), newCollector()
	if err := c.Subscribe(ctxT(t), "$share/g/mc/r", shared.handle, client.QOSOne); err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(ctxT(t), "mc/r-plain", plain.handle, client.QOSOne); err != nil {
		t.Fatal(err)
	}

	// Broker 0 (the first address, holding the plain subscription) leaves,
	// broker 2 joins.
	r.Set(t, srvs[1], srvs[2])
	awaitAddresses(t, ev, client.EventDisconnect, srvs[0])
	awaitAddresses(t, ev, client.EventConnectSuccess, srvs[2])
	awaitAddresses(t, ev, client.EventSubscribeSuccess, srvs[2])
	if !c.IsConnected() {
		t.Fatal("IsConnected false")
	}

	pub2 := startClient(t, srvs[2], client.WithClientID("pub-2"))
	if err := pub2.Publish(ctxT(t), "mc/r", "to-new", client.QOSOne); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, shared.ch); string(m.Payload()) != "to-new" {
		t.Fatalf("shared subscription got %s", m.Payload())
	}
	// The plain subscription moved to broker 1, now the first address.
	pub1 := startClient(t, srvs[1], client.WithClientID("pub-1"))
	if err := pub1.Publish(ctxT(t), "mc/r-plain", "moved", client.QOSOne); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, plain.ch); string(m.Payload()) != "moved" {
		t.Fatalf("plain subscription got %s", m.Payload())
	}
	// Publishes now spread over brokers 1 and 2 only.
	for i := range 4 {
		if err := c.Publish(ctxT(t), "mc/spread", i, client.QOSOne); err != nil {
			t.Fatal(err)
		}
	}
	for range 4 {
		e := waitEvent(t, ev, client.EventMessageSendSuccess, nil)
		if e.Conn.Address == srvs[0].TCPAddr {
			t.Fatalf("published on the removed address %s", e.Conn.Address)
		}
	}
}

func TestMultiConnectionStop(t *testing.T) {
	srvs := startBrokers(t, 2)
	r := newMemResolver()
	c := newMultiClient(t, r)
	ev := c.Events(256)
	defer ev.Close()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(ctxT(t), "mc/none", "x", client.QOSOne); !errors.Is(err, client.ErrNotConnected) {
		t.Fatalf("publish with no address: %v", err)
	}
	r.Set(t, srvs...)
	awaitConnected(t, c)
	awaitAddresses(t, ev, client.EventConnectSuccess, srvs...)
	c.Stop()
	awaitAddresses(t, ev, client.EventDisconnect, srvs...)
	if c.IsConnected() {
		t.Fatal("IsConnected after Stop")
	}
	if err := c.Publish(ctxT(t), "mc/none", "x", client.QOSOne); !errors.Is(err, client.ErrNotStarted) {
		t.Fatalf("publish after Stop: %v", err)
	}
	// Started again, it reconnects to the resolver's next list.
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	r.Set(t, srvs[1])
	awaitAddresses(t, ev, client.EventConnectSuccess, srvs[1])
	awaitConnected(t, c)
}

func TestMultiConnectionPoolSizeConnectsTheFirstAddresses(t *testing.T) {
	srvs := startBrokers(t, 2)
	r := newMemResolver()
	c := newMultiClient(t, r, client.WithPoolSize(1))
	ev := c.Events(256)
	defer ev.Close()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	r.Set(t, srvs[0], srvs[1])
	awaitAddresses(t, ev, client.EventConnectSuccess, srvs[0])
	// Reordered, only the new first address fits the pool.
	r.Set(t, srvs[1], srvs[0])
	awaitAddresses(t, ev, client.EventDisconnect, srvs[0])
	awaitAddresses(t, ev, client.EventConnectSuccess, srvs[1])
	if err := c.Publish(ctxT(t), "mc/pool", "x", client.QOSOne); err != nil {
		t.Fatal(err)
	}
	if e := waitEvent(t, ev, client.EventMessageSendSuccess, nil); e.Conn.Address != srvs[1].TCPAddr {
		t.Fatalf("published on %s, want %s", e.Conn.Address, srvs[1].TCPAddr)
	}
}
