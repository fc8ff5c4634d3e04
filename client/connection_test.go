package client_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/courier-mqtt/courier/broker/brokertest"
	"github.com/courier-mqtt/courier/client"
)

func TestConnectionCallbacks(t *testing.T) {
	srv := brokertest.Start(t, brokertest.WithoutStore())
	connects, reconnects, lost := make(chan struct{}, 8), make(chan struct{}, 8), make(chan error, 8)
	d := &captureDialer{}
	c := startClient(t, srv, client.WithDialer(d),
		client.WithOnConnect(func(client.PubSub) { connects <- struct{}{} }),
		client.WithOnReconnect(func(client.PubSub) { reconnects <- struct{}{} }),
		client.WithOnConnectionLost(func(err error) { lost <- err }))
	wait := func(name string, ch <-chan struct{}) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(waitFor):
			t.Fatalf("no %s callback", name)
		}
	}
	wait("connect", connects)
	if len(reconnects) != 0 {
		t.Fatal("reconnect callback on the first connect")
	}
	d.cut()
	select {
	case err := <-lost:
		if err == nil {
			t.Fatal("connection lost without a reason")
		}
	case <-time.After(waitFor):
		t.Fatal("no connection lost callback")
	}
	wait("second connect", connects)
	wait("reconnect", reconnects)
	awaitConnected(t, c)
}

func TestWebSocketHeader(t *testing.T) {
	srv := brokertest.Start(t, brokertest.WithoutStore())
	// The broker refuses browser origins it does not know: the header is sent.
	c, err := client.NewClient(client.WithBrokerURL(srv.WSURL), client.WithAutoReconnect(false),
		client.WithWebSocketHeader(http.Header{"Origin": {"http://evil.example"}}))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err == nil || !strings.Contains(err.Error(), "bad handshake") {
		t.Fatalf("Start with a foreign Origin: %v, want the upgrade refused", err)
	}
}

func TestUnmatchedRetentionReplaysIntoLaterStream(t *testing.T) {
	srv := brokertest.Start(t, brokertest.WithoutStore())
	c := startClient(t, srv, client.WithUnmatchedRetention(time.Minute, 2))
	ev := c.Events(64)
	defer ev.Close()
	// Subscribed, but no handler and no stream yet.
	if err := c.Subscribe(ctxT(t), "late/#", nil, client.QOSOne); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"1", "2", "3"} {
		if err := c.Publish(ctxT(t), "late/a", p, client.QOSOne); err != nil {
			t.Fatal(err)
		}
		e := waitEvent(t, ev, client.EventMessageReceiveError, nil)
		if !errors.Is(e.Err, client.ErrNoHandler) {
			t.Fatalf("receive error %v", e.Err)
		}
	}
	other := c.Stream("elsewhere/#", 4)
	defer other.Close()
	s := c.Stream("late/+", 4)
	defer s.Close()
	// Bounded to 2: "1" was dropped; "2" and "3" replay in order.
	for _, want := range []string{"2", "3"} {
		if m := recv(t, s.C); string(m.Payload()) != want {
			t.Fatalf("replayed %q, want %q", m.Payload(), want)
		}
	}
	if len(other.C) != 0 {
		t.Fatal("a non-matching stream got replayed messages")
	}
	// Replayed messages are handed out once.
	again := c.Stream("late/#", 4)
	defer again.Close()
	if err := c.Publish(ctxT(t), "late/b", "live", client.QOSOne); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, again.C); string(m.Payload()) != "live" {
		t.Fatalf("second stream got %q first", m.Payload())
	}
}

func TestExponentialStartStrategy(t *testing.T) {
	srv := brokertest.Start(t, brokertest.WithoutStore())
	srv.Stop(t)
	c := newClient(t, srv.TCPAddr, client.WithAutoReconnect(false), client.WithConnectTimeout(time.Second))
	failed := make(chan error, 64)
	done := client.ExponentialStartStrategy(context.Background(), c,
		client.WithStartIntervals(time.Millisecond, 20*time.Millisecond),
		client.WithOnRetry(func(err error) {
			select {
			case failed <- err:
			default:
			}
		}))
	select {
	case err := <-failed:
		if err == nil {
			t.Fatal("retry without an error")
		}
	case <-time.After(waitFor):
		t.Fatal("no failed start while the broker is down")
	}
	srv.Restart(t)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("strategy ended with %v", err)
		}
	case <-time.After(waitFor):
		t.Fatal("never started")
	}
	awaitConnected(t, c)

	// A cancelled context ends the strategy.
	dh, dp := deadAddr(t)
	c2, err := client.NewClient(client.WithAddress(dh, dp), client.WithAutoReconnect(false))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done2 := client.ExponentialStartStrategy(ctx, c2, client.WithStartIntervals(time.Millisecond, 5*time.Millisecond))
	cancel()
	select {
	case err := <-done2:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled strategy: %v", err)
		}
	case <-time.After(waitFor):
		t.Fatal("strategy ignored its context")
	}
}

func TestConnectFailureAnnouncesNextRetry(t *testing.T) {
	dh, dp := deadAddr(t)
	c, err := client.NewClient(client.WithAddress(dh, dp),
		client.WithBackoff(func(n int) time.Duration { return time.Duration(n) * 10 * time.Millisecond }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	ev := c.Events(64)
	defer ev.Close()
	if err := c.Start(); err != nil {
		t.Fatalf("Start with auto-reconnect: %v", err)
	}
	for want := 1; want <= 3; want++ {
		e := waitEvent(t, ev, client.EventConnectFailure, nil)
		if e.Attempt != want || e.NextRetry != time.Duration(want)*10*time.Millisecond || e.Err == nil {
			t.Fatalf("failure event %+v, want attempt %d retry in %dms", e, want, want*10)
		}
	}
}
