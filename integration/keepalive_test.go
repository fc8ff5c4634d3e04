package integration_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/courier-mqtt/courier/broker"
	"github.com/courier-mqtt/courier/broker/brokertest"
	"github.com/courier-mqtt/courier/client"
)

// mqttString encodes a length-prefixed MQTT string.
func mqttString(s string) []byte { return append([]byte{byte(len(s) >> 8), byte(len(s))}, s...) }

// connectWithWill is an MQTT 3.1.1 CONNECT (clean session) with a QoS 1 Will.
func connectWithWill(id string, keepalive uint16, willTopic, willPayload string) []byte {
	body := append(mqttString("MQTT"), 4, 0x02|0x04|0x08, byte(keepalive>>8), byte(keepalive)) // clean, will, will QoS 1
	body = append(body, mqttString(id)...)
	body = append(body, mqttString(willTopic)...)
	body = append(body, mqttString(willPayload)...)
	return append([]byte{0x10, byte(len(body))}, body...)
}

// TestSilentClientIsDisconnectedAtOneAndAHalfKeepaliveAndItsWillIsPublished
// connects a raw TCP client with keepalive 2 s that then sends nothing. The
// broker must close it after 1.5 x keepalive (3 s) [MQTT-3.1.2-24@3.1.1], not
// before, and publish its Will [MQTT-3.1.2-8@3.1.1].
func TestSilentClientIsDisconnectedAtOneAndAHalfKeepaliveAndItsWillIsPublished(t *testing.T) {
	t.Parallel()
	srv := brokertest.Start(t, brokertest.WithoutStore())
	obs := observe(t, srv, broker.EventClientDisconnected)
	wills := newInbox()
	watcher := startClient(t, srv.TCPAddr, client.WithClientID(unique("watcher")), client.WithCleanSession(true))
	if err := watcher.Subscribe(ctxFor(t), "will/#", wills.handler, client.QOSOne); err != nil {
		t.Fatal(err)
	}

	id := unique("silent")
	conn := srv.Dial(t)
	if _, err := conn.Write(connectWithWill(id, 2, "will/"+id, "gone")); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	_ = conn.SetReadDeadline(time.Now().Add(waitFor))
	connack := make([]byte, 4)
	if _, err := io.ReadFull(r, connack); err != nil || connack[0] != 0x20 || connack[3] != 0 {
		t.Fatalf("CONNACK %x, %v", connack, err)
	}
	connected := time.Now()

	ev := awaitBrokerEvent(t, obs, broker.EventClientDisconnected, id)
	closedAfter := time.Since(connected)
	if !strings.HasPrefix(ev.Reason, "keepalive_timeout") {
		t.Errorf("disconnect reason %q, want keepalive_timeout", ev.Reason)
	}
	// mochi counts in whole seconds: keepalive 2 s closes at 3 s. The broker
	// armed its deadline just before we read CONNACK, hence the small slack.
	if closedAfter < 2900*time.Millisecond {
		t.Errorf("closed %v after connecting, before 1.5 x keepalive (3 s)", closedAfter)
	}
	m := wills.next(t)
	if m.Topic != "will/"+id || m.Payload != "gone" {
		t.Errorf("will %q %q", m.Topic, m.Payload)
	}
	// The socket is closed by the broker.
	if _, err := io.ReadAll(r); err != nil && !isClosedErr(err) {
		t.Errorf("reading the closed connection: %v", err)
	}
}

// TestSilentClientWithOddKeepaliveIsNotDisconnectedBeforeOneAndAHalfKeepalive
// uses keepalive 1 s: the broker may close the connection only after 1.5 s
// of silence [MQTT-3.1.2-24@3.1.1].
func TestSilentClientWithOddKeepaliveIsNotDisconnectedBeforeOneAndAHalfKeepalive(t *testing.T) {
	t.Parallel()
	srv := brokertest.Start(t, brokertest.WithoutStore())
	obs := observe(t, srv, broker.EventClientDisconnected)
	id := unique("odd")
	conn := srv.Dial(t)
	if _, err := conn.Write(connectWithWill(id, 1, "will/"+id, "gone")); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(waitFor))
	connack := make([]byte, 4)
	if _, err := io.ReadFull(conn, connack); err != nil || connack[0] != 0x20 {
		t.Fatalf("CONNACK %x, %v", connack, err)
	}
	connected := time.Now()
	awaitBrokerEvent(t, obs, broker.EventClientDisconnected, id)
	if closedAfter := time.Since(connected); closedAfter < 1400*time.Millisecond {
		t.Errorf("keepalive 1 s: closed after %v, before 1.5 s", closedAfter)
	}
}

func isClosedErr(err error) bool {
	var ne net.Error
	return errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) || (errors.As(err, &ne) && !ne.Timeout())
}

// TestWillDelayIsSuppressedWhenTheClientReturnsInTime cuts the network under
// two MQTT 5 clients with a 2 s Will delay. The one that reconnects within
// the delay resumes its session and its Will is never published
// [MQTT-3.1.3-9]; the one that stays away gets its Will published, which
// also proves the delay had passed for both.
func TestWillDelayIsSuppressedWhenTheClientReturnsInTime(t *testing.T) {
	t.Parallel()
	srv := brokertest.Start(t, brokertest.WithoutStore())
	wills := newInbox()
	watcher := startClient(t, srv.TCPAddr, client.WithClientID(unique("watcher")), client.WithCleanSession(true))
	if err := watcher.Subscribe(ctxFor(t), "will/#", wills.handler, client.QOSOne); err != nil {
		t.Fatal(err)
	}
	will := func(id string) client.Option {
		return client.WithWill(client.Will{Topic: "will/" + id, Payload: []byte(id), QoS: client.QOSOne, Delay: 2 * time.Second})
	}
	returnerID, goneID := unique("returner"), unique("gone")
	returnerPath, gonePath := startProxy(t, srv.TCPAddr), startProxy(t, srv.TCPAddr)
	returner := startClient(t, returnerPath.addr(), client.WithClientID(returnerID), will(returnerID))
	startClient(t, gonePath.addr(), client.WithClientID(goneID), will(goneID), client.WithAutoReconnect(false))
	events := returner.Events(64)
	defer events.Close()

	returnerPath.cut()
	gonePath.close()
	awaitEvent(t, events, client.EventConnectionLost)
	awaitEvent(t, events, client.EventReconnect)

	// Both Wills became due in the same broker tick at the latest; the gone
	// client's arrives, the returner's must not have come first.
	m := wills.next(t)
	if m.Topic != "will/"+goneID {
		t.Fatalf("first will on %s: the returning client's Will was published although it came back within the delay", m.Topic)
	}
}

// TestClientDetectsBlackHoledBrokerAndReconnectsWhenThePathHeals puts a
// proxy between our client (keepalive 1 s) and the broker, then makes the
// proxy drop every byte while keeping the connection open. The client must
// notice the missing PINGRESP and declare the connection lost within about
// two keepalives, keep trying while the path is dead, and reconnect and
// resume traffic once it heals.
func TestClientDetectsBlackHoledBrokerAndReconnectsWhenThePathHeals(t *testing.T) {
	t.Parallel()
	srv := brokertest.Start(t, brokertest.WithoutStore())
	path := startProxy(t, srv.TCPAddr)
	in := newInbox()
	c := newClient(t, path.addr(), client.WithClientID(unique("blackholed")),
		client.WithKeepAlive(time.Second), client.WithConnectTimeout(time.Second))
	events := c.Events(256)
	defer events.Close()
	if err := c.Subscribe(context.Background(), "bh/#", in.handler, client.QOSOne); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	awaitConnected(t, c)
	awaitEvent(t, events, client.EventSubscribeSuccess)

	path.setBlackhole(true)
	holed := time.Now()
	lost := awaitEvent(t, events, client.EventConnectionLost)
	if took := time.Since(holed); took > 5*time.Second {
		t.Errorf("connection loss noticed after %v; keepalive is 1 s", took)
	}
	t.Logf("loss detected after %v: %v", time.Since(holed), lost.Err)
	// While the path is dead, attempts fail (CONNACK never comes).
	awaitEvent(t, events, client.EventConnectFailure)

	path.setBlackhole(false)
	awaitEvent(t, events, client.EventReconnect)
	awaitEvent(t, events, client.EventSubscribeSuccess)
	pub := startClient(t, srv.TCPAddr, client.WithClientID(unique("pub")), client.WithCleanSession(true))
	if err := pub.Publish(ctxFor(t), "bh/after", "healed", client.QOSOne); err != nil {
		t.Fatal(err)
	}
	if m := in.next(t); m.Payload != "healed" {
		t.Fatalf("got %q after healing", m.Payload)
	}
}
