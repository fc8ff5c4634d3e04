package conformance_test

import (
	"testing"

	"github.com/courier-mqtt/courier/broker"
	"github.com/courier-mqtt/courier/broker/brokertest"
	"github.com/courier-mqtt/courier/internal/mqtttest"
)

// TestPublishIn5 covers MQTT 5 section 3.3 for PUBLISH packets a client
// sends.
func TestPublishIn5(t *testing.T) {
	t.Parallel()
	srv := start(t, brokertest.WithConfig(func(c *broker.Config) { c.Limits.MaxPacketSize = 1024 }))
	alias := func(a uint16) [][]byte { return [][]byte{mqtttest.Short(mqtttest.PropTopicAlias, a)} }
	rows := []refusal{
		{name: "'#' in topic name", rule: "[MQTT-3.3.2-2]", version: 5, connect: true,
			send: pub5(mqtttest.Publish{Topic: "a/#"}), want: disc(0x82)},
		{name: "'+' in topic name", rule: "[MQTT-3.3.2-2]", version: 5, connect: true,
			send: pub5(mqtttest.Publish{Topic: "a/+/b", QoS: 1, PacketID: 1}), want: disc(0x82)},
		{name: "empty topic without alias", rule: "3.3.2.1", version: 5, connect: true,
			send: pub5(mqtttest.Publish{Topic: ""}), want: disc(0x82)},
		{name: "topic alias 0", rule: "[MQTT-3.3.2-8]", version: 5, connect: true,
			send: pub5(mqtttest.Publish{Topic: "a", Props: alias(0)}), want: disc(0x94)},
		{name: "topic alias above the maximum", rule: "[MQTT-3.3.2-9] [MQTT-3.2.2-17]", version: 5, connect: true,
			send: pub5(mqtttest.Publish{Topic: "a", Props: alias(65)}), want: disc(0x94)},
		{name: "unknown topic alias", rule: "3.3.2.3.4", version: 5, connect: true,
			send: pub5(mqtttest.Publish{Topic: "", Props: alias(3)}), want: disc(0x82)},
		{name: "subscription identifier from a client", rule: "[MQTT-3.3.4-6]", version: 5, connect: true,
			send: pub5(mqtttest.Publish{Topic: "a", Props: [][]byte{mqtttest.VarInt(mqtttest.PropSubscriptionID, 1)}}), want: disc(0x82)},
		{name: "wildcard in response topic", rule: "[MQTT-3.3.2-14]", version: 5, connect: true,
			send: pub5(mqtttest.Publish{Topic: "a", Props: [][]byte{mqtttest.String(mqtttest.PropResponseTopic, "r/#")}}), want: disc(0x82)},
		{name: "message expiry twice", rule: "3.3.2.3.3", version: 5, connect: true,
			send: pub5(mqtttest.Publish{Topic: "a", Props: [][]byte{mqtttest.Int(mqtttest.PropMessageExpiry, 1), mqtttest.Int(mqtttest.PropMessageExpiry, 2)}}), want: disc(0x82)},
		{name: "session expiry in PUBLISH properties", rule: "2.2.2.2", version: 5, connect: true,
			send: pub5(mqtttest.Publish{Topic: "a", Props: [][]byte{mqtttest.Int(mqtttest.PropSessionExpiry, 1)}}), want: disc(0x81)},
		{name: "property length past the packet", rule: "2.2.2.1", version: 5, connect: true,
			send: mqtttest.Frame(0x30, mqtttest.Str("a"), []byte{5, 0x01}), want: disc(0x81)},
		{name: "topic length past the packet", rule: "3.3.2.1", version: 5, connect: true,
			send: mqtttest.Frame(0x30, mqtttest.U16(10), []byte("ab")), want: disc(0x81)},
		{name: "packet over the broker's maximum packet size", rule: "[MQTT-3.2.2-15]", version: 5, connect: true,
			send: pub5(mqtttest.Publish{Topic: "big", Payload: make([]byte, 2000)}), want: disc(0x95)},
	}
	runRefusals(t, srv, rows)
}

// TestPublishIn311 covers MQTT 3.1.1 section 3.3 for PUBLISH packets a
// client sends: violations close the connection.
func TestPublishIn311(t *testing.T) {
	t.Parallel()
	runRefusals(t, start(t), []refusal{
		{name: "'#' in topic name", rule: "[MQTT-3.3.2-2@3.1.1]", version: 4, connect: true,
			send: pub4(mqtttest.Publish{Topic: "a/#"}), want: nothing},
		{name: "'+' in topic name", rule: "[MQTT-4.7.1-1@3.1.1]", version: 4, connect: true,
			send: pub4(mqtttest.Publish{Topic: "+", QoS: 2, PacketID: 3}), want: nothing},
		{name: "empty topic name", rule: "[MQTT-4.7.3-1@3.1.1]", version: 4, connect: true,
			send: pub4(mqtttest.Publish{Topic: ""}), want: nothing},
	})
}

// TestTopicAliases: the broker announces a Topic Alias Maximum and accepts
// every alias from 1 to it [MQTT-3.3.2-12]; a PUBLISH with only an alias
// goes to the topic last set for it.
func TestTopicAliases(t *testing.T) {
	t.Parallel()
	srv := start(t)
	sub := mqtttest.Dial(t, srv.TCPAddr, 5)
	sub.MustConnect(mqtttest.Connect{ClientID: "alias-sub", Clean: true, Keepalive: 60})
	sub.Subscribe(1, mqtttest.Sub{Filter: "alias/#"})

	pub := mqtttest.Dial(t, srv.TCPAddr, 5)
	ca := pub.MustConnect(mqtttest.Connect{ClientID: "alias-pub", Clean: true, Keepalive: 60})
	p, ok := ca.Props.Get(mqtttest.PropTopicAliasMaximum)
	if !ok || p.Value == 0 {
		t.Fatalf("CONNACK announces no Topic Alias Maximum: %+v", ca.Props)
	}
	max := uint16(p.Value)
	for _, a := range []uint16{1, max} {
		topic := "alias/" + string(rune('a'+a%26))
		pub.Send(pub5(mqtttest.Publish{Topic: topic, Props: [][]byte{mqtttest.Short(mqtttest.PropTopicAlias, a)}, Payload: []byte("set")}))
		if m := sub.ExpectPublish(); m.Topic != topic {
			t.Fatalf("alias %d set: delivered on %q, want %q", a, m.Topic, topic)
		}
		pub.Send(pub5(mqtttest.Publish{Props: [][]byte{mqtttest.Short(mqtttest.PropTopicAlias, a)}, Payload: []byte("use")}))
		if m := sub.ExpectPublish(); m.Topic != topic || string(m.Payload) != "use" {
			t.Fatalf("[MQTT-3.3.2-12] alias %d used: delivered %q on %q, want %q", a, m.Payload, m.Topic, topic)
		}
	}
	pub.Ping()
}

// TestReceiveMaximumIn: a client that has more unacknowledged QoS 2
// PUBLISHes outstanding than the broker's Receive Maximum is disconnected
// with 0x93 [MQTT-3.3.4-7]; one that stays within it is served, a PUBREL
// frees its slot, and QoS 0 PUBLISHes do not count.
func TestReceiveMaximumIn(t *testing.T) {
	t.Parallel()
	srv := start(t, brokertest.WithConfig(func(c *broker.Config) { c.Limits.ReceiveMaximum = 2 }))
	c := mqtttest.Dial(t, srv.TCPAddr, 5)
	ca := c.MustConnect(mqtttest.Connect{ClientID: "rm-in", Clean: true, Keepalive: 60})
	if p, ok := ca.Props.Get(mqtttest.PropReceiveMaximum); !ok || p.Value != 2 {
		t.Fatalf("CONNACK Receive Maximum %+v, want 2", ca.Props)
	}
	for id := uint16(1); id <= 2; id++ {
		c.Send(pub5(mqtttest.Publish{Topic: "rm", QoS: 2, PacketID: id}))
		c.ExpectAck(mqtttest.PUBREC)
	}
	c.Send(mqtttest.Ack(5, mqtttest.PUBREL, 1, 0))
	c.ExpectAck(mqtttest.PUBCOMP)
	c.Send(pub5(mqtttest.Publish{Topic: "rm", QoS: 2, PacketID: 3}))
	c.ExpectAck(mqtttest.PUBREC)
	// A resend of an open flow is not a new message.
	c.Send(pub5(mqtttest.Publish{Topic: "rm", QoS: 2, PacketID: 3, Dup: true}))
	c.ExpectAck(mqtttest.PUBREC)
	// With the quota used up, QoS 0 PUBLISHes are still accepted: Receive
	// Maximum counts only QoS 1 and 2.
	c.Send(pub5(mqtttest.Publish{Topic: "rm", Payload: []byte("q0")}))
	c.Ping()
	c.Send(pub5(mqtttest.Publish{Topic: "rm", QoS: 2, PacketID: 4}))
	if got := c.ExpectRefusal(); got != disc(0x93) {
		t.Fatalf("third outstanding QoS 2 PUBLISH: got %v, want DISCONNECT 0x93", got)
	}
}
