package integration_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"

	"github.com/courier-mqtt/courier/broker"
	"github.com/courier-mqtt/courier/broker/brokertest"
)

// sessionExpiry is the session lifetime in the matrix: MQTT 5 clients ask for
// it, MQTT 3.1.1 persistent sessions get it from the broker's cap.
const sessionExpiry = 2 * time.Second

type sessionCase struct {
	clean   bool // clean start (v5) / clean session (3.1.1)
	after   bool // reconnect after the session expired
	restart bool // graceful broker restart while the client is away
}

func (c sessionCase) name() string {
	onOff := map[bool]string{true: "on", false: "off"}
	when := map[bool]string{true: "after-expiry", false: "before-expiry"}
	return fmt.Sprintf("clean=%s/reconnect=%s/restart=%s", onOff[c.clean], when[c.after], onOff[c.restart])
}

// want is what the spec says the returning client finds: a session resumed
// only when it asked for one and it had not expired [MQTT-3.2.2-2],
// [MQTT-3.1.2-4]; with it, its subscriptions [MQTT-3.1.2-5] and the QoS 1
// message queued while it was away [MQTT-3.1.2-5 in 3.1.1, 3.1.2.11.2 in v5].
func (c sessionCase) wantSession() bool { return !c.clean && !c.after }

// TestSessionMatrixMQTT5CleanStartAndExpiry runs clean start on/off x
// reconnect before/after the session expiry x broker restart or not, with an
// MQTT 5 client asking for a 2 s session expiry, and checks the session
// present flag, the subscription and the queued QoS 1 message.
func TestSessionMatrixMQTT5CleanStartAndExpiry(t *testing.T) {
	t.Parallel()
	for _, clean := range []bool{false, true} {
		for _, after := range []bool{false, true} {
			for _, restart := range []bool{false, true} {
				c := sessionCase{clean: clean, after: after, restart: restart}
				t.Run(c.name(), func(t *testing.T) {
					t.Parallel()
					runSessionCase(t, c, func(t testing.TB, addr, id string, clean bool, in *inbox) wireConn {
						return dialV5(t, addr, id, clean, sessionExpiry, in)
					})
				})
			}
		}
	}
}

// TestSessionMatrixMQTT311CleanSession runs the same matrix with
// paho.mqtt.golang speaking MQTT 3.1.1, whose persistent sessions live for
// the broker's MaxSessionExpiry (2 s here). A clean session ends with the
// connection, so it has no before/after-expiry dimension.
func TestSessionMatrixMQTT311CleanSession(t *testing.T) {
	t.Parallel()
	var cases []sessionCase
	for _, restart := range []bool{false, true} {
		cases = append(cases,
			sessionCase{clean: true, restart: restart},
			sessionCase{clean: false, after: false, restart: restart},
			sessionCase{clean: false, after: true, restart: restart})
	}
	for _, c := range cases {
		name := c.name()
		if c.clean {
			name = strings.Replace(name, "/reconnect=before-expiry", "", 1)
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			runSessionCase(t, c, func(t testing.TB, addr, id string, clean bool, in *inbox) wireConn {
				return dialV3(t, addr, id, clean, in)
			})
		})
	}
}

type dialFunc func(t testing.TB, addr, id string, clean bool, in *inbox) wireConn

func runSessionCase(t *testing.T, c sessionCase, dial dialFunc) {
	srv := brokertest.Start(t, brokertest.WithConfig(func(cfg *broker.Config) {
		cfg.Limits.MaxSessionExpiry = sessionExpiry
	}))
	if c.restart {
		needStore(t, srv)
	}
	id := unique("sess")
	topic, markTopic := "m/"+id, "mx/"+id
	obs := observe(t, srv, broker.EventClientDisconnected, broker.EventSessionExpired)

	// The subscriber subscribes at QoS 1 and leaves normally.
	sub := dial(t, srv.TCPAddr, id, c.clean, newInbox())
	sub.subscribe(t, topic, 1)
	sub.close()
	awaitBrokerEvent(t, obs, broker.EventClientDisconnected, id)

	// A message is queued for it while it is away.
	pub := dial(t, srv.TCPAddr, id+"-pub", true, nil)
	pub.publish(t, topic, 1, false, "queued")
	pub.close()

	fresh := obs
	if c.restart {
		srv.Restart(t)
		fresh = observe(t, srv, broker.EventSessionExpired)
	}
	if c.after {
		// Wait for the broker to expire the session, on whichever side of
		// the restart it happens.
		awaitExpiry(t, obs, fresh, id)
		// mochi reports an expiry (OnClientExpired) before it deletes the
		// client, so a CONNECT right at the event can still find half of the
		// session (seen: session present, queued message kept, subscription
		// gone). A canary session that leaves now expires in a later pass of
		// the broker's expiry loop; its event says the subject's pass is over.
		canary := id + "-canary"
		dialV5(t, srv.TCPAddr, canary, false, time.Second, nil).close()
		awaitBrokerEvent(t, fresh, broker.EventSessionExpired, canary)
	}

	in := newInbox()
	back := dial(t, srv.TCPAddr, id, c.clean, in)
	if got, want := back.present(), c.wantSession(); got != want {
		t.Errorf("session present = %v, want %v", got, want)
	}
	// A marker on a new subscription orders everything: the queued message
	// is resent at connect, and "live" is routed before the marker.
	back.subscribe(t, markTopic, 1)
	pub = dial(t, srv.TCPAddr, id+"-pub", true, nil)
	pub.publish(t, topic, 1, false, "live")
	pub.publish(t, markTopic, 1, false, "marker")
	got := payloads(in.until(t, "marker"))
	var want []string
	if c.wantSession() {
		want = []string{"queued", "live"}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("before the marker got %q, want %q (queued message and kept subscription only with a resumed session)", got, want)
	}
}

// awaitExpiry waits for the session of id to expire, reported by the broker
// from before the restart (obs) or by the restarted one (fresh).
func awaitExpiry(t testing.TB, obs, fresh *broker.Observer, id string) {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		select {
		case ev, ok := <-obs.C:
			if !ok {
				obs = &broker.Observer{} // closed by the restart: a nil channel blocks
				continue
			}
			if ev.Kind == broker.EventSessionExpired && ev.ClientID == id {
				return
			}
		case ev := <-fresh.C:
			if ev.Kind == broker.EventSessionExpired && ev.ClientID == id {
				return
			}
		case <-deadline:
			t.Fatalf("session %s never expired", id)
		}
	}
}

// expiryGate is a mochi hook that holds the expiry of one session open: the
// first OnClientExpired for client blocks until release closes.
type expiryGate struct {
	mqtt.HookBase
	client  string
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (g *expiryGate) ID() string           { return "test-expiry-gate" }
func (g *expiryGate) Provides(b byte) bool { return b == mqtt.OnClientExpired }

// holdSignal is a slog handler that closes a channel when the broker logs
// that it holds a connection until its session's expiry is done.
type holdSignal struct {
	once *sync.Once
	held chan struct{}
}

func (h holdSignal) Enabled(context.Context, slog.Level) bool { return true }
func (h holdSignal) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "connect waits for its session's expiry" {
		h.once.Do(func() { close(h.held) })
	}
	return nil
}
func (h holdSignal) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h holdSignal) WithGroup(string) slog.Handler      { return h }
func (g *expiryGate) OnClientExpired(cl *mqtt.Client) {
	if cl.ID != g.client {
		return
	}
	g.once.Do(func() {
		close(g.entered)
		<-g.release
	})
}

// TestReconnectDuringSessionExpiryGetsANewWorkingSession reconnects a client
// while the broker is expiring its session (held there by a hook,
// deterministically). The session has expired, so the client must get a new
// one: session present 0, nothing queued [MQTT-3.1.2-23]; and the new
// connection must keep working once the expiry completes.
func TestReconnectDuringSessionExpiryGetsANewWorkingSession(t *testing.T) {
	t.Parallel()
	id := unique("expiring")
	gate := &expiryGate{client: id, entered: make(chan struct{}), release: make(chan struct{})}
	held := holdSignal{once: new(sync.Once), held: make(chan struct{})}
	srv := brokertest.Start(t, brokertest.WithoutStore(), brokertest.WithOptions(
		broker.WithHook(gate, nil), broker.WithLogger(slog.New(held))))
	obs := observe(t, srv, broker.EventClientDisconnected, broker.EventSessionExpired)
	first := dialV5(t, srv.TCPAddr, id, false, time.Second, nil)
	first.subscribe(t, "exp/"+id, 1)
	first.close()
	awaitBrokerEvent(t, obs, broker.EventClientDisconnected, id)
	pub := dialV5(t, srv.TCPAddr, id+"-pub", true, 0, nil)
	pub.publish(t, "exp/"+id, 1, false, "queued")

	select {
	case <-gate.entered:
	case <-time.After(waitFor):
		t.Fatal("the session never started expiring")
	}
	// Reconnect while the expiry is held open. The expiry is released once
	// the reconnect has either completed (it went through the half-expired
	// session) or is held by the broker until the expiry is done.
	in := newInbox()
	dialed := make(chan *v5Conn, 1)
	go func() { dialed <- dialV5(t, srv.TCPAddr, id, false, time.Minute, in) }()
	var back *v5Conn
	select {
	case back = <-dialed:
		close(gate.release)
	case <-held.held:
		close(gate.release)
		select {
		case back = <-dialed:
		case <-time.After(waitFor):
			t.Fatal("the held reconnect never completed")
		}
	case <-time.After(waitFor):
		t.Fatal("the reconnect neither completed nor was held")
	}
	if back.present() {
		t.Errorf("session present after the session expired")
	}
	// A canary expiring in a later pass says the subject's pass is over.
	canary := id + "-canary"
	dialV5(t, srv.TCPAddr, canary, false, time.Second, nil).close()
	awaitBrokerEvent(t, obs, broker.EventSessionExpired, canary)

	back.subscribe(t, "exp2/"+id, 1)
	pub.publish(t, "exp2/"+id, 1, false, "after")
	if got := payloads(in.take(t, 1)); got[0] != "after" {
		t.Errorf("new session got %v first, want [after]", got)
	}
}
