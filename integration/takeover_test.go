package integration_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/courier-mqtt/courier/broker"
	"github.com/courier-mqtt/courier/broker/brokertest"
)

// queueForOfflineSession gives a 3.1.1 session on id a QoS 1 subscription to
// topic, leaves, and has n QoS 1 messages queued for it.
func queueForOfflineSession(t *testing.T, srv *brokertest.Server, id, topic string, n int) {
	t.Helper()
	rc := dialRaw(t, srv)
	rc.send(t, connect311(id, false))
	if h, body := rc.read(t); h != 0x20 || body[1] != 0 {
		t.Fatalf("CONNACK %#x %x", h, body)
	}
	rc.send(t, subscribe311(1, topic, 1))
	if h, _ := rc.read(t); h != 0x90 {
		t.Fatalf("SUBACK %#x", h)
	}
	obs := observe(t, srv, broker.EventClientDisconnected)
	rc.send(t, []byte{0xE0, 0})
	awaitBrokerEvent(t, obs, broker.EventClientDisconnected, id)
	// mochi sends PUBACK before it routes the message, so an acked message
	// may not be queued yet. A fence from the same publisher, processed after
	// the routing of the messages before it, says they are.
	fenced := newInbox()
	watcher := dialV3(t, srv.TCPAddr, id+"-watch", true, fenced)
	watcher.subscribe(t, "fence/"+id, 1)
	pub := dialV3(t, srv.TCPAddr, id+"-pub", true, nil)
	for i := range n {
		pub.publish(t, topic, 1, false, fmt.Sprintf("m%d", i))
	}
	pub.publish(t, "fence/"+id, 1, false, "fence")
	fenced.until(t, "fence")
	pub.close()
	watcher.close()
}

// readPublishes reads n PUBLISH packets without acknowledging them and
// returns their payloads and whether each carried DUP.
func readPublishes(t *testing.T, rc *rawConn, topic string, n int) (payloads []string, dups []bool) {
	t.Helper()
	for range n {
		h, body := rc.read(t)
		if h&0xf0 != 0x30 {
			t.Fatalf("want PUBLISH, got %#x %x", h, body)
		}
		start := 2 + len(topic) + 2 // topic, packet id
		payloads = append(payloads, string(body[start:]))
		dups = append(dups, h&0x08 != 0)
	}
	return payloads, dups
}

// TestResumingASessionReportsNoMessageDropped: a client resumes its session
// with three QoS 1 messages queued. They are handed to the new connection,
// not dropped, so the broker must not report them as dropped
// (EventMessageDropped, courier_messages_dropped_total).
func TestResumingASessionReportsNoMessageDropped(t *testing.T) {
	t.Parallel()
	srv := brokertest.Start(t, brokertest.WithoutStore())
	id := unique("resume")
	queueForOfflineSession(t, srv, id, "resume/"+id, 3)

	obs := observe(t, srv, broker.EventMessageDropped, broker.EventClientConnected)
	back := dialV3(t, srv.TCPAddr, id, false, newInbox())
	if !back.present() {
		t.Fatal("session not resumed")
	}
	// Drops of the takeover are reported before the session is.
	for {
		ev := awaitBrokerEvent(t, obs, 0, id)
		if ev.Kind == broker.EventClientConnected {
			break
		}
		t.Errorf("%s for %s: %s on %q", ev.Kind, ev.ClientID, ev.Reason, ev.Topic)
	}
}

// TestUnackedMessagesOfAResumedSessionSurviveARestart: a client resumes its
// session, receives its three queued QoS 1 messages and vanishes without
// acknowledging them. After a graceful restart they are still owed to it,
// and are resent with DUP set [MQTT-3.3.1-1] [MQTT-4.4.0-1].
func TestUnackedMessagesOfAResumedSessionSurviveARestart(t *testing.T) {
	t.Parallel()
	srv := brokertest.Start(t)
	needStore(t, srv)
	id := unique("unacked")
	topic := "unacked/" + id
	queueForOfflineSession(t, srv, id, topic, 3)

	rc := dialRaw(t, srv)
	rc.send(t, connect311(id, false))
	if h, body := rc.read(t); h != 0x20 || body[0] != 1 {
		t.Fatalf("CONNACK %#x %x, want session present", h, body)
	}
	if got, _ := readPublishes(t, rc, topic, 3); fmt.Sprint(got) != "[m0 m1 m2]" {
		t.Fatalf("first delivery %v", got)
	}
	_ = rc.c.Close() // no PUBACK, no DISCONNECT

	srv.Restart(t)
	rc = dialRaw(t, srv)
	rc.send(t, connect311(id, false))
	if h, body := rc.read(t); h != 0x20 || body[0] != 1 {
		t.Fatalf("CONNACK after restart %#x %x, want session present", h, body)
	}
	got, dups := readPublishes(t, rc, topic, 3)
	if fmt.Sprint(got) != "[m0 m1 m2]" {
		t.Errorf("after restart got %v, want [m0 m1 m2]", got)
	}
	for i, d := range dups {
		if !d {
			t.Errorf("resent message %d without DUP", i)
		}
	}
}

// takeoverGate is a mochi hook that holds a session takeover open: mochi
// reports the old connection's in-flight messages as dropped (OnQosDropped)
// after it copied them to the new connection and before it registers the new
// connection. The first such report for client blocks until release closes.
type takeoverGate struct {
	mqtt.HookBase
	client  string
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (g *takeoverGate) ID() string           { return "test-takeover-gate" }
func (g *takeoverGate) Provides(b byte) bool { return b == mqtt.OnQosDropped }
func (g *takeoverGate) OnQosDropped(cl *mqtt.Client, _ packets.Packet) {
	if cl.ID != g.client || !cl.IsTakenOver() {
		return
	}
	g.once.Do(func() {
		close(g.entered)
		<-g.release
	})
}

// TestMessageRoutedDuringSessionResumeIsDelivered publishes a QoS 1 message
// to an offline persistent session at the moment that session is resumed
// (held there by a hook, deterministically). The publisher has its PUBACK,
// so the message must reach the resumed session [MQTT-4.3.2], in order.
func TestMessageRoutedDuringSessionResumeIsDelivered(t *testing.T) {
	t.Parallel()
	id := unique("window")
	gate := &takeoverGate{client: id, entered: make(chan struct{}), release: make(chan struct{})}
	srv := brokertest.Start(t, brokertest.WithoutStore(), brokertest.WithOptions(broker.WithHook(gate, nil)))
	topic := "window/" + id
	queueForOfflineSession(t, srv, id, topic, 1)

	resumed := make(chan *v3Conn, 1)
	in := newInbox()
	go func() { resumed <- dialV3(t, srv.TCPAddr, id, false, in) }()
	select {
	case <-gate.entered:
	case <-time.After(waitFor):
		t.Fatal("the takeover never reached the gate")
	}
	// Publish while the takeover is held open, and wait until it is routed.
	fenced := newInbox()
	watcher := dialV3(t, srv.TCPAddr, id+"-watch2", true, fenced)
	watcher.subscribe(t, "fence2/"+id, 1)
	pub := dialV3(t, srv.TCPAddr, id+"-pub2", true, nil)
	pub.publish(t, topic, 1, false, "during-resume")
	pub.publish(t, "fence2/"+id, 1, false, "fence")
	fenced.until(t, "fence")
	close(gate.release)
	select {
	case <-resumed:
	case <-time.After(waitFor):
		t.Fatal("the resumed connection never completed")
	}

	if got := payloads(in.take(t, 2)); fmt.Sprint(got) != "[m0 during-resume]" {
		t.Errorf("resumed session got %v, want [m0 during-resume]", got)
	}
}
