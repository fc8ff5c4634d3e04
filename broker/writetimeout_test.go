package broker_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/courier-mqtt/courier/broker"
	"github.com/courier-mqtt/courier/broker/brokertest"
	"github.com/courier-mqtt/courier/internal/mqtttest"
)

// A subscriber that keeps its connection alive but stops reading must not
// hold up publishers: mochi writes to a client under the client's lock,
// which a publisher routing a QoS 1 message to it also takes, so without a
// bound on the write the publisher's next PUBACK never comes. The broker
// closes the stalled subscriber after Limits.WriteTimeout.
func TestSubscriberThatStopsReadingDoesNotStallPublishers(t *testing.T) {
	for _, v := range []byte{4, 5} {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			srv := brokertest.Start(t,
				brokertest.WithConfig(func(c *broker.Config) { c.Limits.WriteTimeout = 300 * time.Millisecond }))
			obs := srv.Broker.Observe(16, broker.EventClientDisconnected)
			sub := mqtttest.Dial(t, srv.TCPAddr, v)
			sub.MustConnect(mqtttest.Connect{Version: v, ClientID: "stalled", Clean: true, Keepalive: 60})
			sub.Subscribe(1, mqtttest.Sub{Filter: "big/t", Options: 1})

			pub := mqtttest.Dial(t, srv.TCPAddr, 5)
			pub.MustConnect(mqtttest.Connect{ClientID: "publisher", Clean: true, Keepalive: 60})
			payload := make([]byte, 64<<10)
			// 32 MiB in all: far more than the loopback socket buffers hold.
			for i := range 512 {
				pub.Publish(mqtttest.Publish{Topic: "big/t", QoS: 1, PacketID: uint16(i + 1), Payload: payload})
				if a := pub.ExpectAck(mqtttest.PUBACK); a.Reason >= 0x80 {
					t.Fatalf("PUBACK %d: reason %#x", i+1, a.Reason)
				}
			}
			if ev := next(t, obs, broker.EventClientDisconnected, "stalled"); !strings.HasPrefix(ev.Reason, "write_stalled") {
				t.Fatalf("stalled subscriber disconnected with reason %q", ev.Reason)
			}
		})
	}
}
