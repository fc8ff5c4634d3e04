package broker_test

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/courier-mqtt/courier/broker"
	"github.com/courier-mqtt/courier/broker/brokertest"
	"github.com/courier-mqtt/courier/internal/mqtttest"
)

// A subscriber whose write queue fills up (it reads slower than the
// publisher writes) must not lose QoS 1 messages the broker has
// acknowledged: mochi drops a QoS 1/2 message it cannot queue. The broker
// makes the routing goroutine wait for the queue instead (backpressure.go).
func TestSubscriberWithFullWriteQueueLosesNoQoS1Message(t *testing.T) {
	for _, v := range []byte{4, 5} {
		for _, persistent := range []bool{false, true} {
			t.Run(fmt.Sprintf("v%d/persistent=%v", v, persistent), func(t *testing.T) {
				srv := brokertest.Start(t, brokertest.WithConfig(func(c *broker.Config) {
					c.Limits.MaxPendingWrites = 4
				}))
				sub := mqtttest.Dial(t, srv.TCPAddr, v)
				conn := mqtttest.Connect{Version: v, ClientID: "slow", Clean: !persistent, Keepalive: 60}
				if persistent && v == 5 {
					conn.Props = [][]byte{mqtttest.Int(mqtttest.PropSessionExpiry, 600)}
				}
				sub.MustConnect(conn)
				sub.Subscribe(1, mqtttest.Sub{Filter: "slow/t", Options: 1})

				// The publisher sends everything before reading a single
				// PUBACK, faster than one subscriber's writer can keep up.
				pub := mqtttest.Dial(t, srv.TCPAddr, 5)
				pub.MustConnect(mqtttest.Connect{ClientID: "fast", Clean: true, Keepalive: 60})
				const n = 2000
				var frames [][]byte
				for i := range n {
					payload := binary.BigEndian.AppendUint32(make([]byte, 0, 64), uint32(i))
					frames = append(frames, mqtttest.Publish{Topic: "slow/t", QoS: 1, PacketID: uint16(i + 1), Payload: payload[:64]}.Encode())
				}
				go func() { _ = pub.TrySend(frames...) }()

				got := make([]bool, n)
				for i := range n {
					p, err := sub.Read(10 * time.Second)
					if err != nil {
						missing := 0
						for _, g := range got {
							if !g {
								missing++
							}
						}
						t.Fatalf("received %d of %d messages (%d lost): %v", i, n, missing, err)
					}
					m, err := p.Publish(v)
					if err != nil {
						t.Fatalf("message %d: %v (%s)", i, err, p)
					}
					got[binary.BigEndian.Uint32(m.Payload)] = true
					sub.SendAck(mqtttest.PUBACK, m.PacketID)
				}
				for i := range n {
					if a := pub.ExpectAck(mqtttest.PUBACK); a.Reason != 0 {
						t.Fatalf("PUBACK %d: reason %#x", i+1, a.Reason)
					}
				}
			})
		}
	}
}
