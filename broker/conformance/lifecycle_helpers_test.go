package conformance_test

// Helpers of the connection and session lifecycle tests (connack, keepalive,
// will, session, disconnect, auth, acl, mqisdp). Names start with lc so they
// cannot collide with other files of the package.

import (
	"testing"
	"time"

	"github.com/courier-mqtt/courier/broker"
	"github.com/courier-mqtt/courier/broker/brokertest"
	mt "github.com/courier-mqtt/courier/internal/mqtttest"
)

// lcVersions names the protocol versions for subtest names.
var lcVersions = map[byte]string{3: "3.1", 4: "3.1.1", 5: "5.0"}

// lcStart starts a broker without a store.
func lcStart(t *testing.T, opts ...brokertest.Option) *brokertest.Server {
	t.Helper()
	return brokertest.Start(t, append([]brokertest.Option{brokertest.WithoutStore()}, opts...)...)
}

// lcLimits starts a broker without a store with changed limits.
func lcLimits(t *testing.T, f func(*broker.Limits)) *brokertest.Server {
	t.Helper()
	return lcStart(t, brokertest.WithConfig(func(c *broker.Config) { f(&c.Limits) }))
}

// lcDial connects a client of the version with a clean session and
// keepalive 30, requiring success.
func lcDial(t *testing.T, srv *brokertest.Server, version byte, id string) *mt.Conn {
	t.Helper()
	c := mt.Dial(t, srv.TCPAddr, version)
	c.MustConnect(mt.Connect{ClientID: id, Clean: true, Keepalive: 30})
	return c
}

// lcWatch connects an MQTT 5 client subscribed to filter at QoS 2.
func lcWatch(t *testing.T, srv *brokertest.Server, filter string) *mt.Conn {
	t.Helper()
	w := lcDial(t, srv, 5, "watch-"+filter)
	if codes := w.Subscribe(1, mt.Sub{Filter: filter, Options: 2}); len(codes) != 1 || codes[0] != 2 {
		t.Fatalf("watcher SUBACK %x", codes)
	}
	return w
}

// lcMarker publishes a QoS 0 marker on topic from a fresh client and
// requires it to be the next thing c receives: a check that nothing was
// published on topic before it (as far as the broker's ordering goes).
func lcMarker(t *testing.T, srv *brokertest.Server, c *mt.Conn, topic string) {
	t.Helper()
	p := lcDial(t, srv, 5, "marker")
	p.Send(mt.Publish{Topic: topic, Payload: []byte("marker")}.Encode())
	m := c.ExpectPublish()
	if string(m.Payload) != "marker" {
		t.Fatalf("want the marker first, got %q on %s", m.Payload, m.Topic)
	}
	p.Send(mt.Disconnect(5, 0))
	p.ExpectClosed()
}

// lcExpectMessage reads a PUBLISH on c and checks topic and payload.
func lcExpectMessage(t *testing.T, c *mt.Conn, topic, payload string) mt.Message {
	t.Helper()
	m := c.ExpectPublish()
	if m.Topic != topic || string(m.Payload) != payload {
		t.Fatalf("want %q on %s, got %q on %s", payload, topic, m.Payload, m.Topic)
	}
	switch m.QoS {
	case 1:
		c.Send(mt.Ack(c.Version, mt.PUBACK, m.PacketID, 0))
	case 2:
		c.Send(mt.Ack(c.Version, mt.PUBREC, m.PacketID, 0))
		c.ExpectAck(mt.PUBREL)
		c.Send(mt.Ack(c.Version, mt.PUBCOMP, m.PacketID, 0))
	}
	return m
}

// lcSessionExpired waits for the broker to report the end of id's session.
func lcSessionExpired(t *testing.T, obs *broker.Observer, id string) {
	t.Helper()
	deadline := time.After(mt.Timeout)
	for {
		select {
		case ev := <-obs.C:
			if ev.ClientID == id {
				return
			}
		case <-deadline:
			t.Fatalf("session %q did not expire", id)
		}
	}
}

// lcProp returns an MQTT 5 property's numeric value, failing if absent.
func lcProp(t *testing.T, ps mt.Properties, id byte) uint32 {
	t.Helper()
	p, ok := ps.Get(id)
	if !ok {
		t.Fatalf("property %#x missing from %+v", id, ps)
	}
	return p.Value
}
