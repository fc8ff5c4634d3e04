package integration_test

import (
	"fmt"
	"testing"

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
	t.Skip("known bug: on a session takeover mochi server.go:592 (inheritClientSession) clones the inflight messages to the new client, then calls existing.ClearInflights(), which runs OnQosDropped for each on the old client object (same client id): broker/hook.go reports every resumed message as message_dropped (reason qos_dropped) and counts it in the drop metric, and storage hooks see a drop for messages that are still in flight; broker/hook.go OnQosDropped could ignore clients with cl.IsTakenOver()")
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
