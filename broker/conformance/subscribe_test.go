package conformance_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/courier-mqtt/courier/broker"
	"github.com/courier-mqtt/courier/internal/mqtttest"
	"golang.org/x/crypto/bcrypt"
)

// Sections 3.8-3.11 (SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK) and 4.8
// (overlapping and shared subscriptions): what the broker answers and
// delivers.

func TestSuback(t *testing.T) {
	t.Parallel()
	rows := []struct {
		name string
		v    byte
		subs []mqtttest.Sub
		want []byte
	}{
		{
			// One code per filter, in order, the granted QoS
			// [MQTT-3.8.4-1] [MQTT-3.8.4-2] [MQTT-3.8.4-5] [MQTT-3.8.4-6] [MQTT-3.8.4-7] [MQTT-3.9.3-1] [MQTT-3.9.3-2].
			name: "5 granted", v: 5,
			subs: []mqtttest.Sub{{Filter: "s/2", Options: 2}, {Filter: "s/0", Options: 0}, {Filter: "s/+/1", Options: 1}, {Filter: "s/#", Options: 2}},
			want: []byte{2, 0, 1, 2},
		},
		{
			// [MQTT-3.8.4-1@3.1.1] [MQTT-3.8.4-2@3.1.1] [MQTT-3.8.4-4@3.1.1] [MQTT-3.8.4-5@3.1.1] [MQTT-3.9.3-1@3.1.1] [MQTT-3.9.3-2@3.1.1]
			name: "3.1.1 granted", v: 4,
			subs: []mqtttest.Sub{{Filter: "s/1", Options: 1}, {Filter: "s/#", Options: 0}, {Filter: "s/2", Options: 2}},
			want: []byte{1, 0, 2},
		},
	}
	srv := outBroker(t, false, nil)
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			t.Parallel()
			c := outClient(t, srv.TCPAddr, row.v, "suback-"+row.name)
			c.Send(mqtttest.Subscribe(row.v, 0x1234, nil, row.subs...))
			s := c.ExpectSuback(mqtttest.SUBACK)
			// [MQTT-2.2.1-6] [MQTT-2.3.1-7@3.1.1]
			if s.PacketID != 0x1234 || !bytes.Equal(s.Codes, row.want) {
				t.Fatalf("SUBACK id %#x codes % x, want id 0x1234 codes % x", s.PacketID, s.Codes, row.want)
			}
		})
	}
}

// UNSUBACK: one code per filter in order (MQTT 5), 0x11 when there was no
// such subscription; filters are compared byte for byte; after it no new
// messages arrive for the filter.
func TestUnsuback(t *testing.T) {
	t.Parallel()
	for _, ver := range outVersions {
		t.Run(ver.name, func(t *testing.T) {
			t.Parallel()
			v := ver.v
			srv := outBroker(t, false, nil)
			c := outClient(t, srv.TCPAddr, v, "unsub")
			c.Subscribe(1, mqtttest.Sub{Filter: "u/a", Options: 1}, mqtttest.Sub{Filter: "u/+", Options: 1})
			c.Send(mqtttest.Unsubscribe(v, 0x4321, nil, "u/none", "u/a", "U/+"))
			u := c.ExpectSuback(mqtttest.UNSUBACK)
			// [MQTT-3.10.4-4] [MQTT-3.10.4-5] [MQTT-3.10.4-6] [MQTT-3.10.4-4@3.1.1] [MQTT-3.10.4-5@3.1.1] [MQTT-3.10.4-6@3.1.1]
			if u.PacketID != 0x4321 {
				t.Fatalf("UNSUBACK for %#x", u.PacketID)
			}
			if v == 5 {
				// [MQTT-3.11.3-1] [MQTT-3.11.3-2]; "U/+" is not "u/+" [MQTT-3.10.4-1]
				if want := []byte{0x11, 0x00, 0x11}; !bytes.Equal(u.Codes, want) {
					t.Fatalf("UNSUBACK codes % x, want % x", u.Codes, want)
				}
			} else if len(u.Codes) != 0 {
				t.Fatalf("3.1.1 UNSUBACK with a payload % x", u.Codes)
			}
			// u/a is gone, u/+ still there: one copy at QoS 1 [MQTT-3.10.4-1] [MQTT-3.10.4-2] [MQTT-3.10.4-1@3.1.1] [MQTT-3.10.4-2@3.1.1]
			c.Send(mqtttest.Unsubscribe(v, 2, nil, "u/+"))
			c.ExpectSuback(mqtttest.UNSUBACK)
			pub := outClient(t, srv.TCPAddr, v, "unsub-pub")
			outPublishAcked(pub, mqtttest.Publish{Topic: "u/a", QoS: 1, PacketID: 1, Payload: []byte("x")})
			c.Quiet(50 * time.Millisecond)
		})
	}
}

// Overlapping subscriptions of one client: 3.1.1 delivers one copy at the
// highest QoS granted; 5 delivers one copy (as mochi does) at the highest
// QoS carrying the identifier of every matching subscription that has one.
func TestOverlappingSubscriptions(t *testing.T) {
	t.Parallel()
	srv := outBroker(t, false, nil)
	pub := outClient(t, srv.TCPAddr, 5, "ov-pub")
	t.Run("3.1.1", func(t *testing.T) {
		c := outClient(t, srv.TCPAddr, 4, "ov-3")
		c.Subscribe(1, mqtttest.Sub{Filter: "ov3/#", Options: 0}, mqtttest.Sub{Filter: "ov3/+", Options: 2}, mqtttest.Sub{Filter: "ov3/a", Options: 1})
		outPublishAcked(pub, mqtttest.Publish{Topic: "ov3/a", QoS: 2, PacketID: 1, Payload: []byte("x")})
		m := c.ExpectPublish()
		if m.QoS != 2 { // [MQTT-3.3.5-1@3.1.1]
			t.Errorf("QoS %d, want 2", m.QoS)
		}
		c.SendAck(mqtttest.PUBREC, m.PacketID)
		c.ExpectAck(mqtttest.PUBREL)
		c.SendAck(mqtttest.PUBCOMP, m.PacketID)
		if got := c.Ping(); len(got) > 0 {
			t.Fatalf("more than one copy: %v", got)
		}
	})
	t.Run("5", func(t *testing.T) {
		c := outClient(t, srv.TCPAddr, 5, "ov-5")
		for i, s := range []struct {
			filter string
			qos    byte
			id     int
		}{{"ov5/#", 0, 7}, {"ov5/+", 1, 0}, {"ov5/a", 1, 300}, {"ov5/b", 2, 9}} {
			var props [][]byte
			if s.id > 0 {
				props = append(props, mqtttest.VarInt(mqtttest.PropSubscriptionID, s.id))
			}
			c.Send(mqtttest.Subscribe(5, uint16(i+1), props, mqtttest.Sub{Filter: s.filter, Options: s.qos}))
			c.ExpectSuback(mqtttest.SUBACK)
		}
		outPublishAcked(pub, mqtttest.Publish{Topic: "ov5/a", QoS: 2, PacketID: 2, Payload: []byte("x")})
		m := c.ExpectPublish()
		c.SendAck(mqtttest.PUBACK, m.PacketID)
		if m.QoS != 1 { // [MQTT-3.3.4-2] [MQTT-3.8.4-8]
			t.Errorf("QoS %d, want 1", m.QoS)
		}
		var ids []int
		for _, p := range m.Props.All(mqtttest.PropSubscriptionID) {
			ids = append(ids, int(p.Value))
		}
		slices.Sort(ids)
		if fmt.Sprint(ids) != "[7 300]" { // [MQTT-3.3.4-3] [MQTT-3.3.4-4]
			t.Errorf("subscription identifiers %v, want [7 300]", ids)
		}
		if got := c.Ping(); len(got) > 0 {
			t.Fatalf("more than one copy: %v", got)
		}
	})
}

// No Local: the broker does not send a client its own messages on a
// subscription with No Local set [MQTT-3.8.3-3]. No Local on a shared
// subscription is a protocol error [MQTT-3.8.3-4]: mochi answered it with
// SUBACK reason 0x82, not a SUBACK reason code [MQTT-3.9.3-2].
func TestNoLocal(t *testing.T) {
	t.Parallel()
	srv := outBroker(t, false, nil)
	c := outClient(t, srv.TCPAddr, 5, "nl")
	other := outClient(t, srv.TCPAddr, 5, "nl-other")
	c.Subscribe(1, mqtttest.Sub{Filter: "nl/#", Options: 0x04 | 1})
	other.Subscribe(1, mqtttest.Sub{Filter: "nl/#", Options: 0x04 | 1})
	outPublishAcked(c, mqtttest.Publish{Topic: "nl/a", QoS: 1, PacketID: 1, Payload: []byte("own")})
	m := other.ExpectPublish() // someone else's No Local does not stop it
	other.SendAck(mqtttest.PUBACK, m.PacketID)
	c.Quiet(50 * time.Millisecond)
}

// Shared subscriptions: each message goes to one member of the group, at
// the QoS granted to that member [MQTT-4.8.2-3]; a shared subscription
// gets no retained messages when it is made (4.8.2, non-normative).
func TestSharedSubscriptions(t *testing.T) {
	t.Parallel()
	srv := outBroker(t, false, nil)
	pub := outClient(t, srv.TCPAddr, 5, "sh-pub")
	outPublishAcked(pub, mqtttest.Publish{Topic: "sh/r", QoS: 1, PacketID: 1, Retain: true, Payload: []byte("retained")})
	a := outClient(t, srv.TCPAddr, 5, "sh-a")
	b := outClient(t, srv.TCPAddr, 4, "sh-b")
	a.Subscribe(1, mqtttest.Sub{Filter: "$share/g/sh/#", Options: 2})
	b.Subscribe(1, mqtttest.Sub{Filter: "$share/g/sh/#", Options: 0})
	if got := a.Ping(); len(got) > 0 {
		t.Fatalf("retained message sent on a shared subscribe: %v", got)
	}
	if got := b.Ping(); len(got) > 0 {
		t.Fatalf("retained message sent on a shared subscribe: %v", got)
	}
	const n = 6
	for i := range n {
		outPublishAcked(pub, mqtttest.Publish{Topic: "sh/x", QoS: 2, PacketID: uint16(i + 2), Payload: []byte{byte(i)}})
	}
	seen := map[byte]int{}
	for _, c := range []*mqtttest.Conn{a, b} {
		for _, p := range c.Drain(100 * time.Millisecond) {
			m, err := p.Publish(c.Version)
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			seen[m.Payload[0]]++
			want := byte(2)
			if c == b {
				want = 0
			}
			if m.QoS != want {
				t.Errorf("member granted QoS %d got QoS %d [MQTT-4.8.2-3]", want, m.QoS)
			}
			if m.QoS == 2 {
				c.SendAck(mqtttest.PUBREC, m.PacketID)
				c.ExpectAck(mqtttest.PUBREL)
				c.SendAck(mqtttest.PUBCOMP, m.PacketID)
			}
		}
	}
	for i := range n {
		if seen[byte(i)] != 1 {
			t.Errorf("message %d delivered %d times in the group", i, seen[byte(i)])
		}
	}
}

func TestNoLocalOnSharedSubscription(t *testing.T) {
	t.Parallel()
	srv := outBroker(t, false, nil)
	c := outClient(t, srv.TCPAddr, 5, "nls")
	c.Send(mqtttest.Subscribe(5, 1, nil, mqtttest.Sub{Filter: "nls/a", Options: 1}, mqtttest.Sub{Filter: "$share/g/nls/#", Options: 0x04 | 1}))
	if r := c.ExpectClosed(); r != 0x82 {
		t.Fatalf("DISCONNECT reason %d, want 0x82", r)
	}
}

// A client's own message matching both a No Local subscription and one
// without it is still delivered through the latter: the message belongs in
// the session of every client with a matching subscription [MQTT-4.5.0-1]
// and No Local only withholds it on its own subscription [MQTT-3.8.3-3].
func TestNoLocalOverlapping(t *testing.T) {
	t.Parallel()
	srv := outBroker(t, false, nil)
	c := outClient(t, srv.TCPAddr, 5, "nlo")
	c.Subscribe(1, mqtttest.Sub{Filter: "nlo/#", Options: 0x04 | 1}, mqtttest.Sub{Filter: "nlo/a", Options: 1})
	c.Publish(mqtttest.Publish{Topic: "nlo/a", QoS: 1, PacketID: 1, Payload: []byte("own")})
	var got []mqtttest.Message
	for _, p := range c.Ping() {
		if p.Type() == mqtttest.PUBLISH {
			m, _ := p.Publish(5)
			got = append(got, m)
		}
	}
	if len(got) == 0 {
		got = append(got, c.ExpectPublish())
	}
	if len(got) != 1 || string(got[0].Payload) != "own" {
		t.Fatalf("deliveries %+v", got)
	}
}

// A QoS 1 delivery already started on a filter the client then removes is
// still completed: the message stays in the session and is resent
// [MQTT-3.10.4-3] [MQTT-3.10.4-3@3.1.1].
func TestUnsubscribeCompletesStartedDeliveries(t *testing.T) {
	t.Parallel()
	for _, ver := range outVersions {
		t.Run(ver.name, func(t *testing.T) {
			t.Parallel()
			v := ver.v
			srv := outBroker(t, false, nil)
			sub, _ := outSession(t, srv.TCPAddr, v, "unsub-started")
			sub.Subscribe(1, mqtttest.Sub{Filter: "us/#", Options: 1})
			pub := outClient(t, srv.TCPAddr, v, "unsub-started-pub")
			outPublishAcked(pub, mqtttest.Publish{Topic: "us/a", QoS: 1, PacketID: 1, Payload: []byte("a")})
			m := sub.ExpectPublish()
			sub.Send(mqtttest.Unsubscribe(v, 2, nil, "us/#"))
			sub.ExpectSuback(mqtttest.UNSUBACK)
			outCut(sub)
			sub, _ = outSession(t, srv.TCPAddr, v, "unsub-started")
			again := sub.ExpectPublish()
			if again.PacketID != m.PacketID || string(again.Payload) != "a" {
				t.Fatalf("resend %+v", again)
			}
			sub.SendAck(mqtttest.PUBACK, again.PacketID)
			outPublishAcked(pub, mqtttest.Publish{Topic: "us/a", QoS: 1, PacketID: 2, Payload: []byte("b")})
			if got := sub.Ping(); len(got) > 0 { // [MQTT-3.10.4-2]
				t.Fatalf("after unsubscribing: %v", got)
			}
		})
	}
}

// A shared-subscription message refused by the member it went to (PUBACK
// 0x80) is dropped, not offered to another member [MQTT-4.8.2-6], and not
// sent again [MQTT-4.4.0-2].
func TestSharedSubscriptionRefusedMessage(t *testing.T) {
	t.Parallel()
	srv := outBroker(t, false, nil)
	pub := outClient(t, srv.TCPAddr, 5, "shr-pub")
	a := outClient(t, srv.TCPAddr, 5, "shr-a")
	b := outClient(t, srv.TCPAddr, 5, "shr-b")
	a.Subscribe(1, mqtttest.Sub{Filter: "$share/g/shr", Options: 1})
	b.Subscribe(1, mqtttest.Sub{Filter: "$share/g/shr", Options: 1})
	outPublishAcked(pub, mqtttest.Publish{Topic: "shr", QoS: 1, PacketID: 1, Payload: []byte("x")})
	var got, other *mqtttest.Conn
	var m mqtttest.Message
	for _, c := range []*mqtttest.Conn{a, b} {
		switch ps := c.Drain(100 * time.Millisecond); len(ps) {
		case 0:
			other = c
		case 1:
			got = c
			m, _ = ps[0].Publish(5)
		default:
			t.Fatalf("member received %v", ps)
		}
	}
	if got == nil || other == nil {
		t.Fatal("the message did not go to exactly one member")
	}
	got.Send(mqtttest.Ack(5, mqtttest.PUBACK, m.PacketID, 0x80))
	if p := got.Ping(); len(p) > 0 {
		t.Fatalf("refused message sent again: %v", p)
	}
	other.Quiet(100 * time.Millisecond)
}

// A subscription the ACL refuses gets its failure code in the SUBACK, in
// its place, while the others are granted: 0x87 in MQTT 5, 0x80 in 3.1.1
// [MQTT-3.8.4-7] [MQTT-3.9.3-1] [MQTT-3.9.3-2] [MQTT-3.8.4-5@3.1.1]
// [MQTT-3.9.3-1@3.1.1] [MQTT-3.9.3-2@3.1.1]. A refused filter gets nothing.
func TestSubackNotAuthorized(t *testing.T) {
	t.Parallel()
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	users := filepath.Join(t.TempDir(), "users.yaml")
	file := fmt.Sprintf("users:\n  acl:\n    password: %q\n    publish: [\"#\"]\n    subscribe: [\"acl/ok/#\"]\n", hash)
	if err := os.WriteFile(users, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := outBroker(t, false, func(c *broker.Config) { c.Auth.UsersFile = users })
	for _, ver := range outVersions {
		t.Run(ver.name, func(t *testing.T) {
			v := ver.v
			c := mqtttest.Dial(t, srv.TCPAddr, v)
			c.MustConnect(mqtttest.Connect{ClientID: "acl-" + ver.name, Clean: true, Keepalive: 30,
				Username: mqtttest.Ptr("acl"), Password: mqtttest.Ptr("pw")})
			c.Send(mqtttest.Subscribe(v, 1, nil, mqtttest.Sub{Filter: "acl/ok/x", Options: 1}, mqtttest.Sub{Filter: "acl/no", Options: 1}))
			s := c.ExpectSuback(mqtttest.SUBACK)
			want := []byte{1, 0x87}
			if v != 5 {
				want = []byte{1, 0x80}
			}
			if !bytes.Equal(s.Codes, want) {
				t.Fatalf("SUBACK codes % x, want % x", s.Codes, want)
			}
			c.Publish(mqtttest.Publish{Topic: "acl/no", QoS: 0, Payload: []byte("x")})
			if got := c.Ping(); len(got) > 0 {
				t.Fatalf("refused filter delivered %v", got)
			}
		})
	}
}

// A QoS 2 message delivered through a shared subscription and cut off by a
// lost connection is completed with that member when it reconnects
// [MQTT-4.8.2-4]; if the member's session ends instead, no other member
// gets it [MQTT-4.8.2-5].
func TestSharedSubscriptionQoS2AcrossReconnect(t *testing.T) {
	t.Parallel()
	for _, keep := range []bool{true, false} {
		t.Run(fmt.Sprintf("session kept=%v", keep), func(t *testing.T) {
			t.Parallel()
			srv := outBroker(t, false, nil)
			var a *mqtttest.Conn
			if keep {
				a, _ = outSession(t, srv.TCPAddr, 5, "sh2-a")
			} else {
				a = outClient(t, srv.TCPAddr, 5, "sh2-a")
			}
			a.Subscribe(1, mqtttest.Sub{Filter: "$share/g/sh2", Options: 2})
			pub := outClient(t, srv.TCPAddr, 5, "sh2-pub")
			outPublishAcked(pub, mqtttest.Publish{Topic: "sh2", QoS: 2, PacketID: 1, Payload: []byte("x")})
			m := a.ExpectPublish()
			b := outClient(t, srv.TCPAddr, 5, "sh2-b")
			b.Subscribe(1, mqtttest.Sub{Filter: "$share/g/sh2", Options: 2})
			outGone(t, srv, a, "sh2-a", true)
			if !keep {
				b.Quiet(100 * time.Millisecond)
				return
			}
			a, _ = outSession(t, srv.TCPAddr, 5, "sh2-a")
			again := a.ExpectPublish()
			if again.PacketID != m.PacketID || !again.Dup {
				t.Fatalf("resend %+v", again)
			}
			a.SendAck(mqtttest.PUBREC, again.PacketID)
			a.ExpectAck(mqtttest.PUBREL)
			a.SendAck(mqtttest.PUBCOMP, again.PacketID)
			b.Quiet(50 * time.Millisecond)
		})
	}
}

// A retained message sent because a subscription was made carries that
// subscription's identifier [MQTT-3.3.4-3]; mochi sent it without.
func TestSubscriptionIdentifierOnRetained(t *testing.T) {
	t.Parallel()
	srv := outBroker(t, false, nil)
	pub := outClient(t, srv.TCPAddr, 5, "sir-pub")
	outPublishAcked(pub, mqtttest.Publish{Topic: "sir/a", QoS: 1, PacketID: 1, Retain: true, Payload: []byte("x")})
	c := outClient(t, srv.TCPAddr, 5, "sir")
	for i, qos := range []byte{0, 1} {
		c.Send(mqtttest.Subscribe(5, uint16(i+1), [][]byte{mqtttest.VarInt(mqtttest.PropSubscriptionID, 42)}, mqtttest.Sub{Filter: "sir/#", Options: qos}))
		c.ExpectSuback(mqtttest.SUBACK)
		m := c.ExpectPublish()
		if m.QoS > 0 {
			c.SendAck(mqtttest.PUBACK, m.PacketID)
		}
		ids := m.Props.All(mqtttest.PropSubscriptionID)
		if !m.Retain || len(ids) != 1 || ids[0].Value != 42 {
			t.Fatalf("retained message at QoS %d: retain %v, subscription identifiers %+v, want [42]", qos, m.Retain, ids)
		}
	}
}

// A filter starting with a wildcard never matches a topic starting with $,
// also for the retained messages sent when it is subscribed [MQTT-4.7.2-1]
// [MQTT-4.7.2-1@3.1.1]; mochi's retained scan excluded only $SYS.
func TestRetainedDollarTopicsNotMatchedByWildcards(t *testing.T) {
	t.Parallel()
	for _, ver := range outVersions {
		t.Run(ver.name, func(t *testing.T) {
			t.Parallel()
			v := ver.v
			srv := outBroker(t, false, nil)
			pub := outClient(t, srv.TCPAddr, v, "dollar-pub")
			outPublishAcked(pub, mqtttest.Publish{Topic: "$dollar/bar", QoS: 1, PacketID: 1, Retain: true, Payload: []byte("$")})
			outPublishAcked(pub, mqtttest.Publish{Topic: "plain/bar", QoS: 1, PacketID: 2, Retain: true, Payload: []byte("p")})
			c := outClient(t, srv.TCPAddr, v, "dollar")
			c.Subscribe(1, mqtttest.Sub{Filter: "#", Options: 1}, mqtttest.Sub{Filter: "+/bar", Options: 1})
			var got []string
			for len(got) < 2 {
				m := c.ExpectPublish()
				c.SendAck(mqtttest.PUBACK, m.PacketID)
				got = append(got, m.Topic)
			}
			if got[0] != "plain/bar" || got[1] != "plain/bar" {
				t.Fatalf("retained deliveries %v, want plain/bar twice", got)
			}
			// An explicit $ filter gets it.
			c.Subscribe(2, mqtttest.Sub{Filter: "$dollar/#", Options: 1})
			if m := c.ExpectPublish(); m.Topic != "$dollar/bar" {
				t.Fatalf("$dollar/# got %q", m.Topic)
			} else {
				c.SendAck(mqtttest.PUBACK, m.PacketID)
			}
			if p := c.Ping(); len(p) > 0 {
				t.Fatalf("then %v", p)
			}
		})
	}
}
