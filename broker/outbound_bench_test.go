package broker

import (
	"bytes"
	"testing"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// BenchmarkOutboundHookPerMessage measures what the outbound hook adds to
// one QoS 1 delivery: OnPublish on the publisher, OnQosPublish,
// OnPacketEncode and OnPacketSent on the subscriber (with a Maximum Packet
// Size, so the size check runs). BenchmarkMochiPublishEncode is mochi's
// own encoding of the same PUBLISH, one small part of its per-message
// work, for scale.
func BenchmarkOutboundHookPerMessage(b *testing.B) {
	srv := mqtt.New(&mqtt.Options{InlineClient: false})
	h := newOutboundHook(&coreHook{b: &Broker{cfg: DefaultConfig()}})
	pub := srv.NewClient(nil, "l", "pub", false)
	sub := srv.NewClient(nil, "l", "sub", false)
	sub.Properties.ProtocolVersion = 5
	pk := benchPublish()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		p, _ := h.OnPublish(pub, pk)
		p.PacketID = uint16(i%60000 + 1)
		h.OnQosPublish(sub, p, 0, 0)
		p.Mods.MaxSize = 1 << 20
		p.ProtocolVersion = 5
		p = h.OnPacketEncode(sub, p)
		h.OnPacketSent(sub, p, nil)
	}
}

func BenchmarkMochiPublishEncode(b *testing.B) {
	pk := benchPublish()
	pk.PacketID = 1
	pk.ProtocolVersion = 5
	b.ReportAllocs()
	for range b.N {
		var buf bytes.Buffer
		if err := pk.PublishEncode(&buf); err != nil {
			b.Fatal(err)
		}
	}
}

func benchPublish() packets.Packet {
	return packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1},
		TopicName:   "bench/topic/1",
		Payload:     make([]byte, 64),
		Origin:      "pub",
		Properties:  packets.Properties{User: []packets.UserProperty{{Key: "k", Val: "v"}}},
	}
}
