package client_test

import (
	"context"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/courier-mqtt/courier/broker/brokertest"
	"github.com/courier-mqtt/courier/client"
)

const waitFor = 10 * time.Second

// fastBackoff keeps reconnects quick in tests.
func fastBackoff(int) time.Duration { return 20 * time.Millisecond }

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

// newClient builds a client for srv with test timers; it is stopped in Cleanup.
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

// startClient builds, starts and waits for a connected client.
func startClient(t testing.TB, srv *brokertest.Server, opts ...client.Option) *client.Client {
	t.Helper()
	c := newClient(t, srv.TCPAddr, opts...)
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
		t.Fatalf("not connected: %v", err)
	}
}

// waitEvent reads events until one of type typ (and matching ok, if given)
// arrives, failing after waitFor.
func waitEvent(t testing.TB, s *client.EventStream, typ client.EventType, ok func(client.Event) bool) client.Event {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		select {
		case e, open := <-s.C:
			if !open {
				t.Fatalf("event stream closed waiting for %s", typ)
			}
			if e.Type == typ && (ok == nil || ok(e)) {
				return e
			}
		case <-deadline:
			t.Fatalf("no %s event within %s", typ, waitFor)
		}
	}
}

// recv waits for one message on ch.
func recv(t testing.TB, ch <-chan *client.Message) *client.Message {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(waitFor):
		t.Fatalf("no message within %s", waitFor)
		return nil
	}
}

// collector is a MessageHandler that forwards messages to a channel.
type collector struct {
	ch chan *client.Message
	mu sync.Mutex
	n  map[string]int
}

func newCollector() *collector {
	return &collector{ch: make(chan *client.Message, 1024), n: map[string]int{}}
}

func (c *collector) handle(_ context.Context, _ client.PubSub, m *client.Message) {
	c.mu.Lock()
	c.n[string(m.Payload())]++
	c.mu.Unlock()
	c.ch <- m
}

func (c *collector) count(payload string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[payload]
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	t.Cleanup(cancel)
	return ctx
}
