package conformance_test

import (
	"testing"
	"time"

	"github.com/courier-mqtt/courier/broker"
	"github.com/courier-mqtt/courier/broker/brokertest"
	"github.com/courier-mqtt/courier/internal/mqtttest"
)

// Helpers for the outbound tests (what the broker sends; publish and
// subscribe flows). Names start with "out" to stay apart from the other
// conformance files' helpers.

// outBroker starts a broker without the store, or with it when store is
// true, applying cfg to its configuration when not nil.
func outBroker(t *testing.T, store bool, cfg func(*broker.Config)) *brokertest.Server {
	t.Helper()
	var opts []brokertest.Option
	if !store {
		opts = append(opts, brokertest.WithoutStore())
	}
	if cfg != nil {
		opts = append(opts, brokertest.WithConfig(cfg))
	}
	return brokertest.Start(t, opts...)
}

// outClient connects a client of the protocol version with a clean session
// (or clean start) and extra MQTT 5 CONNECT properties.
func outClient(t *testing.T, addr string, version byte, id string, props ...[]byte) *mqtttest.Conn {
	t.Helper()
	c := mqtttest.Dial(t, addr, version)
	c.MustConnect(mqtttest.Connect{ClientID: id, Clean: true, Keepalive: 30, Props: props})
	return c
}

// outSession connects a client that keeps its session: clean session 0 in
// 3.x, clean start 0 with a five-minute session expiry in 5. It returns the
// connection and whether the broker reported a session present.
func outSession(t *testing.T, addr string, version byte, id string, props ...[]byte) (*mqtttest.Conn, bool) {
	t.Helper()
	c := mqtttest.Dial(t, addr, version)
	if version == 5 {
		props = append([][]byte{mqtttest.Int(mqtttest.PropSessionExpiry, 300)}, props...)
	}
	ca := c.MustConnect(mqtttest.Connect{ClientID: id, Keepalive: 30, Props: props})
	return c, ca.SessionPresent
}

// outLeave ends a connection with a DISCONNECT and waits for the broker to
// close it.
func outLeave(c *mqtttest.Conn) {
	c.T.Helper()
	c.Send(mqtttest.Disconnect(c.Version, 0))
	c.Closed(mqtttest.Timeout)
}

// outCut closes a connection without DISCONNECT, as a network failure would.
func outCut(c *mqtttest.Conn) { _ = c.C.Close() }

// outGone ends the connection of client id (with a DISCONNECT, or cut when
// cut is true) and waits until the broker has finished with it, so that
// what is published next is queued for the session and not attempted on
// the closing connection (an attempt counts for DUP).
func outGone(t *testing.T, srv *brokertest.Server, c *mqtttest.Conn, id string, cut bool) {
	t.Helper()
	obs := srv.Broker.Observe(64, broker.EventClientDisconnected)
	defer obs.Close()
	if cut {
		outCut(c)
	} else {
		outLeave(c)
	}
	deadline := time.After(mqtttest.Timeout)
	for {
		select {
		case ev := <-obs.C:
			if ev.ClientID == id {
				return
			}
		case <-deadline:
			t.Fatalf("broker did not report %s disconnected", id)
		}
	}
}

// outPublishAcked publishes at QoS 1 and waits for the PUBACK, and then for
// a PINGRESP: the broker has then routed the message to every subscriber
// (mochi acknowledges before it routes, on the same goroutine).
func outPublishAcked(c *mqtttest.Conn, p mqtttest.Publish) {
	c.T.Helper()
	if p.QoS == 0 {
		c.Publish(p)
		if got := c.Ping(); len(got) > 0 {
			c.T.Fatalf("publisher received %v", got)
		}
		return
	}
	c.Publish(p)
	want := mqtttest.PUBACK
	if p.QoS == 2 {
		want = mqtttest.PUBREC
	}
	a := c.ExpectAck(want)
	if a.PacketID != p.PacketID || a.Reason >= 0x80 {
		c.T.Fatalf("publish refused: %+v", a)
	}
	if p.QoS == 2 {
		c.SendAck(mqtttest.PUBREL, p.PacketID)
		c.ExpectAck(mqtttest.PUBCOMP)
	}
	if got := c.Ping(); len(got) > 0 {
		c.T.Fatalf("publisher received %v", got)
	}
}

// outVersions names the protocol versions for subtests.
var outVersions = []struct {
	name string
	v    byte
}{{"3.1.1", 4}, {"5", 5}}
