package conformance_test

import (
	"bytes"
	"testing"

	"github.com/courier-mqtt/courier/internal/mqtttest"
)

// Invalid UTF-8 strings: a lone continuation, an encoded surrogate
// (U+D800) and the null character.
const (
	badUTF8   = "a\xc3\x28"
	surrogate = "a\xed\xa0\x80"
	nul       = "a\x00b"
)

// TestDataRepresentation5 covers MQTT 5 section 1.5 (UTF-8 Encoded Strings)
// and section 2 (fixed header) for what a client sends. Every refusal ends
// with the connection closed, whether the broker answered or not
// [MQTT-4.13.1-1] [MQTT-4.13.2-1].
func TestDataRepresentation5(t *testing.T) {
	t.Parallel()
	srv := start(t)
	u := mqtttest.Ptr[string]
	will := func(topic string) *mqtttest.Will { return &mqtttest.Will{Topic: topic, Payload: []byte("w")} }
	rows := []refusal{
		// 1.5.4 UTF-8 Encoded Strings in CONNECT: CONNACK 0x81.
		{name: "client id ill-formed UTF-8", rule: "[MQTT-1.5.4-1]", version: 5,
			send: mqtttest.Connect{Version: 5, ClientID: badUTF8, Clean: true}.Encode(), want: connack(0x81)},
		{name: "client id surrogate", rule: "[MQTT-3.1.3-4]", version: 5,
			send: mqtttest.Connect{Version: 5, ClientID: surrogate, Clean: true}.Encode(), want: connack(0x81)},
		{name: "client id U+0000", rule: "[MQTT-1.5.4-2]", version: 5,
			send: mqtttest.Connect{Version: 5, ClientID: nul, Clean: true}.Encode(), want: connack(0x81)},
		{name: "user name ill-formed UTF-8", rule: "[MQTT-3.1.3-12]", version: 5,
			send: mqtttest.Connect{Version: 5, ClientID: "u", Clean: true, Username: u(badUTF8)}.Encode(), want: connack(0x81)},
		{name: "will topic ill-formed UTF-8", rule: "[MQTT-3.1.3-11]", version: 5,
			send: mqtttest.Connect{Version: 5, ClientID: "w", Clean: true, Will: will(badUTF8)}.Encode(), want: connack(0x81)},
		{name: "user property U+0000 in CONNECT", rule: "[MQTT-1.5.7-1]", version: 5,
			send: mqtttest.Connect{Version: 5, ClientID: "up", Clean: true, Props: [][]byte{mqtttest.User("k", nul)}}.Encode(), want: connack(0x81)},

		// 1.5.4 in packets after CONNECT: DISCONNECT 0x81.
		{name: "topic name ill-formed UTF-8", rule: "[MQTT-1.5.4-1]", version: 5, connect: true,
			send: pub5(mqtttest.Publish{Topic: badUTF8}), want: disc(0x81)},
		{name: "topic name surrogate", rule: "[MQTT-3.3.2-1]", version: 5, connect: true,
			send: pub5(mqtttest.Publish{Topic: surrogate, QoS: 1, PacketID: 1}), want: disc(0x81)},
		{name: "topic name U+0000", rule: "[MQTT-1.5.4-2]", version: 5, connect: true,
			send: pub5(mqtttest.Publish{Topic: nul}), want: disc(0x81)},
		{name: "topic filter ill-formed UTF-8", rule: "[MQTT-3.8.3-1]", version: 5, connect: true,
			send: mqtttest.Subscribe(5, 1, nil, mqtttest.Sub{Filter: badUTF8}), want: disc(0x81)},
		{name: "unsubscribe filter U+0000", rule: "[MQTT-3.10.3-1]", version: 5, connect: true,
			send: mqtttest.Unsubscribe(5, 1, nil, nul), want: disc(0x81)},
		{name: "topic filter U+0000", rule: "[MQTT-4.7.3-2]", version: 5, connect: true,
			send: mqtttest.Subscribe(5, 1, nil, mqtttest.Sub{Filter: "a/\x00"}), want: disc(0x81)},
		{name: "PUBLISH without property length", rule: "[MQTT-2.2.2-1]", version: 5, connect: true,
			send: mqtttest.Frame(0x30, mqtttest.Str("a")), want: disc(0x81)},
		{name: "user property ill-formed UTF-8", rule: "[MQTT-1.5.7-1]", version: 5, connect: true,
			send: pub5(mqtttest.Publish{Topic: "a", Props: [][]byte{mqtttest.User(badUTF8, "v")}}), want: disc(0x81)},
		{name: "content type ill-formed UTF-8", rule: "[MQTT-3.3.2-19]", version: 5, connect: true,
			send: pub5(mqtttest.Publish{Topic: "a", Props: [][]byte{mqtttest.String(mqtttest.PropContentType, badUTF8)}}), want: disc(0x81)},
		{name: "response topic ill-formed UTF-8", rule: "[MQTT-3.3.2-13]", version: 5, connect: true,
			send: pub5(mqtttest.Publish{Topic: "a", Props: [][]byte{mqtttest.String(mqtttest.PropResponseTopic, badUTF8)}}), want: disc(0x81)},

		// 2.1.3 reserved flags: malformed.
		{name: "SUBSCRIBE flags 0000", rule: "[MQTT-3.8.1-1]", version: 5, connect: true,
			send: mqtttest.Frame(0x80, mqtttest.U16(1), []byte{0}, mqtttest.Str("a"), []byte{0}), want: disc(0x81)},
		{name: "UNSUBSCRIBE flags 0011", rule: "[MQTT-3.10.1-1]", version: 5, connect: true,
			send: mqtttest.Frame(0xA3, mqtttest.U16(1), []byte{0}, mqtttest.Str("a")), want: disc(0x81)},
		{name: "PUBREL flags 0000", rule: "[MQTT-3.6.1-1]", version: 5, connect: true,
			send: mqtttest.Frame(0x60, mqtttest.U16(1)), want: disc(0x81)},
		{name: "PINGREQ flags 0001", rule: "[MQTT-2.1.3-1]", version: 5, connect: true,
			send: []byte{0xC1, 0}, want: disc(0x81)},
		{name: "DISCONNECT flags 1000", rule: "[MQTT-3.14.1-1]", version: 5, connect: true,
			send: []byte{0xE8, 0}, want: disc(0x81)},
		{name: "PUBLISH QoS 3", rule: "[MQTT-3.3.1-4]", version: 5, connect: true,
			send: mqtttest.Frame(0x36, mqtttest.Str("a"), mqtttest.U16(1), []byte{0}), want: disc(0x81)},
		{name: "PUBLISH QoS 0 with DUP", rule: "[MQTT-3.3.1-2]", version: 5, connect: true,
			send: mqtttest.Frame(0x38, mqtttest.Str("a"), []byte{0}), want: disc(0x81)},
		// 2.1.2: packet type 0 is reserved (forbidden).
		{name: "packet type 0", rule: "2.1.2", version: 5, connect: true,
			send: []byte{0x00, 0}, want: disc(0x81)},
		// 1.5.5: a Variable Byte Integer has at most four bytes.
		{name: "remaining length of five bytes", rule: "1.5.5", version: 5, connect: true,
			send: []byte{0x30, 0x80, 0x80, 0x80, 0x80, 0x01}, want: disc(0x81)},
		// 2.2.1 Packet Identifier: non-zero where required.
		{name: "PUBLISH QoS 1 packet id 0", rule: "[MQTT-2.2.1-3]", version: 5, connect: true,
			send: pub5(mqtttest.Publish{Topic: "a", QoS: 1}), want: disc(0x82)},
		{name: "SUBSCRIBE packet id 0", rule: "[MQTT-2.2.1-3]", version: 5, connect: true,
			send: mqtttest.Subscribe(5, 0, nil, mqtttest.Sub{Filter: "a"}), want: disc(0x82)},
		{name: "UNSUBSCRIBE packet id 0", rule: "[MQTT-2.2.1-3]", version: 5, connect: true,
			send: mqtttest.Unsubscribe(5, 0, nil, "a"), want: disc(0x82)},
		// 3.1.0: CONNECT first, once.
		{name: "PUBLISH before CONNECT", rule: "[MQTT-3.1.0-1]", version: 5,
			send: pub5(mqtttest.Publish{Topic: "a"}), want: nothing},
		{name: "second CONNECT", rule: "[MQTT-3.1.0-2]", version: 5, connect: true,
			send: mqtttest.Connect{Version: 5, ClientID: "again", Clean: true}.Encode(), want: disc(0x82)},
		// Packets only a server sends, and malformed fixed-size packets.
		{name: "CONNACK from a client", rule: "2.1.2", version: 5, connect: true,
			send: mqtttest.Frame(0x20, []byte{0, 0, 0}), want: disc(0x82)},
		{name: "PINGREQ with a body", rule: "3.12", version: 5, connect: true,
			send: []byte{0xC0, 1, 0}, want: disc(0x81)},
		{name: "PUBACK without packet id", rule: "3.4.2", version: 5, connect: true,
			send: []byte{0x40, 1, 0}, want: disc(0x81)},
		{name: "PUBACK with invalid reason code", rule: "3.4.2.1", version: 5, connect: true,
			send: mqtttest.Frame(0x40, mqtttest.U16(1), []byte{0x05}), want: disc(0x82)},
		{name: "DISCONNECT with invalid reason code", rule: "3.14.2.1", version: 5, connect: true,
			send: mqtttest.Frame(0xE0, []byte{0x03}), want: disc(0x82)},
		{name: "AUTH with invalid reason code", rule: "[MQTT-3.15.2-1]", version: 5, connect: true,
			send: mqtttest.Frame(0xF0, []byte{0x05, 0}), want: disc(0x82)},
		{name: "AUTH flags 0001", rule: "[MQTT-3.15.1-1]", version: 5, connect: true,
			send: mqtttest.Frame(0xF1, []byte{0x19, 0}), want: disc(0x81)},
		{name: "AUTH without authentication method in CONNECT", rule: "[MQTT-4.12.0-7]", version: 5, connect: true,
			send: mqtttest.Frame(0xF0, []byte{0x19, 0}), want: disc(0x82)},
		{name: "PUBREL with invalid reason code", rule: "[MQTT-3.6.2-1]", version: 5, connect: true,
			send: mqtttest.Frame(0x62, mqtttest.U16(1), []byte{0x80}), want: disc(0x82)},
	}
	runRefusals(t, srv, rows)
}

// TestDataRepresentation311 covers the same rules for MQTT 3.1.1: the
// broker closes the connection without a packet.
func TestDataRepresentation311(t *testing.T) {
	t.Parallel()
	srv := start(t)
	u := mqtttest.Ptr[string]
	rows := []refusal{
		{name: "client id ill-formed UTF-8", rule: "[MQTT-1.5.3-1@3.1.1]", version: 4,
			send: mqtttest.Connect{Version: 4, ClientID: badUTF8, Clean: true}.Encode(), want: nothing},
		{name: "client id U+0000", rule: "[MQTT-1.5.3-2@3.1.1]", version: 4,
			send: mqtttest.Connect{Version: 4, ClientID: nul, Clean: true}.Encode(), want: nothing},
		{name: "client id surrogate", rule: "[MQTT-3.1.3-4@3.1.1]", version: 4,
			send: mqtttest.Connect{Version: 4, ClientID: surrogate, Clean: true}.Encode(), want: nothing},
		{name: "topic name surrogate", rule: "[MQTT-3.3.2-1@3.1.1]", version: 4, connect: true,
			send: pub4(mqtttest.Publish{Topic: surrogate, QoS: 1, PacketID: 1}), want: nothing},
		{name: "topic filter U+0000", rule: "[MQTT-4.7.3-2@3.1.1]", version: 4, connect: true,
			send: mqtttest.Subscribe(4, 1, nil, mqtttest.Sub{Filter: nul}), want: nothing},
		{name: "PUBACK flags 0010", rule: "[MQTT-2.2.2-1@3.1.1]", version: 4, connect: true,
			send: mqtttest.Frame(0x42, mqtttest.U16(1)), want: nothing},
		{name: "user name ill-formed UTF-8", rule: "[MQTT-3.1.3-11@3.1.1]", version: 4,
			send: mqtttest.Connect{Version: 4, ClientID: "u", Clean: true, Username: u(surrogate)}.Encode(), want: nothing},
		{name: "will topic ill-formed UTF-8", rule: "[MQTT-3.1.3-10@3.1.1]", version: 4,
			send: mqtttest.Connect{Version: 4, ClientID: "w", Clean: true, Will: &mqtttest.Will{Topic: badUTF8, Payload: []byte("x")}}.Encode(), want: nothing},
		{name: "topic name ill-formed UTF-8", rule: "[MQTT-1.5.3-1@3.1.1]", version: 4, connect: true,
			send: pub4(mqtttest.Publish{Topic: badUTF8}), want: nothing},
		{name: "topic name U+0000", rule: "[MQTT-1.5.3-2@3.1.1]", version: 4, connect: true,
			send: pub4(mqtttest.Publish{Topic: nul}), want: nothing},
		{name: "topic filter ill-formed UTF-8", rule: "[MQTT-3.8.3-1@3.1.1]", version: 4, connect: true,
			send: mqtttest.Subscribe(4, 1, nil, mqtttest.Sub{Filter: surrogate}), want: nothing},
		{name: "unsubscribe filter ill-formed UTF-8", rule: "[MQTT-3.10.3-1@3.1.1]", version: 4, connect: true,
			send: mqtttest.Unsubscribe(4, 1, nil, badUTF8), want: nothing},
		{name: "PINGREQ flags 0001", rule: "[MQTT-2.2.2-2@3.1.1]", version: 4, connect: true,
			send: []byte{0xC1, 0}, want: nothing},
		{name: "SUBSCRIBE flags 0000", rule: "[MQTT-3.8.1-1@3.1.1]", version: 4, connect: true,
			send: mqtttest.Frame(0x80, mqtttest.U16(1), mqtttest.Str("a"), []byte{0}), want: nothing},
		{name: "UNSUBSCRIBE flags 0000", rule: "[MQTT-3.10.1-1@3.1.1]", version: 4, connect: true,
			send: mqtttest.Frame(0xA0, mqtttest.U16(1), mqtttest.Str("a")), want: nothing},
		{name: "PUBREL flags 0000", rule: "[MQTT-3.6.1-1@3.1.1]", version: 4, connect: true,
			send: mqtttest.Frame(0x60, mqtttest.U16(1)), want: nothing},
		{name: "DISCONNECT flags 0001", rule: "[MQTT-3.14.1-1@3.1.1]", version: 4, connect: true,
			send: []byte{0xE1, 0}, want: nothing},
		{name: "PUBLISH QoS 3", rule: "[MQTT-3.3.1-4@3.1.1]", version: 4, connect: true,
			send: mqtttest.Frame(0x36, mqtttest.Str("a"), mqtttest.U16(1)), want: nothing},
		{name: "PUBLISH QoS 1 packet id 0", rule: "[MQTT-2.3.1-1@3.1.1]", version: 4, connect: true,
			send: pub4(mqtttest.Publish{Topic: "a", QoS: 1}), want: nothing},
		{name: "SUBSCRIBE packet id 0", rule: "[MQTT-2.3.1-1@3.1.1]", version: 4, connect: true,
			send: mqtttest.Subscribe(4, 0, nil, mqtttest.Sub{Filter: "a"}), want: nothing},
		{name: "PUBLISH before CONNECT", rule: "[MQTT-3.1.0-1@3.1.1]", version: 4,
			send: pub4(mqtttest.Publish{Topic: "a"}), want: nothing},
		{name: "second CONNECT", rule: "[MQTT-3.1.0-2@3.1.1]", version: 4, connect: true,
			send: mqtttest.Connect{Version: 4, ClientID: "again", Clean: true}.Encode(), want: nothing},
		{name: "AUTH packet type", rule: "[MQTT-4.8.0-1@3.1.1]", version: 4, connect: true,
			send: []byte{0xF0, 0}, want: nothing},
		{name: "PUBACK longer than its packet id", rule: "[MQTT-4.8.0-1@3.1.1]", version: 4, connect: true,
			send: mqtttest.Frame(0x40, mqtttest.U16(1), []byte{0}), want: nothing},
	}
	runRefusals(t, srv, rows)
}

// TestStringsKeptAsSent: a zero-width no-break space (U+FEFF) is part of
// the string and is neither skipped nor stripped [MQTT-1.5.4-3]
// ([MQTT-1.5.3-3@3.1.1]); code
// points MQTT 5 only advises against (a control character, a
// non-character) are accepted and delivered unaltered.
func TestStringsKeptAsSent(t *testing.T) {
	t.Parallel()
	srv := start(t)
	for _, v := range []byte{4, 5} {
		c := mqtttest.Dial(t, srv.TCPAddr, v)
		c.MustConnect(mqtttest.Connect{ClientID: "bom" + string('0'+v), Clean: true, Keepalive: 60})
		for i, topic := range []string{"\uFEFFbom/a", "ctl/\u0001", "nonchar/\uFFFF"} {
			id := uint16(i + 1)
			if codes := c.Subscribe(id, mqtttest.Sub{Filter: topic, Options: 0}); !bytes.Equal(codes, []byte{0}) {
				t.Fatalf("v%d subscribe %q: codes %x", v, topic, codes)
			}
			c.Send(mqtttest.Publish{Version: v, Topic: topic, Payload: []byte("p")}.Encode())
			if m := c.ExpectPublish(); m.Topic != topic {
				t.Fatalf("v%d [MQTT-1.5.4-3]: delivered on %q, want %q", v, m.Topic, topic)
			}
		}
	}
}

// TestReasonStringFitsMaximumPacketSize: the broker's refusing CONNACK and
// DISCONNECT carry a Reason String only if it keeps the packet within the
// client's Maximum Packet Size ([MQTT-3.2.2-19], [MQTT-3.14.2-3]); the size
// check is on the whole packet, so it covers User Properties too
// ([MQTT-3.2.2-20], [MQTT-3.14.2-4]).
func TestReasonStringFitsMaximumPacketSize(t *testing.T) {
	t.Parallel()
	srv := start(t)
	maxSize := func(n uint32) [][]byte { return [][]byte{mqtttest.Int(mqtttest.PropMaximumPacketSize, n)} }
	for _, tc := range []struct {
		name       string
		max        uint32
		wantReason bool
	}{{"small maximum", 40, false}, {"no maximum", 0, true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var props [][]byte
			if tc.max > 0 {
				props = maxSize(tc.max)
			}
			c := mqtttest.Dial(t, srv.TCPAddr, 5)
			c.Send(mqtttest.Connect{Version: 5, ClientID: badUTF8, Clean: true, Props: props}.Encode())
			ack := c.Expect(mqtttest.CONNACK)
			ca, err := ack.Connack(5)
			if err != nil || ca.Reason != 0x81 {
				t.Fatalf("CONNACK %+v %v, want 0x81", ca, err)
			}
			if ca.Props.Has(mqtttest.PropReasonString) != tc.wantReason || (tc.max > 0 && len(ack.Bytes()) > int(tc.max)) {
				t.Fatalf("[MQTT-3.2.2-19] CONNACK of %d bytes with properties %+v for maximum %d", len(ack.Bytes()), ca.Props, tc.max)
			}

			c = mqtttest.Dial(t, srv.TCPAddr, 5)
			c.MustConnect(mqtttest.Connect{ClientID: "mps-" + tc.name, Clean: true, Keepalive: 60, Props: props})
			c.Send(pub5(mqtttest.Publish{Topic: "a/#"}))
			d := c.Expect(mqtttest.DISCONNECT)
			code, dp, err := d.Disconnect()
			if err != nil || code != 0x82 {
				t.Fatalf("DISCONNECT %#02x %v, want 0x82", code, err)
			}
			if dp.Has(mqtttest.PropReasonString) != tc.wantReason || (tc.max > 0 && len(d.Bytes()) > int(tc.max)) {
				t.Fatalf("[MQTT-3.14.2-3] DISCONNECT of %d bytes with properties %+v for maximum %d", len(d.Bytes()), dp, tc.max)
			}
		})
	}
}
