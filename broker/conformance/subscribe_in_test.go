package conformance_test

import (
	"bytes"
	"testing"

	"github.com/courier-mqtt/courier/internal/mqtttest"
)

func sub5(opts byte, filter string) []byte {
	return mqtttest.Subscribe(5, 1, nil, mqtttest.Sub{Filter: filter, Options: opts})
}

func sub4(opts byte, filter string) []byte {
	return mqtttest.Subscribe(4, 1, nil, mqtttest.Sub{Filter: filter, Options: opts})
}

// TestSubscribeIn5 covers MQTT 5 sections 3.8 SUBSCRIBE and 3.10
// UNSUBSCRIBE for what a client sends.
func TestSubscribeIn5(t *testing.T) {
	t.Parallel()
	rows := []refusal{
		{name: "SUBSCRIBE without topic filter", rule: "[MQTT-3.8.3-2]", version: 5, connect: true,
			send: mqtttest.Subscribe(5, 1, nil), want: disc(0x82)},
		{name: "reserved subscription option bits", rule: "[MQTT-3.8.3-5]", version: 5, connect: true,
			send: sub5(0x41, "a"), want: disc(0x81)},
		{name: "maximum QoS 3", rule: "3.8.3.1", version: 5, connect: true,
			send: sub5(0x03, "a"), want: disc(0x82)},
		{name: "retain handling 3", rule: "3.8.3.1", version: 5, connect: true,
			send: sub5(0x30, "a"), want: disc(0x82)},
		{name: "no local on a shared subscription", rule: "[MQTT-3.8.3-4]", version: 5, connect: true,
			send: sub5(0x05, "$share/g/a"), want: disc(0x82)},
		{name: "subscription options missing", rule: "3.8.3", version: 5, connect: true,
			send: mqtttest.Frame(0x82, mqtttest.U16(1), []byte{0}, mqtttest.Str("a/b")), want: disc(0x81)},
		{name: "subscription identifier 0", rule: "3.8.2.1.2", version: 5, connect: true,
			send: mqtttest.Subscribe(5, 1, [][]byte{mqtttest.VarInt(mqtttest.PropSubscriptionID, 0)}, mqtttest.Sub{Filter: "a"}), want: disc(0x82)},
		{name: "subscription identifier twice", rule: "3.8.2.1.2", version: 5, connect: true,
			send: mqtttest.Subscribe(5, 1, [][]byte{mqtttest.VarInt(mqtttest.PropSubscriptionID, 1), mqtttest.VarInt(mqtttest.PropSubscriptionID, 2)}, mqtttest.Sub{Filter: "a"}), want: disc(0x82)},
		{name: "empty share name", rule: "[MQTT-4.8.2-1]", version: 5, connect: true,
			send: sub5(1, "$share//a"), want: disc(0x82)},
		{name: "share name without filter", rule: "[MQTT-4.8.2-2]", version: 5, connect: true,
			send: sub5(1, "$share/g"), want: disc(0x82)},
		{name: "wildcard in share name", rule: "[MQTT-4.8.2-2]", version: 5, connect: true,
			send: sub5(1, "$share/g+/a"), want: disc(0x82)},
		{name: "shared subscription with empty filter", rule: "[MQTT-4.8.2-2]", version: 5, connect: true,
			send: sub5(1, "$share/g/"), want: disc(0x82)},
		{name: "UNSUBSCRIBE without topic filter", rule: "[MQTT-3.10.3-2]", version: 5, connect: true,
			send: mqtttest.Unsubscribe(5, 1, nil), want: disc(0x82)},
		{name: "UNSUBSCRIBE with a SUBSCRIBE property", rule: "2.2.2.2", version: 5, connect: true,
			send: mqtttest.Unsubscribe(5, 1, [][]byte{mqtttest.VarInt(mqtttest.PropSubscriptionID, 1)}, "a"), want: disc(0x81)},
	}
	for _, f := range invalidFilters {
		rows = append(rows, refusal{name: "SUBSCRIBE " + f.filter, rule: f.rule, version: 5, connect: true,
			send: sub5(1, f.filter), want: disc(0x82)})
		rows = append(rows, refusal{name: "UNSUBSCRIBE " + f.filter, rule: f.rule, version: 5, connect: true,
			send: mqtttest.Unsubscribe(5, 1, nil, f.filter), want: disc(0x82)})
	}
	runRefusals(t, start(t), rows)
}

// TestSubscribeIn311 covers MQTT 3.1.1 sections 3.8 and 3.10: violations
// close the connection.
func TestSubscribeIn311(t *testing.T) {
	t.Parallel()
	rows := []refusal{
		{name: "SUBSCRIBE without topic filter", rule: "[MQTT-3.8.3-3@3.1.1]", version: 4, connect: true,
			send: mqtttest.Subscribe(4, 1, nil), want: nothing},
		{name: "reserved bits in requested QoS", rule: "[MQTT-3.8.3-4@3.1.1]", version: 4, connect: true,
			send: sub4(0x04, "a"), want: nothing},
		{name: "requested QoS 3", rule: "[MQTT-3.8.3-4@3.1.1]", version: 4, connect: true,
			send: sub4(0x03, "a"), want: nothing},
		{name: "UNSUBSCRIBE without topic filter", rule: "[MQTT-3.10.3-2@3.1.1]", version: 4, connect: true,
			send: mqtttest.Unsubscribe(4, 1, nil), want: nothing},
	}
	for _, f := range invalidFilters {
		rows = append(rows, refusal{name: "SUBSCRIBE " + f.filter, rule: f.rule311, version: 4, connect: true,
			send: sub4(1, f.filter), want: nothing})
	}
	runRefusals(t, start(t), rows)
}

// invalidFilters break the topic filter rules of section 4.7, with the
// rule's MQTT 5 and MQTT 3.1.1 ids (3.1.1 numbers the wildcard rules one
// higher).
var invalidFilters = []struct{ filter, rule, rule311 string }{
	{"a/#/b", "[MQTT-4.7.1-1]", "[MQTT-4.7.1-2@3.1.1]"},
	{"#/a", "[MQTT-4.7.1-1]", "[MQTT-4.7.1-2@3.1.1]"},
	{"a/b#", "[MQTT-4.7.1-1]", "[MQTT-4.7.1-2@3.1.1]"},
	{"a+", "[MQTT-4.7.1-2]", "[MQTT-4.7.1-3@3.1.1]"},
	{"a/+b/c", "[MQTT-4.7.1-2]", "[MQTT-4.7.1-3@3.1.1]"},
	{"", "[MQTT-4.7.3-1]", "[MQTT-4.7.3-1@3.1.1]"},
}

// TestValidFilters: filters that follow section 4.7 are granted, in MQTT 5
// ([MQTT-4.7.1-1], [MQTT-4.7.1-2]) and 3.1.1 ([MQTT-4.7.1-2@3.1.1],
// [MQTT-4.7.1-3@3.1.1]).
func TestValidFilters(t *testing.T) {
	t.Parallel()
	srv := start(t)
	filters := []string{"#", "+", "+/+", "/+", "a/+/b", "a/#", "+/#", "sport/tennis/#", "/", "a//b", "$share/g/a/#", "$share/g/+"}
	for _, v := range []byte{4, 5} {
		c := mqtttest.Dial(t, srv.TCPAddr, v)
		c.MustConnect(mqtttest.Connect{ClientID: "filters" + string('0'+v), Clean: true, Keepalive: 60})
		var subs []mqtttest.Sub
		for _, f := range filters {
			subs = append(subs, mqtttest.Sub{Filter: f, Options: 1})
		}
		if codes := c.Subscribe(7, subs...); !bytes.Equal(codes, bytes.Repeat([]byte{1}, len(filters))) {
			t.Fatalf("v%d SUBACK codes %x", v, codes)
		}
		c.Ping()
	}
}
