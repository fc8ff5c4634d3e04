package broker_test

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/courier-mqtt/courier/broker"
	"github.com/courier-mqtt/courier/broker/brokertest"
)

// next waits for the next event of kind k for client id.
func next(t *testing.T, obs *broker.Observer, k broker.EventKind, id string) broker.Event {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case ev, ok := <-obs.C:
			if !ok {
				t.Fatalf("observer closed waiting for %s of %s", k, id)
			}
			if ev.Kind == k && ev.ClientID == id {
				return ev
			}
		case <-deadline:
			t.Fatalf("no %s event for %s", k, id)
		}
	}
}

func TestObserverSeesTheClientLifecycle(t *testing.T) {
	srv := brokertest.Start(t)
	obs := srv.Broker.Observe(64)
	c := dialRaw(t, "tcp", srv.TCPAddr)
	c.connect(4, "life", 30)
	if ev := next(t, obs, broker.EventClientConnected, "life"); ev.ProtocolVersion != 4 || ev.Remote == "" || ev.Listener != "tcp" {
		t.Fatalf("connected event %+v", ev)
	}
	subscribe(c, "life/#")
	if ev := next(t, obs, broker.EventSubscribed, "life"); len(ev.Filters) != 1 || ev.Filters[0] != "life/#" {
		t.Fatalf("subscribed event %+v", ev)
	}
	c.send(frame(0xA2, append([]byte{0, 2}, str("life/#")...))) // UNSUBSCRIBE
	if ev := next(t, obs, broker.EventUnsubscribed, "life"); len(ev.Filters) != 1 || ev.Filters[0] != "life/#" {
		t.Fatalf("unsubscribed event %+v", ev)
	}
	c.send(frame(0xE0, nil)) // DISCONNECT
	if ev := next(t, obs, broker.EventClientDisconnected, "life"); ev.Reason != "normal" {
		t.Fatalf("disconnect reason %q, want normal", ev.Reason)
	}
}

func TestSessionExpiryIsReported(t *testing.T) {
	srv := brokertest.Start(t, brokertest.WithoutStore())
	obs := srv.Broker.Observe(64, broker.EventSessionExpired)
	c := dialRaw(t, "tcp", srv.TCPAddr)
	// v5 CONNECT, clean start, session expiry 1 s.
	body := append(str("MQTT"), 5, 0x02, 0, 30, 5, 0x11, 0, 0, 0, 1)
	c.send(frame(0x10, append(body, str("short-lived")...)))
	if p, err := c.read(5 * time.Second); err != nil || p.kind() != 2 {
		t.Fatalf("CONNACK: %#x %v", p.header, err)
	}
	c.send(frame(0xE0, []byte{0}))
	next(t, obs, broker.EventSessionExpired, "short-lived")
}

func TestSlowObserverLosesEventsAndTheLossIsCounted(t *testing.T) {
	srv := brokertest.Start(t)
	slow := srv.Broker.Observe(1) // never read
	fast := srv.Broker.Observe(1024)
	const n = 20
	for i := range n {
		c := dialRaw(t, "tcp", srv.TCPAddr)
		c.connect(4, fmt.Sprintf("burst-%d", i), 30)
	}
	// The broker kept going: every connection was acknowledged, and the
	// fast observer saw every one of them (in any order).
	seen := map[string]bool{}
	deadline := time.After(5 * time.Second)
	for len(seen) < n {
		select {
		case ev := <-fast.C:
			if ev.Kind == broker.EventClientConnected {
				seen[ev.ClientID] = true
			}
		case <-deadline:
			t.Fatalf("fast observer saw %d of %d connections", len(seen), n)
		}
	}
	if slow.Dropped() < n-1 {
		t.Fatalf("slow observer dropped %d events, want at least %d", slow.Dropped(), n-1)
	}
	got, _ := strconv.ParseFloat(metricValue(t, srv, "courier_events_dropped_total"), 64)
	if got < n-1 {
		t.Fatalf("courier_events_dropped_total = %v, want at least %d", got, n-1)
	}
	slow.Close()
	slow.Close() // idempotent
	if _, ok := <-slow.C; !ok {
		return
	}
	// one buffered event may remain; the channel is closed after it
	if _, ok := <-slow.C; ok {
		t.Fatal("closed observer still delivers")
	}
}

func TestMetricsMoveAfterTraffic(t *testing.T) {
	srv := brokertest.Start(t)
	c := dialRaw(t, "tcp", srv.TCPAddr)
	c.connect(4, "metrics", 30)
	subscribe(c, "m/#")
	// QoS 1 PUBLISH m/x, packet id 7, echoed back to ourselves.
	c.send(frame(0x32, append(append(str("m/x"), 0, 7), "hello"...)))
	var gotAck, gotMsg bool
	for !(gotAck && gotMsg) {
		p, err := c.read(5 * time.Second)
		if err != nil {
			t.Fatalf("waiting for PUBACK and PUBLISH: %v", err)
		}
		switch p.kind() {
		case 4:
			gotAck = true
		case 3:
			gotMsg = true // delivered at QoS 0: the subscription asked for 0
		}
	}
	// The sent counter moves just after the bytes hit the socket: wait for it.
	waitMetric(t, srv, `courier_messages_sent_total{qos="0"}`, "1")
	for series, want := range map[string]string{
		`courier_messages_received_total{qos="1"}`: "1",
		`courier_messages_sent_total{qos="1"}`:     "0",
		`courier_connections`:                      "1",
		`courier_connects_total`:                   "1",
		`courier_subscriptions`:                    "1",
	} {
		if got := metricValue(t, srv, series); got != want {
			t.Errorf("%s = %q, want %s", series, got, want)
		}
	}
	if got, _ := strconv.ParseFloat(metricValue(t, srv, "courier_received_bytes_total"), 64); got <= 0 {
		t.Errorf("courier_received_bytes_total = %v, want > 0", got)
	}
}

// waitMetric polls /metrics until series reads want, failing after 5 s.
func waitMetric(t *testing.T, srv *brokertest.Server, series, want string) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(5 * time.Second)
	for {
		if got := metricValue(t, srv, series); got == want {
			return
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("%s = %q, want %s", series, metricValue(t, srv, series), want)
		}
	}
}

func TestOpsEndpointsReportHealthAndReadiness(t *testing.T) {
	srv := brokertest.Start(t)
	get := func(path string) int {
		resp, err := http.Get(srv.OpsURL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get("/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d", code)
	}
	if code := get("/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz = %d after Start", code)
	}
	if !srv.Broker.Ready() {
		t.Fatal("Ready() false after Start")
	}
	if code := get("/debug/pprof/"); code != http.StatusNotFound {
		t.Fatalf("/debug/pprof/ = %d with pprof off, want 404", code)
	}
}
