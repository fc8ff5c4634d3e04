package conformance_test

import (
	"fmt"
	"testing"

	"github.com/courier-mqtt/courier/broker/brokertest"
	"github.com/courier-mqtt/courier/internal/mqtttest"
)

// refusal is one row of a table of packets the broker must refuse: what a
// client sends and how the broker must answer before it closes.
type refusal struct {
	name    string
	rule    string // the rule the row proves, e.g. [MQTT-3.1.2-3] or [MQTT-3.1.2-3@3.1.1]
	version byte   // 3, 4 or 5
	connect bool   // send a valid CONNECT (and require CONNACK 0) first
	send    []byte
	want    mqtttest.Refusal
}

var (
	nothing = mqtttest.Nothing
	connack = mqtttest.ConnackRefusal
	disc    = mqtttest.DisconnectRefusal
)

// runRefusals runs the rows in parallel against srv, each on its own
// connection and client id, and then proves with a PINGREQ that a client
// connected before them all is still served: a refusal closes only the
// offending connection.
func runRefusals(t *testing.T, srv *brokertest.Server, rows []refusal) {
	t.Helper()
	alive := mqtttest.Dial(t, srv.TCPAddr, 4)
	alive.MustConnect(mqtttest.Connect{ClientID: "survivor", Clean: true, Keepalive: 60})
	t.Run("rows", func(t *testing.T) {
		for i, tc := range rows {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				c := mqtttest.Dial(t, srv.TCPAddr, tc.version)
				if tc.connect {
					c.MustConnect(mqtttest.Connect{ClientID: fmt.Sprintf("row-%d", i), Clean: true, Keepalive: 60})
				}
				_ = c.TrySend(tc.send)
				if got := c.ExpectRefusal(); got != tc.want {
					t.Fatalf("%s: got %v, want %v", tc.rule, got, tc.want)
				}
			})
		}
	})
	alive.Ping()
}

// pub5 and pub4 encode a PUBLISH for MQTT 5 and 3.1.1.
func pub5(p mqtttest.Publish) []byte { p.Version = 5; return p.Encode() }
func pub4(p mqtttest.Publish) []byte { p.Version = 4; return p.Encode() }

func start(t testing.TB, opts ...brokertest.Option) *brokertest.Server {
	t.Helper()
	return brokertest.Start(t, append([]brokertest.Option{brokertest.WithoutStore()}, opts...)...)
}
