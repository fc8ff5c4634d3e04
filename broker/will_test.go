package broker_test

import (
	"strings"
	"testing"
	"time"

	"github.com/courier-mqtt/courier/broker"
	"github.com/courier-mqtt/courier/broker/brokertest"
	"github.com/courier-mqtt/courier/internal/mqtttest"
)

// willConnect is a v3.1.1 CONNECT with a QoS 0 Will on topic.
func willConnect(id, topic string) []byte {
	body := append(str("MQTT"), 4, 0x06, 0, 30) // clean session + will flag, keepalive 30
	body = append(body, str(id)...)
	body = append(body, str(topic)...)
	body = append(body, str("gone")...)
	return frame(0x10, body)
}

func subscribe(c *rawClient, filter string) {
	c.t.Helper()
	body := append([]byte{0, 1}, str(filter)...)
	c.send(frame(0x82, append(body, 0)))
	p, err := c.read(5 * time.Second)
	if err != nil || p.kind() != 9 {
		c.t.Fatalf("want SUBACK, got %#x %v", p.header, err)
	}
}

func TestAbruptDisconnectPublishesTheWill(t *testing.T) {
	srv := brokertest.Start(t)
	sub := dialRaw(t, "tcp", srv.TCPAddr)
	sub.connect(4, "watcher", 30)
	subscribe(sub, "will/#")

	c := dialRaw(t, "tcp", srv.TCPAddr)
	c.send(willConnect("dies", "will/dies"))
	if p, err := c.read(5 * time.Second); err != nil || p.kind() != 2 {
		t.Fatalf("CONNACK: %#x %v", p.header, err)
	}
	_ = c.conn.Close() // no DISCONNECT: the Will must go out
	p, err := sub.read(5 * time.Second)
	if err != nil || p.kind() != 3 || !strings.Contains(string(p.body), "will/dies") {
		t.Fatalf("want the Will PUBLISH, got %#x %q %v", p.header, p.body, err)
	}
}

func TestGracefulShutdownDoesNotPublishWills(t *testing.T) {
	srv := brokertest.Start(t)
	// A persistent watcher: its subscription stays in the topic index even
	// if the shutdown closes it first, so any Will publication would reach it.
	sub := dialRaw(t, "tcp", srv.TCPAddr)
	sub.send(frame(0x10, append(append(str("MQTT"), 4, 0x00, 0, 30), str("watcher")...)))
	if p, err := sub.read(5 * time.Second); err != nil || p.kind() != 2 {
		t.Fatalf("CONNACK: %#x %v", p.header, err)
	}
	subscribe(sub, "will/#")
	for _, id := range strings.Split("a b c d e f g h i j", " ") {
		c := dialRaw(t, "tcp", srv.TCPAddr)
		c.send(willConnect(id, "will/"+id))
		if p, err := c.read(5 * time.Second); err != nil || p.kind() != 2 {
			t.Fatalf("CONNACK: %#x %v", p.header, err)
		}
	}
	if err := srv.Broker.Shutdown(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	for {
		p, err := sub.read(5 * time.Second)
		if err != nil {
			break // closed by the shutdown
		}
		if p.kind() == 3 {
			t.Fatalf("a Will was delivered during shutdown: %q", p.body)
		}
	}
}

func TestShutdownDropsDelayedWills(t *testing.T) {
	srv := brokertest.Start(t, brokertest.WithoutStore())
	// A persistent watcher keeps its subscription through the shutdown, so
	// a Will published during it would reach its queue or connection.
	w := mqtttest.Dial(t, srv.TCPAddr, 5)
	w.MustConnect(mqtttest.Connect{ClientID: "watcher", Keepalive: 30, Props: [][]byte{mqtttest.Int(mqtttest.PropSessionExpiry, 60)}})
	w.Subscribe(1, mqtttest.Sub{Filter: "will/#"})
	obs := srv.Broker.Observe(16, broker.EventClientDisconnected)
	defer obs.Close()
	c := mqtttest.Dial(t, srv.TCPAddr, 5)
	c.MustConnect(mqtttest.Connect{ClientID: "later", Keepalive: 30,
		Props: [][]byte{mqtttest.Int(mqtttest.PropSessionExpiry, 60)},
		Will:  &mqtttest.Will{Topic: "will/later", Payload: []byte("gone"), Props: [][]byte{mqtttest.Int(mqtttest.PropWillDelay, 1)}}})
	_ = c.C.Close()
	for seen := false; !seen; { // then the Will waits for its 1 s delay
		select {
		case ev := <-obs.C:
			seen = ev.ClientID == "later"
		case <-time.After(5 * time.Second):
			t.Fatal("the broker did not notice the disconnect")
		}
	}
	if err := srv.Broker.Shutdown(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	for _, p := range w.Closed(5 * time.Second) {
		if p.Type() == mqtttest.PUBLISH {
			t.Fatalf("a delayed Will was delivered during shutdown: %s", p)
		}
	}
}
