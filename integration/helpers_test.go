package integration_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/courier-mqtt/courier/broker"
	"github.com/courier-mqtt/courier/broker/brokertest"
	"github.com/courier-mqtt/courier/client"
)

// waitFor bounds every wait in this package: a test that waits longer has
// found a bug, not a slow machine.
const waitFor = 15 * time.Second

// fastBackoff keeps reconnects quick.
func fastBackoff(int) time.Duration { return 20 * time.Millisecond }

// newClient builds one of our MQTT 5 clients for addr with test timers; it
// is stopped in Cleanup.
func newClient(t testing.TB, addr string, opts ...client.Option) *client.Client {
	t.Helper()
	h, p := hostPort(t, addr)
	base := []client.Option{
		client.WithAddress(h, p),
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

func hostPort(t testing.TB, addr string) (string, uint16) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return h, uint16(n)
}

// startClient builds and starts a client and waits until it is connected.
func startClient(t testing.TB, addr string, opts ...client.Option) *client.Client {
	t.Helper()
	c := newClient(t, addr, opts...)
	if err := c.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	awaitConnected(t, c)
	return c
}

func awaitConnected(t testing.TB, c *client.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := c.AwaitConnection(ctx); err != nil {
		t.Fatalf("client never connected: %v", err)
	}
}

func ctxFor(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	t.Cleanup(cancel)
	return ctx
}

// msg is a received message, reduced to what tests compare.
type msg struct {
	Topic    string
	Payload  string
	QoS      byte
	Retained bool
	Dup      bool
}

// inbox collects messages from handlers on any goroutine.
type inbox struct {
	c chan msg
}

func newInbox() *inbox { return &inbox{c: make(chan msg, 100000)} }

func (b *inbox) put(m msg) { b.c <- m }

// handler is a client.MessageHandler that files every message.
func (b *inbox) handler(_ context.Context, _ client.PubSub, m *client.Message) {
	b.put(msg{Topic: m.Topic, Payload: string(m.Payload()), QoS: byte(m.QoS), Retained: m.Retained, Dup: m.Duplicate})
}

// next waits for the next message.
func (b *inbox) next(t testing.TB) msg {
	t.Helper()
	select {
	case m := <-b.c:
		return m
	case <-time.After(waitFor):
		t.Fatal("no message arrived")
		return msg{}
	}
}

// until returns every message up to and including the first whose payload is
// marker (the marker is not returned).
func (b *inbox) until(t testing.TB, marker string) []msg {
	t.Helper()
	var got []msg
	deadline := time.After(waitFor)
	for {
		select {
		case m := <-b.c:
			if m.Payload == marker {
				return got
			}
			got = append(got, m)
		case <-deadline:
			t.Fatalf("marker %q never arrived; got %d messages before the deadline", marker, len(got))
		}
	}
}

// take waits for exactly n messages.
func (b *inbox) take(t testing.TB, n int) []msg {
	t.Helper()
	got := make([]msg, 0, n)
	deadline := time.After(waitFor)
	for len(got) < n {
		select {
		case m := <-b.c:
			got = append(got, m)
		case <-deadline:
			t.Fatalf("got %d of %d messages: %v", len(got), n, payloads(got))
		}
	}
	return got
}

func payloads(ms []msg) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Payload
	}
	return out
}

// observe returns a broker observer closed in Cleanup.
func observe(t testing.TB, srv *brokertest.Server, kinds ...broker.EventKind) *broker.Observer {
	t.Helper()
	o := srv.Broker.Observe(1024, kinds...)
	t.Cleanup(o.Close)
	return o
}

// awaitBrokerEvent waits for an event of kind (0: any kind) for clientID.
func awaitBrokerEvent(t testing.TB, o *broker.Observer, kind broker.EventKind, clientID string) broker.Event {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		select {
		case ev, ok := <-o.C:
			if !ok {
				t.Fatalf("observer closed while waiting for %s of %s", kind, clientID)
			}
			if (kind == 0 || ev.Kind == kind) && ev.ClientID == clientID {
				return ev
			}
		case <-deadline:
			t.Fatalf("no %s event for %s", kind, clientID)
		}
	}
}

// needStore fails the test unless the broker in srv keeps its durable store
// in its data dir (restart and crash tests mean nothing without it).
func needStore(t testing.TB, srv *brokertest.Server) {
	t.Helper()
	if srv.DataDir == "" {
		t.Fatal("the broker runs without a store")
	}
	entries, err := os.ReadDir(srv.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) == 0 {
		t.Fatalf("the store wrote nothing to %s", srv.DataDir)
	}
}

// unique returns a name unique within the test process.
var uniqueMu sync.Mutex
var uniqueN int

func unique(prefix string) string {
	uniqueMu.Lock()
	defer uniqueMu.Unlock()
	uniqueN++
	return fmt.Sprintf("%s-%d", prefix, uniqueN)
}

// awaitEvent waits for the next client event of type typ.
func awaitEvent(t testing.TB, s *client.EventStream, typ client.EventType) client.Event {
	t.Helper()
	deadline := time.After(waitFor)
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

// eventsUntil returns the client events up to and including the first of
// type last.
func eventsUntil(t testing.TB, s *client.EventStream, last client.EventType) []client.Event {
	t.Helper()
	var out []client.Event
	deadline := time.After(waitFor)
	for {
		select {
		case e := <-s.C:
			out = append(out, e)
			if e.Type == last {
				return out
			}
		case <-deadline:
			t.Fatalf("no %s event; got %d events", last, len(out))
		}
	}
}
