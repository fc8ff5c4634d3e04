package conformance_test

import (
	"strings"
	"testing"

	"github.com/courier-mqtt/courier/internal/mqtttest"
)

// rawConnect builds a CONNECT from its parts, for packets Connect cannot
// describe (a wrong protocol name or level, a truncated payload).
func rawConnect(name string, level, flags byte, rest ...[]byte) []byte {
	return mqtttest.Frame(0x10, append([][]byte{mqtttest.Str(name), {level, flags}, mqtttest.U16(30)}, rest...)...)
}

// TestConnect5 covers MQTT 5 section 3.1 CONNECT: each refused CONNECT
// gets a CONNACK with the reason code, then the connection is closed
// [MQTT-3.2.2-7].
func TestConnect5(t *testing.T) {
	t.Parallel()
	srv := start(t)
	noProps := []byte{0}
	id := func(s string) []byte { return mqtttest.Str(s) }
	connect := func(c mqtttest.Connect) []byte { c.Version = 5; c.Clean = true; return c.Encode() }
	rows := []refusal{
		{name: "protocol name MQTX", rule: "[MQTT-3.1.2-1]", version: 5,
			send: rawConnect("MQTX", 5, 0x02, noProps, id("n")), want: connack(0x84)},
		{name: "protocol level 6", rule: "[MQTT-3.1.2-2]", version: 5,
			send: rawConnect("MQTT", 6, 0x02, noProps, id("l")), want: connack(0x84)},
		{name: "reserved flag", rule: "[MQTT-3.1.2-3]", version: 5,
			send: rawConnect("MQTT", 5, 0x03, noProps, id("r")), want: connack(0x81)},
		{name: "will QoS without will flag", rule: "[MQTT-3.1.2-11]", version: 5,
			send: rawConnect("MQTT", 5, 0x0A, noProps, id("q")), want: connack(0x81)},
		{name: "will QoS 3", rule: "[MQTT-3.1.2-12]", version: 5,
			send: rawConnect("MQTT", 5, 0x1E, noProps, id("q3"), noProps, mqtttest.Str("w"), mqtttest.Bin([]byte("p"))), want: connack(0x81)},
		{name: "will retain without will flag", rule: "[MQTT-3.1.2-13]", version: 5,
			send: rawConnect("MQTT", 5, 0x22, noProps, id("wr")), want: connack(0x81)},
		{name: "will flag without will topic and payload", rule: "[MQTT-3.1.2-9]", version: 5,
			send: rawConnect("MQTT", 5, 0x06, noProps, id("wt")), want: connack(0x81)},
		{name: "will flag without will payload", rule: "[MQTT-3.1.2-9]", version: 5,
			send: rawConnect("MQTT", 5, 0x06, noProps, id("wp"), noProps, mqtttest.Str("w")), want: connack(0x81)},
		{name: "user name flag without user name", rule: "[MQTT-3.1.2-17]", version: 5,
			send: rawConnect("MQTT", 5, 0x82, noProps, id("un")), want: connack(0x81)},
		{name: "password flag without password", rule: "[MQTT-3.1.2-19]", version: 5,
			send: rawConnect("MQTT", 5, 0xC2, noProps, id("pw"), mqtttest.Str("user")), want: connack(0x81)},
		{name: "user name without user name flag", rule: "[MQTT-3.1.2-16]", version: 5,
			send: rawConnect("MQTT", 5, 0x02, noProps, id("ux"), mqtttest.Str("user")), want: connack(0x81)},
		{name: "password without password flag", rule: "[MQTT-3.1.2-18]", version: 5,
			send: rawConnect("MQTT", 5, 0x82, noProps, id("px"), mqtttest.Str("user"), mqtttest.Str("secret")), want: connack(0x81)},
		{name: "no client id", rule: "[MQTT-3.1.3-3]", version: 5,
			send: rawConnect("MQTT", 5, 0x02, noProps), want: connack(0x81)},
		{name: "bytes after the password", rule: "[MQTT-3.1.4-1]", version: 5,
			send: rawConnect("MQTT", 5, 0xC2, noProps, id("tr"), mqtttest.Str("user"), mqtttest.Str("pw"), []byte{0}), want: connack(0x81)},
		{name: "will topic with wildcard", rule: "[MQTT-4.7.0-1]", version: 5,
			send: connect(mqtttest.Connect{ClientID: "ww", Will: &mqtttest.Will{Topic: "a/#", Payload: []byte("p")}}), want: connack(0x82)},
		// 3.1.2.11 CONNECT properties.
		{name: "receive maximum 0", rule: "3.1.2.11.3", version: 5,
			send: connect(mqtttest.Connect{ClientID: "rm", Props: [][]byte{mqtttest.Short(mqtttest.PropReceiveMaximum, 0)}}), want: connack(0x82)},
		{name: "maximum packet size 0", rule: "3.1.2.11.4", version: 5,
			send: connect(mqtttest.Connect{ClientID: "mp", Props: [][]byte{mqtttest.Int(mqtttest.PropMaximumPacketSize, 0)}}), want: connack(0x82)},
		{name: "session expiry twice", rule: "3.1.2.11.2", version: 5,
			send: connect(mqtttest.Connect{ClientID: "se", Props: [][]byte{mqtttest.Int(mqtttest.PropSessionExpiry, 1), mqtttest.Int(mqtttest.PropSessionExpiry, 2)}}), want: connack(0x82)},
		{name: "request problem information 2", rule: "3.1.2.11.7", version: 5,
			send: connect(mqtttest.Connect{ClientID: "rp", Props: [][]byte{mqtttest.Byte(mqtttest.PropRequestProblemInfo, 2)}}), want: connack(0x82)},
		{name: "request response information 2", rule: "3.1.2.11.6", version: 5,
			send: connect(mqtttest.Connect{ClientID: "rr", Props: [][]byte{mqtttest.Byte(mqtttest.PropRequestResponseInfo, 2)}}), want: connack(0x82)},
		{name: "topic alias in CONNECT properties", rule: "2.2.2.2", version: 5,
			send: connect(mqtttest.Connect{ClientID: "ta", Props: [][]byte{mqtttest.Short(mqtttest.PropTopicAlias, 1)}}), want: connack(0x81)},
		{name: "will delay in CONNECT properties", rule: "2.2.2.2", version: 5,
			send: connect(mqtttest.Connect{ClientID: "wd", Props: [][]byte{mqtttest.Int(mqtttest.PropWillDelay, 1)}}), want: connack(0x81)},
		{name: "will property twice", rule: "3.1.3.2", version: 5,
			send: connect(mqtttest.Connect{ClientID: "wpt", Will: &mqtttest.Will{Topic: "w", Payload: []byte("p"),
				Props: [][]byte{mqtttest.Int(mqtttest.PropWillDelay, 1), mqtttest.Int(mqtttest.PropWillDelay, 1)}}}), want: connack(0x82)},
		{name: "property length past the packet", rule: "2.2.2.1", version: 5,
			send: rawConnect("MQTT", 5, 0x02, []byte{9, 0x21, 0, 1}), want: connack(0x81)},
		{name: "authentication data without method", rule: "3.1.2.11.10", version: 5,
			send: connect(mqtttest.Connect{ClientID: "ad", Props: [][]byte{mqtttest.Binary(mqtttest.PropAuthData, []byte("x"))}}), want: connack(0x82)},
	}
	runRefusals(t, srv, rows)
}

// TestConnectAccepted5 lists CONNECTs the broker must accept.
func TestConnectAccepted5(t *testing.T) {
	t.Parallel()
	srv := start(t)
	cases := []struct {
		name, rule string
		pk         mqtttest.Connect
	}{
		// MQTT 5 dropped 3.1.1's rule that a password needs a user name.
		{name: "password without user name", rule: "3.1.2.9", pk: mqtttest.Connect{ClientID: "pw-only", Password: mqtttest.Ptr("secret")}},
		{name: "23 character alphanumeric client id", rule: "[MQTT-3.1.3-5]", pk: mqtttest.Connect{ClientID: "abcdefghijklmnopqrstuvW"}},
		{name: "long client id with other characters", rule: "3.1.3.1", pk: mqtttest.Connect{ClientID: strings.Repeat("é/+#", 40)}},
		{name: "zero-length will payload", rule: "3.1.3.4", pk: mqtttest.Connect{ClientID: "will-empty", Will: &mqtttest.Will{Topic: "w/empty", Payload: []byte{}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := mqtttest.Dial(t, srv.TCPAddr, 5)
			tc.pk.Clean, tc.pk.Keepalive = true, 60
			ca := c.MustConnect(tc.pk)
			if p, ok := ca.Props.Get(mqtttest.PropTopicAliasMaximum); !ok || p.Value == 0 {
				t.Fatalf("CONNACK announces no Topic Alias Maximum: %+v", ca.Props)
			}
			c.Ping()
		})
	}
}

// TestConnect311 covers MQTT 3.1.1 section 3.1: a CONNECT that does not
// conform is closed without a CONNACK [MQTT-3.1.4-1@3.1.1]; a protocol
// level or client id the server refuses gets the return code.
func TestConnect311(t *testing.T) {
	t.Parallel()
	srv := start(t)
	id := func(s string) []byte { return mqtttest.Str(s) }
	rows := []refusal{
		{name: "protocol level 3 with name MQTT", rule: "[MQTT-3.1.2-2@3.1.1]", version: 4,
			send: rawConnect("MQTT", 3, 0x02, id("l3")), want: connack(0x01)},
		{name: "protocol level 2", rule: "[MQTT-3.1.2-2@3.1.1]", version: 4,
			send: rawConnect("MQTT", 2, 0x02, id("l2")), want: connack(0x01)},
		{name: "protocol name MQTX", rule: "[MQTT-3.1.2-1@3.1.1]", version: 4,
			send: rawConnect("MQTX", 4, 0x02, id("n")), want: nothing},
		{name: "reserved flag", rule: "[MQTT-3.1.2-3@3.1.1]", version: 4,
			send: rawConnect("MQTT", 4, 0x03, id("r")), want: nothing},
		{name: "will QoS without will flag", rule: "[MQTT-3.1.2-11@3.1.1]", version: 4,
			send: rawConnect("MQTT", 4, 0x12, id("q")), want: nothing},
		{name: "will QoS 3", rule: "[MQTT-3.1.2-14@3.1.1]", version: 4,
			send: rawConnect("MQTT", 4, 0x1E, id("q3"), mqtttest.Str("w"), mqtttest.Bin([]byte("p"))), want: nothing},
		{name: "will retain without will flag", rule: "[MQTT-3.1.2-15@3.1.1]", version: 4,
			send: rawConnect("MQTT", 4, 0x22, id("wr")), want: nothing},
		{name: "will flag without will topic", rule: "[MQTT-3.1.2-9@3.1.1]", version: 4,
			send: rawConnect("MQTT", 4, 0x06, id("wt")), want: nothing},
		{name: "user name flag without user name", rule: "[MQTT-3.1.2-19@3.1.1]", version: 4,
			send: rawConnect("MQTT", 4, 0x82, id("un")), want: nothing},
		{name: "password flag without password", rule: "[MQTT-3.1.2-21@3.1.1]", version: 4,
			send: rawConnect("MQTT", 4, 0xC2, id("pw"), mqtttest.Str("user")), want: nothing},
		{name: "user name without user name flag", rule: "[MQTT-3.1.2-18@3.1.1]", version: 4,
			send: rawConnect("MQTT", 4, 0x02, id("ux"), mqtttest.Str("user")), want: nothing},
		{name: "password without password flag", rule: "[MQTT-3.1.2-20@3.1.1]", version: 4,
			send: rawConnect("MQTT", 4, 0x82, id("px"), mqtttest.Str("user"), mqtttest.Str("secret")), want: nothing},
		{name: "will QoS 2 without will flag", rule: "[MQTT-3.1.2-13@3.1.1]", version: 4,
			send: rawConnect("MQTT", 4, 0x12, id("q2")), want: nothing},
		{name: "no client id", rule: "[MQTT-3.1.3-3@3.1.1]", version: 4,
			send: rawConnect("MQTT", 4, 0x02), want: nothing},
		{name: "reserved flag, no return code fits", rule: "[MQTT-3.2.2-6@3.1.1]", version: 4,
			send: rawConnect("MQTT", 4, 0x01, id("rf")), want: nothing},
		{name: "password flag without user name flag", rule: "[MQTT-3.1.2-22@3.1.1]", version: 4,
			send: rawConnect("MQTT", 4, 0x42, id("p"), mqtttest.Str("secret")), want: nothing},
		{name: "empty client id without clean session", rule: "[MQTT-3.1.3-8@3.1.1]", version: 4,
			send: rawConnect("MQTT", 4, 0x00, id("")), want: connack(0x02)},
	}
	runRefusals(t, srv, rows)
}

// TestConnectAccepted311 lists CONNECTs a 3.1.1 server must accept.
func TestConnectAccepted311(t *testing.T) {
	t.Parallel()
	srv := start(t)
	cases := []struct {
		name, rule string
		pk         mqtttest.Connect
	}{
		{name: "23 character alphanumeric client id", rule: "[MQTT-3.1.3-5@3.1.1]", pk: mqtttest.Connect{ClientID: "0123456789abcdefghijXYZ", Clean: true}},
		{name: "empty client id with clean session", rule: "[MQTT-3.1.3-6@3.1.1]", pk: mqtttest.Connect{Clean: true}},
		{name: "long client id", rule: "3.1.3.1", pk: mqtttest.Connect{ClientID: strings.Repeat("long-id-", 20), Clean: true}},
		{name: "zero-length will payload", rule: "3.1.3.4", pk: mqtttest.Connect{ClientID: "will-empty", Clean: true, Will: &mqtttest.Will{Topic: "w/empty", Payload: []byte{}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := mqtttest.Dial(t, srv.TCPAddr, 4)
			tc.pk.Keepalive = 60
			if ca := c.Connect(tc.pk); ca.Reason != 0 {
				t.Fatalf("%s: CONNACK %#02x, want 0", tc.rule, ca.Reason)
			}
			c.Ping()
		})
	}
}

// TestConnect31 covers MQTT 3.1 (protocol name MQIsdp, level 3): its
// clients connect, subscribe and publish like 3.1.1 clients; a client id
// outside 1 to 23 characters gets return code 2 (identifier rejected).
func TestConnect31(t *testing.T) {
	t.Parallel()
	srv := start(t)
	runRefusals(t, srv, []refusal{
		{name: "client id of 24 characters", rule: "[MQIsdp-3]", version: 3,
			send: mqtttest.Connect{Version: 3, ClientID: strings.Repeat("x", 24), Clean: true}.Encode(), want: connack(0x02)},
		{name: "empty client id", rule: "[MQIsdp-3]", version: 3,
			send: mqtttest.Connect{Version: 3, Clean: true}.Encode(), want: connack(0x02)},
		{name: "MQIsdp with level 4", rule: "[MQIsdp-4]", version: 3,
			send: rawConnect("MQIsdp", 4, 0x02, mqtttest.Str("lvl")), want: connack(0x01)},
	})

	c := mqtttest.Dial(t, srv.TCPAddr, 3)
	c.MustConnect(mqtttest.Connect{ClientID: "mqisdp-client", Clean: true, Keepalive: 60})
	if codes := c.Subscribe(1, mqtttest.Sub{Filter: "v31/+", Options: 1}); len(codes) != 1 || codes[0] != 1 {
		t.Fatalf("SUBACK codes %x, want 01", codes)
	}
	c.Send(mqtttest.Publish{Version: 3, Topic: "v31/a", QoS: 1, PacketID: 5, Payload: []byte("hi")}.Encode())
	var acked, got bool
	for !acked || !got {
		p := c.Next()
		switch p.Type() {
		case mqtttest.PUBACK:
			acked = true
		case mqtttest.PUBLISH:
			m, err := p.Publish(3)
			if err != nil || m.Topic != "v31/a" || string(m.Payload) != "hi" {
				t.Fatalf("delivery %+v %v", m, err)
			}
			c.Send(mqtttest.Ack(3, mqtttest.PUBACK, m.PacketID, 0))
			got = true
		default:
			t.Fatalf("unexpected %s", p)
		}
	}
	c.Send(mqtttest.Unsubscribe(3, 2, nil, "v31/+"))
	c.Expect(mqtttest.UNSUBACK)
	c.Ping()
}

// TestEmptyWillPublished: a Will with a zero-length payload is accepted and
// published as it is when the connection drops ([MQTT-3.1.2-8],
// [MQTT-3.1.2-8@3.1.1]).
func TestEmptyWillPublished(t *testing.T) {
	t.Parallel()
	srv := start(t)
	for _, v := range []byte{4, 5} {
		topic := "empty-will/" + string('0'+v)
		watcher := mqtttest.Dial(t, srv.TCPAddr, v)
		watcher.MustConnect(mqtttest.Connect{ClientID: "ew-watch" + string('0'+v), Clean: true, Keepalive: 60})
		watcher.Subscribe(1, mqtttest.Sub{Filter: topic})
		c := mqtttest.Dial(t, srv.TCPAddr, v)
		c.MustConnect(mqtttest.Connect{ClientID: "ew" + string('0'+v), Clean: true, Keepalive: 60,
			Will: &mqtttest.Will{Topic: topic, Payload: []byte{}}})
		_ = c.C.Close()
		if m := watcher.ExpectPublish(); m.Topic != topic || len(m.Payload) != 0 {
			t.Fatalf("v%d: got %q on %q, want the empty Will", v, m.Payload, m.Topic)
		}
	}
}
