package conformance_test

import (
	"testing"

	"github.com/courier-mqtt/courier/broker/brokertest"
	mt "github.com/courier-mqtt/courier/internal/mqtttest"
)

// TestDisconnect covers 3.14 DISCONNECT sent by the server and the Will of a
// connection the server closes for a protocol error (5.0, 3.1.1).
func TestDisconnect(t *testing.T) {
	lcRun(t, []lcCase{
		{
			name: "raising Session Expiry from 0 in DISCONNECT is a protocol error",
			rule: "[MQTT-3.14.2-1] [MQTT-3.14.2-2] [MQTT-3.14.4-1] [MQTT-3.14.4-2] [MQTT-4.13.1-1] [MQTT-4.13.2-1] [MQTT-3.1.2-8]",
			run: func(t *testing.T, srv *brokertest.Server) {
				w := lcWatch(t, srv, "will/#")
				c := lcWillConnect(t, srv, 5, "raise", true, -1, mt.Will{})
				c.Send(mt.Disconnect(5, 0x00, mt.Int(mt.PropSessionExpiry, 60)))
				got := c.Closed(mt.Timeout)
				if len(got) != 1 {
					t.Fatalf("got %v, want one DISCONNECT, then the close", got)
				}
				r, props, err := got[0].Disconnect()
				if err != nil || r != 0x82 || props.Has(mt.PropSessionExpiry) {
					t.Fatalf("DISCONNECT %#x %+v %v, want 0x82 without Session Expiry", r, props, err)
				}
				// Not a valid DISCONNECT: the Will is not discarded.
				lcExpectMessage(t, w, "will/raise", "gone raise")
			},
		},
		{
			name: "a second CONNECT closes the connection, which publishes its Will",
			rule: "[MQTT-3.1.0-2] [MQTT-3.2.0-2] [MQTT-3.1.2-8]",
			run: func(t *testing.T, srv *brokertest.Server) {
				w := lcWatch(t, srv, "will/#")
				c := lcWillConnect(t, srv, 5, "again", true, -1, mt.Will{})
				c.Send(mt.Connect{Version: 5, ClientID: "again", Clean: true, Keepalive: 30}.Encode())
				c.ExpectClosed()
				lcExpectMessage(t, w, "will/again", "gone again")
			},
		},
		{
			name: "a second CONNECT closes the connection, which publishes its Will/3.1.1",
			rule: "[MQTT-3.1.0-2@3.1.1] [MQTT-3.1.2-8@3.1.1]",
			run: func(t *testing.T, srv *brokertest.Server) {
				w := lcWatch(t, srv, "will/#")
				c := lcWillConnect(t, srv, 4, "again", true, -1, mt.Will{})
				c.Send(mt.Connect{Version: 4, ClientID: "again", Clean: true, Keepalive: 30}.Encode())
				if r := c.ExpectClosed(); r != -1 {
					t.Fatalf("DISCONNECT %#x sent to a 3.1.1 client", r)
				}
				lcExpectMessage(t, w, "will/again", "gone again")
			},
		},
	})
}
