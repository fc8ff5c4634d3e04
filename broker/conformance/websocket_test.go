package conformance_test

import (
	"net/http"
	"testing"

	"github.com/courier-mqtt/courier/broker/brokertest"
	"github.com/courier-mqtt/courier/internal/mqtttest"
	"github.com/courier-mqtt/courier/internal/wsconn"
	"github.com/gorilla/websocket"
)

// Section 6: MQTT over WebSocket, the same for 3.1.1 and 5.0.

// dialWS opens a WebSocket to the broker offering subprotocol "mqtt" and
// returns the connection and the subprotocol the broker selected.
func dialWS(t *testing.T, srv *brokertest.Server, version byte) (*mqtttest.Conn, *wsconn.Conn, string) {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{"mqtt"}, HandshakeTimeout: mqtttest.Timeout}
	ws, resp, err := d.Dial(srv.WSURL, http.Header{})
	if err != nil {
		t.Fatalf("dial %s: %v", srv.WSURL, err)
	}
	_ = resp.Body.Close()
	wc := wsconn.New(ws)
	t.Cleanup(func() { _ = wc.Close() })
	return mqtttest.Wrap(t, wc, version), wc, resp.Header.Get("Sec-WebSocket-Protocol")
}

func TestWebSocket(t *testing.T) {
	srv := brokertest.Start(t, brokertest.WithoutStore())
	versions := []struct {
		name    string
		version byte
	}{{"5.0", 5}, {"3.1.1", 4}}
	for _, v := range versions {
		t.Run(v.name, func(t *testing.T) {
			// [MQTT-6.0.0-4] [MQTT-6.0.0-4@3.1.1]: the broker selects "mqtt".
			t.Run("selects subprotocol mqtt", func(t *testing.T) {
				_, _, proto := dialWS(t, srv, v.version)
				if proto != "mqtt" {
					t.Fatalf("selected subprotocol %q, want mqtt", proto)
				}
			})
			// [MQTT-6.0.0-2] [MQTT-6.0.0-2@3.1.1]: packets need not line
			// up with frames: a CONNECT split over three frames, then a
			// SUBSCRIBE and a PINGREQ together in one frame.
			t.Run("packets split and joined across frames", func(t *testing.T) {
				c, ws, _ := dialWS(t, srv, v.version)
				connect := mqtttest.Connect{Version: v.version, ClientID: "ws-frames-" + v.name, Clean: true, Keepalive: 30}.Encode()
				for _, part := range [][]byte{connect[:1], connect[1:5], connect[5:]} {
					if err := ws.WriteMessage(websocket.BinaryMessage, part); err != nil {
						t.Fatal(err)
					}
				}
				if ca, err := c.Expect(mqtttest.CONNACK).Connack(v.version); err != nil || ca.Reason != 0 {
					t.Fatalf("CONNACK %+v %v", ca, err)
				}
				joined := mqtttest.Cat(mqtttest.Subscribe(v.version, 1, nil, mqtttest.Sub{Filter: "ws/f", Options: 0}), mqtttest.Pingreq())
				if err := ws.WriteMessage(websocket.BinaryMessage, joined); err != nil {
					t.Fatal(err)
				}
				c.Expect(mqtttest.SUBACK)
				c.Expect(mqtttest.PINGRESP)
			})
			// [MQTT-6.0.0-1] [MQTT-6.0.0-1@3.1.1]: a text frame closes
			// the connection.
			t.Run("text frame closes the connection", func(t *testing.T) {
				c, ws, _ := dialWS(t, srv, v.version)
				c.MustConnect(mqtttest.Connect{ClientID: "ws-text-" + v.name, Clean: true, Keepalive: 30})
				if err := ws.WriteMessage(websocket.TextMessage, mqtttest.Pingreq()); err != nil {
					t.Fatal(err)
				}
				got := c.Closed(mqtttest.Timeout)
				for _, p := range got {
					if p.Type() == mqtttest.PINGRESP {
						t.Fatal("broker answered a PINGREQ sent in a text frame")
					}
				}
			})
		})
	}
}
