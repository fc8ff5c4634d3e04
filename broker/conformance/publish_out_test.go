package conformance_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/courier-mqtt/courier/internal/mqtttest"
)

// Section 3.3: the PUBLISH packets the broker sends.

// The DUP flag of an outgoing PUBLISH says only whether that packet is a
// resend: 0 on the first attempt, also for messages queued while the
// subscriber was away, 1 when the same packet goes out again.
func TestOutboundPublishDUP(t *testing.T) {
	t.Parallel()
	for _, store := range []bool{false, true} {
		for _, ver := range outVersions {
			t.Run(fmt.Sprintf("%s/store=%v", ver.name, store), func(t *testing.T) {
				t.Parallel()
				srv := outBroker(t, store, nil)
				v := ver.v
				sub, _ := outSession(t, srv.TCPAddr, v, "dup-sub")
				sub.Subscribe(1, mqtttest.Sub{Filter: "dup/#", Options: 1})
				outGone(t, srv, sub, "dup-sub", false)

				pub := outClient(t, srv.TCPAddr, v, "dup-pub")
				// The publisher's own DUP flag is not passed on. [MQTT-3.3.1-3] [MQTT-3.3.1-3@3.1.1]
				outPublishAcked(pub, mqtttest.Publish{Topic: "dup/a", QoS: 1, PacketID: 7, Dup: true, Payload: []byte("queued")})

				// First attempt of a message queued while the session was offline:
				// DUP 0. [MQTT-3.3.1-3] [MQTT-3.3.1-3@3.1.1]
				sub, present := outSession(t, srv.TCPAddr, v, "dup-sub")
				if !present {
					t.Fatal("session not present")
				}
				first := sub.ExpectPublish()
				if string(first.Payload) != "queued" || first.QoS != 1 {
					t.Fatalf("got %+v", first)
				}
				if first.Dup {
					t.Error("first delivery of a queued message has DUP 1 [MQTT-3.3.1-3]")
				}
				// A live QoS 1 message, not acknowledged either.
				outPublishAcked(pub, mqtttest.Publish{Topic: "dup/b", QoS: 1, PacketID: 8, Payload: []byte("live")})
				live := sub.ExpectPublish()
				if live.Dup {
					t.Error("first delivery of a live message has DUP 1 [MQTT-3.3.1-3]")
				}
				outCut(sub)

				// Both are resent after the reconnect, with DUP 1 and their packet
				// ids. [MQTT-3.3.1-1] [MQTT-3.3.1-1@3.1.1] [MQTT-4.4.0-1] [MQTT-4.4.0-1@3.1.1]
				sub, _ = outSession(t, srv.TCPAddr, v, "dup-sub")
				again := sub.ExpectPublishes(2)
				for i, want := range []mqtttest.Message{first, live} {
					got := again[i]
					if !got.Dup || got.PacketID != want.PacketID || !bytes.Equal(got.Payload, want.Payload) {
						t.Errorf("resend %d: got dup=%v id=%d %q, want dup=1 id=%d %q", i, got.Dup, got.PacketID, got.Payload, want.PacketID, want.Payload)
					}
					sub.SendAck(mqtttest.PUBACK, got.PacketID)
				}
				// QoS 0 messages never have DUP set. [MQTT-3.3.1-2] [MQTT-3.3.1-2@3.1.1] [MQTT-4.3.1-1] [MQTT-4.3.1-1@3.1.1]
				outPublishAcked(pub, mqtttest.Publish{Topic: "dup/c", QoS: 0, Dup: false, Payload: []byte("q0")})
				if m := sub.ExpectPublish(); m.Dup || m.QoS != 0 {
					t.Errorf("QoS 0 delivery: %+v", m)
				}
				sub.Quiet(50 * time.Millisecond)
			})
		}
	}
}

// A message parked because the subscriber's Receive Maximum was reached is
// sent for the first time when the quota frees: DUP 0, and its own id.
func TestOutboundPublishDUPAfterReceiveMaximum(t *testing.T) {
	t.Parallel()
	srv := outBroker(t, false, nil)
	sub := outClient(t, srv.TCPAddr, 5, "rm-dup-sub", mqtttest.Short(mqtttest.PropReceiveMaximum, 1))
	sub.Subscribe(1, mqtttest.Sub{Filter: "rmdup", Options: 1})
	pub := outClient(t, srv.TCPAddr, 5, "rm-dup-pub")
	for i := range 3 {
		outPublishAcked(pub, mqtttest.Publish{Topic: "rmdup", QoS: 1, PacketID: uint16(i + 1), Payload: []byte{byte('a' + i)}})
	}
	for i := range 3 {
		m := sub.ExpectPublish()
		// [MQTT-3.3.1-3] [MQTT-4.3.2-2]
		if m.Dup || m.Payload[0] != byte('a'+i) {
			t.Fatalf("delivery %d: dup=%v payload %q", i, m.Dup, m.Payload)
		}
		sub.Quiet(30 * time.Millisecond) // [MQTT-3.3.4-9]: one at a time
		sub.SendAck(mqtttest.PUBACK, m.PacketID)
	}
}

// Every property of a PUBLISH that describes the message reaches each
// subscriber as published, User Properties in their order, also when the
// subscriber asked for no problem information (mochi then stripped User
// Properties from PUBLISH too).
func TestOutboundPublishProperties(t *testing.T) {
	t.Parallel()
	props := [][]byte{
		mqtttest.Byte(mqtttest.PropPayloadFormat, 1),
		mqtttest.String(mqtttest.PropContentType, "text/plain; charset=utf-8"),
		mqtttest.String(mqtttest.PropResponseTopic, "reply/here"),
		mqtttest.Binary(mqtttest.PropCorrelationData, []byte{0, 1, 2, 0xff}),
		mqtttest.User("b", "2"),
		mqtttest.User("a", "1"),
		mqtttest.User("b", "3"),
		mqtttest.User("a", "1"),
	}
	rows := []struct {
		name  string
		props [][]byte // subscriber's CONNECT properties
	}{
		{"plain", nil},
		{"request problem information 0", [][]byte{mqtttest.Byte(mqtttest.PropRequestProblemInfo, 0)}},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			t.Parallel()
			srv := outBroker(t, false, nil)
			sub := outClient(t, srv.TCPAddr, 5, "props-sub", row.props...)
			sub.Subscribe(1, mqtttest.Sub{Filter: "props/#", Options: 1})
			pub := outClient(t, srv.TCPAddr, 5, "props-pub")
			for _, qos := range []byte{0, 1, 2} {
				outPublishAcked(pub, mqtttest.Publish{Topic: "props/x", QoS: qos, PacketID: 1, Props: props, Payload: []byte("héllo")})
				m := sub.ExpectPublish()
				if m.QoS > 0 {
					sub.SendAck(map[byte]byte{1: mqtttest.PUBACK, 2: mqtttest.PUBREC}[m.QoS], m.PacketID)
				}
				if m.QoS == 2 {
					sub.ExpectAck(mqtttest.PUBREL)
					sub.SendAck(mqtttest.PUBCOMP, m.PacketID)
				}
				check := func(rule string, id byte, want string) {
					t.Helper()
					p, ok := m.Props.Get(id)
					got := p.Str
					if id == mqtttest.PropPayloadFormat {
						got = fmt.Sprint(p.Value)
					}
					if !ok || got != want {
						t.Errorf("qos %d: %s property %#x = %q (present %v), want %q", qos, rule, id, got, ok, want)
					}
				}
				check("[MQTT-3.3.2-4]", mqtttest.PropPayloadFormat, "1")
				check("[MQTT-3.3.2-20]", mqtttest.PropContentType, "text/plain; charset=utf-8")
				check("[MQTT-3.3.2-15]", mqtttest.PropResponseTopic, "reply/here")
				check("[MQTT-3.3.2-16]", mqtttest.PropCorrelationData, string([]byte{0, 1, 2, 0xff}))
				// [MQTT-3.3.2-17] [MQTT-3.3.2-18]
				var users []string
				for _, u := range m.Props.All(mqtttest.PropUserProperty) {
					users = append(users, u.Key+"="+u.Str)
				}
				if fmt.Sprint(users) != "[b=2 a=1 b=3 a=1]" {
					t.Errorf("qos %d: user properties %v, want [b=2 a=1 b=3 a=1]", qos, users)
				}
				if m.Props.Has(mqtttest.PropMessageExpiry) || m.Props.Has(mqtttest.PropTopicAlias) {
					t.Errorf("qos %d: unexpected properties %+v", qos, m.Props)
				}
				if string(m.Payload) != "héllo" {
					t.Errorf("qos %d: payload %q", qos, m.Payload)
				}
			}
		})
	}
}

// The RETAIN flag of a forwarded message (3.3.1.3): 0 on an established
// subscription unless Retain As Published; 1 on a retained message sent
// because a subscription was made; Retain Handling decides whether those
// are sent at all.
func TestOutboundPublishRetain(t *testing.T) {
	t.Parallel()
	for _, ver := range outVersions {
		t.Run(ver.name, func(t *testing.T) {
			t.Parallel()
			v := ver.v
			srv := outBroker(t, false, nil)
			pub := outClient(t, srv.TCPAddr, v, "ret-pub")
			outPublishAcked(pub, mqtttest.Publish{Topic: "ret/a", QoS: 1, PacketID: 1, Retain: true, Payload: []byte("old")})

			sub := outClient(t, srv.TCPAddr, v, "ret-sub")
			// A new subscription gets the retained message with RETAIN 1.
			// [MQTT-3.3.1-9] [MQTT-3.3.1-6@3.1.1] [MQTT-3.3.1-8@3.1.1]
			sub.Subscribe(1, mqtttest.Sub{Filter: "ret/#", Options: 1})
			if m := sub.ExpectPublish(); !m.Retain || string(m.Payload) != "old" {
				t.Fatalf("retained on subscribe: %+v", m)
			} else {
				sub.SendAck(mqtttest.PUBACK, m.PacketID)
			}
			// On the established subscription RETAIN is 0.
			// [MQTT-3.3.1-12] [MQTT-3.3.1-9@3.1.1]
			outPublishAcked(pub, mqtttest.Publish{Topic: "ret/a", QoS: 1, PacketID: 2, Retain: true, Payload: []byte("new")})
			if m := sub.ExpectPublish(); m.Retain || string(m.Payload) != "new" {
				t.Fatalf("forwarded: %+v", m)
			} else {
				sub.SendAck(mqtttest.PUBACK, m.PacketID)
			}
			// Subscribing again replaces the subscription and sends the
			// retained message again. [MQTT-3.8.4-3] [MQTT-3.8.4-4] [MQTT-3.8.4-3@3.1.1]
			sub.Subscribe(2, mqtttest.Sub{Filter: "ret/#", Options: 0})
			if m := sub.ExpectPublish(); !m.Retain || string(m.Payload) != "new" || m.QoS != 0 {
				t.Fatalf("retained on resubscribe: %+v", m)
			}
			outPublishAcked(pub, mqtttest.Publish{Topic: "ret/a", QoS: 1, PacketID: 3, Payload: []byte("q")})
			if m := sub.ExpectPublish(); m.QoS != 0 { // the replacement's QoS [MQTT-3.8.4-8] [MQTT-3.8.4-6@3.1.1]
				t.Fatalf("after resubscribe at QoS 0: %+v", m)
			}
			sub.Quiet(30 * time.Millisecond)
			if v != 5 {
				return
			}
			rap := outClient(t, srv.TCPAddr, v, "ret-rap")
			rh1 := outClient(t, srv.TCPAddr, v, "ret-rh1")
			rh2 := outClient(t, srv.TCPAddr, v, "ret-rh2")
			rap.Subscribe(1, mqtttest.Sub{Filter: "ret/#", Options: 0x08}) // Retain As Published, Retain Handling 0
			if m := rap.ExpectPublish(); !m.Retain {
				t.Fatalf("retain handling 0: %+v [MQTT-3.3.1-9]", m)
			}
			// Retain Handling 1 sends retained messages only for a new subscription [MQTT-3.3.1-10].
			rh1.Subscribe(1, mqtttest.Sub{Filter: "ret/#", Options: 0x10})
			if m := rh1.ExpectPublish(); !m.Retain {
				t.Fatalf("retain handling 1, new: %+v", m)
			}
			rh1.Subscribe(2, mqtttest.Sub{Filter: "ret/#", Options: 0x10})
			// Retain Handling 2 never sends them [MQTT-3.3.1-11].
			rh2.Subscribe(1, mqtttest.Sub{Filter: "ret/#", Options: 0x20})
			rh1.Quiet(30 * time.Millisecond)
			rh2.Quiet(30 * time.Millisecond)

			// Retain As Published keeps the publisher's flag [MQTT-3.3.1-13].
			outPublishAcked(pub, mqtttest.Publish{Topic: "ret/a", QoS: 0, Retain: true, Payload: []byte("r")})
			outPublishAcked(pub, mqtttest.Publish{Topic: "ret/a", QoS: 0, Payload: []byte("n")})
			if m := rap.ExpectPublish(); !m.Retain || string(m.Payload) != "r" {
				t.Errorf("retain as published, RETAIN 1: %+v", m)
			}
			if m := rap.ExpectPublish(); m.Retain || string(m.Payload) != "n" {
				t.Errorf("retain as published, RETAIN 0: %+v", m)
			}
			for _, c := range []*mqtttest.Conn{rh1, rh2} {
				for range 2 {
					if m := c.ExpectPublish(); m.Retain { // [MQTT-3.3.1-12]
						t.Errorf("without retain as published: %+v", m)
					}
				}
			}
		})
	}
}

// Topic aliases the broker sends stay within the client's Topic Alias
// Maximum, and a message resent on a new connection names its topic: alias
// mappings end with the connection that made them.
func TestOutboundTopicAlias(t *testing.T) {
	t.Parallel()
	srv := outBroker(t, false, nil)
	alias := mqtttest.Short(mqtttest.PropTopicAliasMaximum, 2)
	sub, _ := outSession(t, srv.TCPAddr, 5, "alias-sub", alias)
	sub.Subscribe(1, mqtttest.Sub{Filter: "alias/#", Options: 1})
	pub := outClient(t, srv.TCPAddr, 5, "alias-pub")
	topics := []string{"alias/a", "alias/b", "alias/c", "alias/a", "alias/b", "alias/c"}
	for i, tp := range topics {
		outPublishAcked(pub, mqtttest.Publish{Topic: tp, QoS: 1, PacketID: uint16(i + 1), Payload: []byte(tp)})
	}
	known := map[uint32]string{}
	check := func(m mqtttest.Message) {
		t.Helper()
		a, has := m.Props.Get(mqtttest.PropTopicAlias)
		switch {
		case has && (a.Value == 0 || a.Value > 2): // [MQTT-3.1.2-26] [MQTT-3.3.2-8] [MQTT-3.3.2-11]
			t.Fatalf("topic alias %d, maximum 2", a.Value)
		case has && m.Topic != "":
			known[a.Value] = m.Topic
		case has:
			m.Topic = known[a.Value]
		}
		if m.Topic != string(m.Payload) { // [MQTT-3.3.2-7]: an alias only means what this connection set
			t.Fatalf("topic %q (alias %v) for the message published on %q", m.Topic, a.Value, m.Payload)
		}
	}
	for i := range topics {
		m := sub.ExpectPublish()
		check(m)
		if i < 3 { // the rest, sent through aliases, stay unacknowledged
			sub.SendAck(mqtttest.PUBACK, m.PacketID)
		}
	}
	sub.Ping()
	outCut(sub)
	sub, _ = outSession(t, srv.TCPAddr, 5, "alias-sub", alias)
	known = map[uint32]string{}
	for range topics[3:] {
		m := sub.ExpectPublish()
		check(m)
		sub.SendAck(mqtttest.PUBACK, m.PacketID)
	}
}

// Request Problem Information 0: no Reason String or User Property on
// packets other than PUBLISH, CONNACK and DISCONNECT [MQTT-3.1.2-29].
func TestRequestProblemInformationOff(t *testing.T) {
	t.Parallel()
	srv := outBroker(t, false, nil)
	c := outClient(t, srv.TCPAddr, 5, "rpi", mqtttest.Byte(mqtttest.PropRequestProblemInfo, 0))
	u := mqtttest.User("k", "v")
	c.Send(mqtttest.Ack(5, mqtttest.PUBREC, 99, 0, u)) // PUBREL 0x92 would carry a Reason String
	c.Send(mqtttest.Subscribe(5, 1, [][]byte{u}, mqtttest.Sub{Filter: "rpi", Options: 1}))
	c.Publish(mqtttest.Publish{Topic: "rpi", QoS: 1, PacketID: 2, Props: [][]byte{u}, Payload: []byte("x")})
	for _, p := range c.Ping() {
		var props mqtttest.Properties
		switch p.Type() {
		case mqtttest.PUBREL, mqtttest.PUBACK:
			a, _ := p.Ack(5)
			props = a.Props
		case mqtttest.SUBACK:
			s, _ := p.Suback(5)
			props = s.Props
		case mqtttest.PUBLISH:
			m, _ := p.Publish(5)
			c.SendAck(mqtttest.PUBACK, m.PacketID)
			continue
		}
		if props.Has(mqtttest.PropReasonString) || props.Has(mqtttest.PropUserProperty) {
			t.Errorf("%s carries problem information: %+v", mqtttest.TypeName(p.Type()), props)
		}
	}
}
