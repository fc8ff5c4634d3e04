package broker_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/courier-mqtt/courier/broker"
	"github.com/courier-mqtt/courier/broker/brokertest"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// truncatedV5Subscribe is upstream mochi #501: an MQTT 5 SUBSCRIBE whose
// topic filter is not followed by its subscription options byte. Stock mochi
// indexes past the end of the buffer and the panic kills the process.
func truncatedV5Subscribe() []byte {
	body := []byte{0x00, 0x01, 0x00} // packet id 1, no properties
	body = append(body, str("a/b")...)
	return frame(0x82, body)
}

// metricValue scrapes one series from the broker's /metrics.
func metricValue(t *testing.T, srv *brokertest.Server, series string) string {
	t.Helper()
	resp, err := http.Get(srv.OpsURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			return rest
		}
	}
	return ""
}

// survivor is a connected client that proves the broker still serves.
func survivor(t *testing.T, srv *brokertest.Server) func() {
	c := dialRaw(t, "tcp", srv.TCPAddr)
	c.connect(4, "survivor", 30)
	return func() {
		t.Helper()
		c.send(frame(0xC0, nil)) // PINGREQ
		p, err := c.read(5 * time.Second)
		if err != nil || p.kind() != 13 {
			t.Fatalf("survivor: want PINGRESP, got %#x, %v", p.header, err)
		}
	}
}

// panicHook panics while mochi reads a PUBLISH to topic "boom": a stand-in
// for any bug in mochi that panics on a connection's goroutine.
type panicHook struct{ mqtt.HookBase }

func (h *panicHook) ID() string           { return "test-panic" }
func (h *panicHook) Provides(b byte) bool { return b == mqtt.OnPacketRead }
func (h *panicHook) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if pk.FixedHeader.Type == packets.Publish && pk.TopicName == "boom" {
		panic("boom")
	}
	return pk, nil
}

func TestPanicClosesOnlyThatConnection(t *testing.T) {
	srv := brokertest.Start(t, brokertest.WithOptions(broker.WithHook(&panicHook{}, nil)))
	obs := srv.Broker.Observe(16, broker.EventConnectionPanic)
	alive := survivor(t, srv)

	bad := dialRaw(t, "tcp", srv.TCPAddr)
	bad.connect(5, "attacker", 30)
	bad.send(frame(0x30, append(str("boom"), 0)))
	bad.expectClosed(5 * time.Second)

	select {
	case ev := <-obs.C:
		if ev.ClientID != "attacker" {
			t.Fatalf("panic event for %q, want attacker", ev.ClientID)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no connection_panic event")
	}
	alive()
	if got := metricValue(t, srv, "courier_connection_panics_total"); got != "1" {
		t.Fatalf("courier_connection_panics_total = %q, want 1", got)
	}
	// The broker still accepts new clients, including one reusing the id.
	again := dialRaw(t, "tcp", srv.TCPAddr)
	again.connect(5, "attacker", 30)
}

// TestTruncatedV5SubscribeIsRefused: the validating layer refuses mochi
// #501's packet as malformed before mochi can index past its end.
func TestTruncatedV5SubscribeIsRefused(t *testing.T) {
	srv := brokertest.Start(t, brokertest.WithoutStore())
	obs := srv.Broker.Observe(16, broker.EventConnectionPanic)
	alive := survivor(t, srv)

	bad := dialRaw(t, "tcp", srv.TCPAddr)
	bad.connect(5, "attacker", 30)
	bad.send(truncatedV5Subscribe())
	p, err := bad.read(5 * time.Second)
	if err != nil || p.kind() != 14 || len(p.body) == 0 || p.body[0] != 0x81 {
		t.Fatalf("want DISCONNECT 0x81, got header %#x body %x, %v", p.header, p.body, err)
	}
	bad.expectClosed(5 * time.Second)
	alive()
	select {
	case ev := <-obs.C:
		t.Fatalf("connection panicked: %+v", ev)
	default:
	}
}

func TestMalformedFramesCloseOnlyTheirConnection(t *testing.T) {
	srv := brokertest.Start(t, brokertest.WithConfig(func(c *broker.Config) {
		c.Limits.MaxPacketSize = 1024
	}))
	alive := survivor(t, srv)
	big := make([]byte, 4096)
	cases := []struct {
		name    string
		connect bool // send a valid v5 CONNECT first
		bytes   []byte
	}{
		{name: "remaining length over four bytes", bytes: []byte{0x10, 0xff, 0xff, 0xff, 0xff, 0x7f}},
		{name: "publish before connect", bytes: frame(0x30, append(str("a"), 'x'))},
		{name: "reserved packet type 0", connect: true, bytes: frame(0x00, []byte{1, 2})},
		{name: "wrong protocol name", bytes: frame(0x10, append(str("XQTT"), 4, 2, 0, 30, 0, 1, 'x'))},
		{name: "truncated connect", bytes: frame(0x10, str("MQTT"))},
		{name: "publish with qos 3", connect: true, bytes: frame(0x36, append(str("a"), 0, 1, 0))},
		{name: "packet over maximum size", connect: true, bytes: frame(0x30, append(str("a"), append([]byte{0}, big...)...))},
		{name: "subscribe with no filters", connect: true, bytes: frame(0x82, []byte{0, 1, 0})},
		{name: "truncated v5 subscribe", connect: true, bytes: truncatedV5Subscribe()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, "tcp", srv.TCPAddr)
			if tc.connect {
				c.connect(5, "bad-"+strings.ReplaceAll(tc.name, " ", "-"), 30)
			}
			c.send(tc.bytes)
			c.expectClosed(5 * time.Second)
			alive()
		})
	}
}

func TestKeepaliveZeroClientGetsTheFloor(t *testing.T) {
	srv := brokertest.Start(t, brokertest.WithConfig(func(c *broker.Config) {
		c.Limits.KeepaliveFloor = time.Second
	}))
	t.Run("v5 is told in CONNACK", func(t *testing.T) {
		c := dialRaw(t, "tcp", srv.TCPAddr)
		ack := c.connect(5, "ka0-v5", 0)
		ka, ok := serverKeepAlive(ack)
		if !ok || ka != 1 {
			t.Fatalf("Server Keep Alive = %d (present %v), want 1", ka, ok)
		}
	})
	t.Run("a silent v3.1.1 client is disconnected", func(t *testing.T) {
		obs := srv.Broker.Observe(16, broker.EventClientDisconnected)
		defer obs.Close()
		c := dialRaw(t, "tcp", srv.TCPAddr)
		start := time.Now()
		c.connect(4, "ka0-v4", 0)
		c.expectClosed(10 * time.Second)
		if waited := time.Since(start); waited < time.Second {
			t.Fatalf("closed after %s, before the 1 s floor", waited)
		}
		for {
			select {
			case ev := <-obs.C:
				if ev.ClientID != "ka0-v4" {
					continue
				}
				if !strings.HasPrefix(ev.Reason, "keepalive_timeout") {
					t.Fatalf("disconnect reason %q, want keepalive_timeout", ev.Reason)
				}
				return
			case <-time.After(5 * time.Second):
				t.Fatal("no disconnect event")
			}
		}
	})
}

func TestKeepaliveAboveTheCeilingIsCapped(t *testing.T) {
	srv := brokertest.Start(t, brokertest.WithConfig(func(c *broker.Config) {
		c.Limits.KeepaliveCeiling = 60 * time.Second
	}))
	c := dialRaw(t, "tcp", srv.TCPAddr)
	ack := c.connect(5, "ka-big", 600)
	if ka, ok := serverKeepAlive(ack); !ok || ka != 60 {
		t.Fatalf("Server Keep Alive = %d (present %v), want 60", ka, ok)
	}
	// Within the ceiling the client's own value stands, and nothing is sent.
	c2 := dialRaw(t, "tcp", srv.TCPAddr)
	if _, ok := serverKeepAlive(c2.connect(5, "ka-ok", 30)); ok {
		t.Fatal("Server Keep Alive sent for an acceptable keepalive")
	}
}
