package broker_test

import (
	"encoding/binary"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/courier-mqtt/courier/broker"
	"github.com/courier-mqtt/courier/broker/brokertest"
	"github.com/mochi-mqtt/server/v2/packets"
)

// A subscriber that announces Receive Maximum 2 must still receive every
// QoS 1 message as it acknowledges them; stock mochi parks everything beyond
// the first two until the subscriber reconnects. (Order is not asserted: see
// the known limit on coreHook.OnQosComplete.)
func TestSmallReceiveMaximumDoesNotStallDelivery(t *testing.T) {
	for _, store := range []bool{false, true} {
		t.Run(fmt.Sprintf("store=%v", store), func(t *testing.T) { receiveMaximumDelivery(t, store) })
	}
}

func receiveMaximumDelivery(t *testing.T, store bool) {
	var opts []brokertest.Option
	if !store {
		opts = append(opts, brokertest.WithoutStore())
	}
	srv := brokertest.Start(t, opts...)
	sub := dialRaw(t, "tcp", srv.TCPAddr)
	// v5 CONNECT, clean start, properties: Receive Maximum (0x21) = 2.
	body := append(str("MQTT"), 5, 0x02, 0, 30, 3, 0x21, 0, 2)
	sub.send(frame(0x10, append(body, str("slow-reader")...)))
	if p, err := sub.read(5 * time.Second); err != nil || p.kind() != 2 || p.body[1] != 0 {
		t.Fatalf("CONNACK: %#x %x %v", p.header, p.body, err)
	}
	// SUBSCRIBE rm/# at QoS 1 (v5: properties length 0, options byte 1).
	sub.send(frame(0x82, append(append([]byte{0, 1, 0}, str("rm/#")...), 1)))
	if p, err := sub.read(5 * time.Second); err != nil || p.kind() != 9 {
		t.Fatalf("SUBACK: %#x %v", p.header, err)
	}

	pub := dialRaw(t, "tcp", srv.TCPAddr)
	pub.connect(4, "fast-writer", 30)
	const n = 20
	for i := range n {
		payload := fmt.Sprintf("m%02d", i)
		pub.send(frame(0x32, append(append(str("rm/x"), 0, byte(i+1)), payload...)))
	}

	got := map[string]bool{}
	for i := range n {
		p, err := sub.read(5 * time.Second)
		if err != nil {
			t.Fatalf("received %d of %d messages: %v", i, n, err)
		}
		if p.kind() != 3 {
			t.Fatalf("want PUBLISH, got %#x", p.header)
		}
		topicLen := int(binary.BigEndian.Uint16(p.body))
		id := p.body[2+topicLen : 4+topicLen]
		propsLen := int(p.body[4+topicLen])
		payload := string(p.body[5+topicLen+propsLen:])
		if got[payload] {
			t.Fatalf("message %q delivered twice", payload)
		}
		got[payload] = true
		sub.send(frame(0x40, id)) // PUBACK
	}
	for i := range n {
		if want := fmt.Sprintf("m%02d", i); !got[want] {
			t.Fatalf("message %q never delivered", want)
		}
	}
}

func TestParkedOrderFollowsPacketIDsAcrossTheWrap(t *testing.T) {
	mk := func(id uint16) packets.Packet {
		return packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, PacketID: id, Expiry: -1}
	}
	cases := []struct {
		name string
		ids  []uint16
		want []uint16
	}{
		{"no wrap", []uint16{7, 5, 6}, []uint16{5, 6, 7}},
		{"across the wrap", []uint16{2, 65534, 1, 65535}, []uint16{65534, 65535, 1, 2}},
		{"single", []uint16{42}, []uint16{42}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var in []packets.Packet
			for _, id := range tc.ids {
				in = append(in, mk(id))
			}
			in = append(in, packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, PacketID: 3}) // sent, not parked
			if got := broker.ParkedInOrder(in); !slices.Equal(got, tc.want) {
				t.Fatalf("order = %v, want %v", got, tc.want)
			}
		})
	}
}
