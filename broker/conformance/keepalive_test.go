package conformance_test

import (
	"testing"
	"time"

	"github.com/courier-mqtt/courier/broker"
	"github.com/courier-mqtt/courier/broker/brokertest"
	mt "github.com/courier-mqtt/courier/internal/mqtttest"
)

// TestKeepalive covers 3.1.2.10 Keep Alive, 3.2.2.3.14 Server Keep Alive and
// 3.12 PINGREQ (5.0), 3.1.2.10 and 3.12 (3.1.1), with the broker's keepalive
// floor (1 s here) and ceiling (2 s here): Limits.KeepaliveFloor and
// Limits.KeepaliveCeiling, announced to MQTT 5 clients as Server Keep Alive.
//
// Keepalive timing is slow to test, so every row's connection is opened at
// once on one broker and the rows are checked afterwards: each must stay
// open (a bounded negative check: it only fails if the broker is early) for
// its lower bound after its CONNECT was sent, then be closed within
// mt.Timeout.
func TestKeepalive(t *testing.T) {
	t.Parallel()
	srv := lcStart(t, brokertest.WithConfig(func(c *broker.Config) {
		c.Limits.KeepaliveFloor = time.Second
		c.Limits.KeepaliveCeiling = 2 * time.Second
	}))
	rows := []struct {
		name      string
		rule      string
		version   byte
		keepalive uint16
		server    uint16        // Server Keep Alive expected in an MQTT 5 CONNACK; 0: none
		open      time.Duration // must still be open this long after CONNACK
		will      bool          // has a Will, which the timeout publishes
	}{
		{"a keepalive within the limits is used as asked", "[MQTT-3.1.2-22] [MQTT-3.2.2-22]", 5, 1, 0, 1200 * time.Millisecond, false},
		{"a keepalive within the limits is used as asked", "[MQTT-3.1.2-24@3.1.1]", 4, 1, 0, 1200 * time.Millisecond, false},
		{"a keepalive within the limits is used as asked", "", 3, 1, 0, 1200 * time.Millisecond, false},
		{"a keepalive above the ceiling is capped", "[MQTT-3.1.2-22]", 5, 600, 2, 2500 * time.Millisecond, false},
		{"a keepalive above the ceiling is capped", "[MQTT-3.1.2-24@3.1.1]", 4, 600, 0, 2500 * time.Millisecond, false},
		{"keepalive 0 gets the floor", "[MQTT-3.1.2-22]", 5, 0, 1, 1200 * time.Millisecond, false},
		{"keepalive 0 gets the floor", "[MQTT-3.1.2-24@3.1.1]", 4, 0, 0, 1200 * time.Millisecond, false},
		{"a keepalive timeout publishes the Will", "[MQTT-3.1.2-22] [MQTT-3.1.2-8]", 5, 1, 0, 1200 * time.Millisecond, true},
		{"a keepalive timeout publishes the Will", "[MQTT-3.1.2-24@3.1.1] [MQTT-3.1.2-8@3.1.1]", 4, 1, 0, 1200 * time.Millisecond, true},
	}
	w := lcWatch(t, srv, "will/#")
	conns := make([]*mt.Conn, len(rows))
	since := make([]time.Time, len(rows))
	for i, r := range rows {
		pk := mt.Connect{ClientID: "ka" + string(rune('a'+i)), Clean: true, Keepalive: r.keepalive}
		if r.will {
			pk.Will = &mt.Will{Topic: "will/" + pk.ClientID, Payload: []byte("timed out")}
		}
		conns[i] = mt.Dial(t, srv.TCPAddr, r.version)
		since[i] = time.Now() // before the CONNECT: the broker's timer starts later
		ca := conns[i].MustConnect(pk)
		ka, ok := ca.Props.Get(mt.PropServerKeepAlive)
		if r.version == 5 && (ok != (r.server != 0) || uint16(ka.Value) != r.server) {
			t.Errorf("%s/%s: Server Keep Alive %+v, want %d (0: absent)", r.name, lcVersions[r.version], ka, r.server)
		}
	}
	wills := 0
	for i, r := range rows {
		conns[i].Quiet(time.Until(since[i].Add(r.open)))
		conns[i].ExpectClosed()
		if r.will {
			wills++
		}
	}
	for range wills {
		if m := w.ExpectPublish(); string(m.Payload) != "timed out" {
			t.Fatalf("want a Will, got %q on %s", m.Payload, m.Topic)
		}
	}
}

// TestPingreq covers 3.12.4 PINGREQ actions: a PINGRESP for each PINGREQ,
// which keeps a connection with keepalive 1 s open well past 1.5 s (5.0,
// 3.1.1 and 3.1). Its connections also outlive a Session Expiry of 1 s with
// their session state intact ([MQTT-4.1.0-1]; 3.1.1: [MQTT-4.1.0-1@3.1.1]
// [MQTT-4.1.0-2@3.1.1]): their subscriptions still deliver afterwards.
func TestPingreq(t *testing.T) {
	t.Parallel()
	srv := lcStart(t)
	rows := []struct {
		rule    string
		version byte
	}{
		{"[MQTT-3.12.4-1]", 5},
		{"[MQTT-3.12.4-1@3.1.1]", 4},
		{"", 3}, // 3.1: as 3.1.1, unnumbered
	}
	conns := make([]*mt.Conn, len(rows))
	for i, r := range rows {
		conns[i] = mt.Dial(t, srv.TCPAddr, r.version)
		pk := mt.Connect{ClientID: "ping-" + lcVersions[r.version], Clean: true, Keepalive: 1}
		if r.version == 5 {
			pk.Props = [][]byte{mt.Int(mt.PropSessionExpiry, 1)}
		}
		conns[i].MustConnect(pk)
		conns[i].Subscribe(1, mt.Sub{Filter: "alive"})
	}
	for range 5 { // 2 s in all, pinging well within the 1.5 s allowed
		conns[0].Quiet(400 * time.Millisecond)
		for i, c := range conns {
			c.Send(mt.Pingreq())
			if p := c.Expect(mt.PINGRESP); len(p.Body) != 0 {
				t.Fatalf("%s: PINGRESP with a body: %s", lcVersions[rows[i].version], p)
			}
		}
	}
	p := lcDial(t, srv, 5, "still")
	p.Send(mt.Publish{Topic: "alive", Payload: []byte("still")}.Encode())
	for _, c := range conns {
		lcExpectMessage(t, c, "alive", "still")
	}
}
