package conformance_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/courier-mqtt/courier/internal/mqtttest"
	"github.com/courier-mqtt/courier/internal/wsconn"
	"github.com/gorilla/websocket"
)

// TestDollarTopics: a filter starting with a wildcard does not match a
// topic name starting with '$' [MQTT-4.7.2-1] ([MQTT-4.7.2-1@3.1.1]); a
// filter naming the '$' level does.
func TestDollarTopics(t *testing.T) {
	t.Parallel()
	srv := start(t)
	for _, v := range []byte{4, 5} {
		wild := mqtttest.Dial(t, srv.TCPAddr, v)
		wild.MustConnect(mqtttest.Connect{ClientID: "dollar-wild" + string('0'+v), Clean: true, Keepalive: 60})
		wild.Subscribe(1, mqtttest.Sub{Filter: "#"}, mqtttest.Sub{Filter: "+/x"})
		named := mqtttest.Dial(t, srv.TCPAddr, v)
		named.MustConnect(mqtttest.Connect{ClientID: "dollar-named" + string('0'+v), Clean: true, Keepalive: 60})
		named.Subscribe(1, mqtttest.Sub{Filter: "$app/x"})

		pub := mqtttest.Dial(t, srv.TCPAddr, v)
		pub.MustConnect(mqtttest.Connect{ClientID: "dollar-pub" + string('0'+v), Clean: true, Keepalive: 60})
		pub.Send(mqtttest.Publish{Version: v, Topic: "$app/x", Payload: []byte("d")}.Encode())
		if m := named.ExpectPublish(); m.Topic != "$app/x" {
			t.Fatalf("v%d: $app/x subscriber got %q", v, m.Topic)
		}
		// The wildcard subscriber gets the next, ordinary message first:
		// the '$' message was not delivered to it.
		pub.Send(mqtttest.Publish{Version: v, Topic: "plain/x", Payload: []byte("p")}.Encode())
		if m := wild.ExpectPublish(); m.Topic != "plain/x" {
			t.Fatalf("v%d [MQTT-4.7.2-1]: '#' subscriber got %q first", v, m.Topic)
		}
	}
}

// TestRefusalOverWebSocket: the validating layer guards WebSocket
// connections too.
func TestRefusalOverWebSocket(t *testing.T) {
	t.Parallel()
	srv := start(t)
	d := websocket.Dialer{Subprotocols: []string{"mqtt"}, HandshakeTimeout: mqtttest.Timeout}
	ws, resp, err := d.Dial(srv.WSURL, http.Header{})
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	conn := wsconn.New(ws)
	t.Cleanup(func() { _ = conn.Close() })
	c := mqtttest.Wrap(t, conn, 5)
	c.MustConnect(mqtttest.Connect{ClientID: "ws-bad", Clean: true, Keepalive: 60})
	c.Send(pub5(mqtttest.Publish{Topic: badUTF8}))
	if got := c.ExpectRefusal(); got != disc(0x81) {
		t.Fatalf("[MQTT-1.5.4-1] over WebSocket: got %v, want DISCONNECT 0x81", got)
	}
}

// TestRefusalPublishesWill: a connection closed for a malformed packet is
// not a normal disconnection, so its Will is published [MQTT-3.1.2-8]
// ([MQTT-3.1.2-8@3.1.1]).
func TestRefusalPublishesWill(t *testing.T) {
	t.Parallel()
	srv := start(t)
	for _, v := range []byte{4, 5} {
		watcher := mqtttest.Dial(t, srv.TCPAddr, v)
		watcher.MustConnect(mqtttest.Connect{ClientID: "will-watch" + string('0'+v), Clean: true, Keepalive: 60})
		watcher.Subscribe(1, mqtttest.Sub{Filter: "will/refused"})

		c := mqtttest.Dial(t, srv.TCPAddr, v)
		c.MustConnect(mqtttest.Connect{ClientID: "will-bad" + string('0'+v), Clean: true, Keepalive: 60,
			Will: &mqtttest.Will{Topic: "will/refused", Payload: []byte("gone")}})
		c.Send(mqtttest.Publish{Version: v, Topic: "a/#"}.Encode())
		c.ExpectRefusal()
		_ = watcher.C.SetReadDeadline(time.Now().Add(mqtttest.Timeout))
		if m := watcher.ExpectPublish(); m.Topic != "will/refused" || string(m.Payload) != "gone" {
			t.Fatalf("v%d: got %q on %q, want the Will", v, m.Payload, m.Topic)
		}
	}
}

// TestNoNormalisation: topic matching compares the bytes as sent: no case
// folding, no Unicode normalisation ([MQTT-4.7.3-4], [MQTT-4.7.3-4@3.1.1]).
func TestNoNormalisation(t *testing.T) {
	t.Parallel()
	srv := start(t)
	for _, v := range []byte{4, 5} {
		c := mqtttest.Dial(t, srv.TCPAddr, v)
		c.MustConnect(mqtttest.Connect{ClientID: "norm" + string('0'+v), Clean: true, Keepalive: 60})
		c.Subscribe(1, mqtttest.Sub{Filter: "norm/caf\u00e9"}, mqtttest.Sub{Filter: "norm/Case"})
		for _, topic := range []string{"norm/cafe\u0301", "norm/case", "norm/CASE", "norm/caf\u00e9"} {
			c.Send(mqtttest.Publish{Version: v, Topic: topic, Payload: []byte(topic)}.Encode())
		}
		// Only the byte-identical topic is delivered, and it is the first
		// and only message to arrive.
		if m := c.ExpectPublish(); m.Topic != "norm/caf\u00e9" {
			t.Fatalf("v%d: delivered %q, want only norm/caf\u00e9", v, m.Topic)
		}
		c.Ping()
	}
}
