package client_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/courier-mqtt/courier/broker"
	"github.com/courier-mqtt/courier/broker/brokertest"
	"github.com/courier-mqtt/courier/client"
)

func TestBrokerRestartReconnectsResubscribesAndResumes(t *testing.T) {
	srv := brokertest.Start(t, brokertest.WithoutStore())
	backoffCalls := make(chan int, 100)
	sub := startClient(t, srv, client.WithClientID("sub"), client.WithBackoff(func(n int) time.Duration {
		select {
		case backoffCalls <- n:
		default:
		}
		return 20 * time.Millisecond
	}))
	events := sub.Events(256)
	defer events.Close()
	pub := startClient(t, srv, client.WithClientID("pub"))
	col := newCollector()
	ctx := ctxT(t)
	if err := sub.Subscribe(ctx, "restart/+", col.handle, client.QOSOne); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(ctx, "restart/1", "before", client.QOSOne); err != nil {
		t.Fatal(err)
	}
	recv(t, col.ch)

	// The broker keeps no sessions across this restart: only the client's
	// resubscribe brings the subscription back.
	srv.Stop(t)
	waitEvent(t, events, client.EventConnectionLost, nil)
	srv.Restart(t)
	waitEvent(t, events, client.EventReconnect, nil)
	waitEvent(t, events, client.EventSubscribeSuccess, func(e client.Event) bool { return e.Topic == "restart/+" })
	awaitConnected(t, pub)
	if err := pub.Publish(ctx, "restart/2", "after", client.QOSOne); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, col.ch); string(m.Payload()) != "after" {
		t.Fatalf("got %q after restart", m.Payload())
	}
	// Reconnect went through the backoff, attempt 0 immediately then 1, 2, ...
	sawRetry := false
	for len(backoffCalls) > 0 {
		if <-backoffCalls >= 1 {
			sawRetry = true
		}
	}
	if !sawRetry {
		t.Fatal("reconnect never used the backoff")
	}
}

func TestQoS1PublishedWhileBrokerDownArrivesOnceAfterClientRestart(t *testing.T) {
	srv := brokertest.Start(t, brokertest.WithoutStore())
	dir := t.TempDir()
	pub1 := startClient(t, srv, client.WithClientID("pub"), client.WithPersistence(dir))
	ev := pub1.Events(64)
	defer ev.Close()

	srv.Stop(t)
	waitEvent(t, ev, client.EventConnectionLost, nil)
	if err := pub1.Publish(ctxT(t), "offline/1", "queued-while-down", client.QOSOne); err != nil {
		t.Fatalf("offline publish: %v", err)
	}
	pub1.Stop()
	entries, _ := os.ReadDir(filepath.Join(dir, "queue"))
	if len(entries) != 1 {
		t.Fatalf("offline buffer on disk holds %d files, want 1", len(entries))
	}

	// A new process: same persistence dir, started while the broker is down.
	// Its dials wait at a gate so the subscriber is ready first.
	gate := make(chan struct{})
	d := &captureDialer{gate: gate}
	pub2 := newClient(t, srv.TCPAddr, client.WithClientID("pub"), client.WithPersistence(dir), client.WithDialer(d))
	started := make(chan error, 1)
	go func() { started <- pub2.Start() }()

	srv.Restart(t)
	sub := startClient(t, srv, client.WithClientID("sub"))
	col := newCollector()
	if err := sub.Subscribe(ctxT(t), "offline/#", col.handle, client.QOSOne); err != nil {
		t.Fatal(err)
	}
	close(gate)
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	if m := recv(t, col.ch); string(m.Payload()) != "queued-while-down" {
		t.Fatalf("got %q", m.Payload())
	}
	// A marker published after it arrives behind any duplicate.
	if err := pub2.Publish(ctxT(t), "offline/2", "marker", client.QOSOne); err != nil {
		t.Fatal(err)
	}
	for {
		if m := recv(t, col.ch); string(m.Payload()) == "marker" {
			break
		}
	}
	if n := col.count("queued-while-down"); n != 1 {
		t.Fatalf("message arrived %d times, want once", n)
	}
}

func TestWatchdogDetectsBlackHoledBroker(t *testing.T) {
	srv := brokertest.Start(t, brokertest.WithoutStore())
	px := startProxy(t, srv.TCPAddr)
	const ackTimeout = 300 * time.Millisecond
	c := startClient(t, &brokertest.Server{TCPAddr: px.addr()}, client.WithAckTimeout(ackTimeout), client.WithKeepAlive(60*time.Second))
	ev := c.Events(64)
	defer ev.Close()
	if err := c.Publish(ctxT(t), "wd/1", "ok", client.QOSOne); err != nil {
		t.Fatal(err)
	}
	px.blackhole()
	start := time.Now()
	// The PUBACK never comes: the watchdog closes the connection, the client
	// reconnects at once (new connections pass the proxy) and the session
	// resends the message, so this Publish still completes.
	if err := c.Publish(ctxT(t), "wd/2", "resent", client.QOSOne); err != nil {
		t.Fatalf("publish across the watchdog reconnect: %v", err)
	}
	inact := waitEvent(t, ev, client.EventInboundInactivity, nil)
	if !errors.Is(inact.Err, client.ErrAckTimeout) {
		t.Fatalf("inactivity event error %v", inact.Err)
	}
	lost := waitEvent(t, ev, client.EventConnectionLost, nil)
	if since := lost.Time.Sub(start); since > ackTimeout+5*time.Second {
		t.Fatalf("connection declared lost after %s with ack timeout %s", since, ackTimeout)
	}
	waitEvent(t, ev, client.EventReconnect, nil)
	if err := c.Publish(ctxT(t), "wd/3", "again", client.QOSOne); err != nil {
		t.Fatalf("publish after reconnect: %v", err)
	}
}

func TestPersistentSessionDeliversToHandlerRegisteredBeforeStart(t *testing.T) {
	tests := []struct {
		name    string
		restart bool // restart the broker (with its durable store) while the device is away
	}{
		{"broker keeps running", false},
		{"broker restarts from its store", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := []brokertest.Option{brokertest.WithoutStore()}
			if tt.restart {
				opts = nil // brokertest's default store in t.TempDir()
			}
			srv := brokertest.Start(t, opts...)
			first := startClient(t, srv, client.WithClientID("device-1"), client.WithSessionExpiry(time.Minute))
			if err := first.Subscribe(ctxT(t), "cmd/device-1", nil, client.QOSOne); err != nil {
				t.Fatal(err)
			}
			first.Stop()

			pub := startClient(t, srv, client.WithClientID("backend"))
			for _, p := range []string{"one", "two"} {
				if err := pub.Publish(ctxT(t), "cmd/device-1", p, client.QOSOne); err != nil {
					t.Fatal(err)
				}
			}
			pub.Stop()
			if tt.restart {
				srv.Restart(t)
			}

			second := newClient(t, srv.TCPAddr, client.WithClientID("device-1"), client.WithSessionExpiry(time.Minute))
			col := newCollector()
			if err := second.Subscribe(ctxT(t), "cmd/device-1", col.handle, client.QOSOne); err != nil {
				t.Fatal(err) // stored only: not started yet
			}
			all := second.Messages(8)
			defer all.Close()
			if err := second.Start(); err != nil {
				t.Fatal(err)
			}
			got := map[string]bool{}
			for range 2 {
				got[string(recv(t, col.ch).Payload())] = true
				recv(t, all.C)
			}
			if !got["one"] || !got["two"] {
				t.Fatalf("handler got %v", got)
			}
		})
	}
}

func TestCleanSessionStartsFresh(t *testing.T) {
	srv := brokertest.Start(t, brokertest.WithoutStore())
	tests := []struct {
		name        string
		clean       bool
		wantPresent bool
	}{
		{"persistent session resumes", false, true},
		{"clean session starts fresh", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := "session-" + strconv.FormatBool(tt.clean)
			// The first connection always leaves a persistent session behind.
			first := startClient(t, srv, client.WithClientID(id), client.WithSessionExpiry(time.Minute))
			if err := first.Subscribe(ctxT(t), "s/"+id, nil, client.QOSOne); err != nil {
				t.Fatal(err)
			}
			first.Stop()
			obs := srv.Broker.Observe(8, broker.EventClientConnected)
			defer obs.Close()
			startClient(t, srv, client.WithClientID(id), client.WithCleanSession(tt.clean))
			select {
			case e := <-obs.C:
				if e.ClientID != id || e.SessionPresent != tt.wantPresent {
					t.Fatalf("broker saw %s session present %v, want %v", e.ClientID, e.SessionPresent, tt.wantPresent)
				}
			case <-time.After(waitFor):
				t.Fatal("no connect seen by the broker")
			}
		})
	}
}

func TestOfflineBufferBoundAndPolicy(t *testing.T) {
	srv := brokertest.Start(t, brokertest.WithoutStore())
	tests := []struct {
		name    string
		policy  client.DropPolicy
		wantErr error
	}{
		{"drop oldest", client.DropOldest, nil},
		{"drop newest", client.DropNewest, client.ErrOfflineBufferFull},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &captureDialer{}
			c := startClient(t, srv, client.WithOfflineBuffer(1, tt.policy), client.WithDialer(d), client.WithAutoReconnect(false))
			ev := c.Events(64)
			defer ev.Close()
			d.cut()
			waitEvent(t, ev, client.EventConnectionLost, nil)
			if err := c.Publish(ctxT(t), "buf/1", "a", client.QOSOne); err != nil {
				t.Fatal(err)
			}
			if err := c.Publish(ctxT(t), "buf/1", "b", client.QOSOne); !errors.Is(err, tt.wantErr) {
				t.Fatalf("second offline publish: %v, want %v", err, tt.wantErr)
			}
			e := waitEvent(t, ev, client.EventOfflineMessageDiscarded, nil)
			if e.Size == 0 {
				t.Fatal("discard event without size")
			}
			if err := c.Publish(ctxT(t), "buf/1", "q0", client.QOSZero); !errors.Is(err, client.ErrNotConnected) {
				t.Fatalf("offline QoS 0: %v", err)
			}
		})
	}
}

func TestDisconnectAndClearState(t *testing.T) {
	srv := brokertest.Start(t, brokertest.WithoutStore())
	dir := t.TempDir()
	d := &captureDialer{}
	c := startClient(t, srv, client.WithPersistence(dir), client.WithDialer(d), client.WithAutoReconnect(false))
	ev := c.Events(64)
	defer ev.Close()
	if err := c.Subscribe(ctxT(t), "x/#", nil, client.QOSOne); err != nil {
		t.Fatal(err)
	}
	d.cut()
	waitEvent(t, ev, client.EventConnectionLost, nil)
	if err := c.Publish(ctxT(t), "x/1", "a", client.QOSOne); err != nil {
		t.Fatal(err)
	}
	if err := c.DisconnectAndClearState(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "queue")); !os.IsNotExist(err) {
		t.Fatalf("queue dir still there: %v", err)
	}
	info := getInfo(t, c)
	if len(info.Subscriptions) != 0 || info.Started {
		t.Fatalf("state after clear: %+v", info)
	}
}
