package conformance_test

import (
	"testing"

	"github.com/courier-mqtt/courier/broker"
	"github.com/courier-mqtt/courier/broker/brokertest"
	mt "github.com/courier-mqtt/courier/internal/mqtttest"
)

// lcPersist connects id with a persistent session (clean session 0 in 3.x,
// Session Expiry 60 in 5.0) and returns the CONNACK.
func lcPersist(t *testing.T, srv *brokertest.Server, v byte, id string) (*mt.Conn, mt.Connack) {
	t.Helper()
	c := mt.Dial(t, srv.TCPAddr, v)
	pk := mt.Connect{ClientID: id, Keepalive: 30}
	if v == 5 {
		pk.Props = [][]byte{mt.Int(mt.PropSessionExpiry, 60)}
	}
	return c, c.MustConnect(pk)
}

// TestConnack covers 3.2 CONNACK: Session Present, refusals and the
// properties the broker announces (5.0), and 3.2 CONNACK (3.1.1).
func TestConnack(t *testing.T) {
	sessionPresent := func(v byte, rule string) lcCase {
		return lcCase{
			name: "Session Present follows the stored session/" + lcVersions[v],
			rule: rule,
			run: func(t *testing.T, srv *brokertest.Server) {
				c, ca := lcPersist(t, srv, v, "sp")
				if ca.SessionPresent {
					t.Fatal("Session Present 1 for a session that did not exist")
				}
				c.Subscribe(1, mt.Sub{Filter: "sp/#", Options: 1})
				c.Send(mt.Disconnect(v, 0))
				c.ExpectClosed()
				if _, ca = lcPersist(t, srv, v, "sp"); !ca.SessionPresent {
					t.Fatal("Session Present 0 for a stored session")
				}
				clean := mt.Dial(t, srv.TCPAddr, v)
				if ca := clean.MustConnect(mt.Connect{ClientID: "sp", Clean: true, Keepalive: 30}); ca.SessionPresent {
					t.Fatal("Session Present 1 with a clean start")
				}
			},
		}
	}
	emptyID := func(v byte, rule string) lcCase {
		return lcCase{
			name: "an empty client id with a clean session is accepted/" + lcVersions[v],
			rule: rule,
			run: func(t *testing.T, srv *brokertest.Server) {
				c := mt.Dial(t, srv.TCPAddr, v)
				ca := c.MustConnect(mt.Connect{Clean: true, Keepalive: 30})
				c.Subscribe(1, mt.Sub{Filter: "anon/x", Options: 1})
				c.Send(mt.Publish{Version: v, Topic: "anon/x", Payload: []byte("hi")}.Encode())
				lcExpectMessage(t, c, "anon/x", "hi")
				if v != 5 {
					return
				}
				id, ok := ca.Props.Get(mt.PropAssignedClientID)
				if !ok || id.Str == "" {
					t.Fatalf("no Assigned Client Identifier in %+v", ca.Props)
				}
				other := mt.Dial(t, srv.TCPAddr, v)
				if id2, _ := other.MustConnect(mt.Connect{Clean: true, Keepalive: 30}).Props.Get(mt.PropAssignedClientID); id2.Str == id.Str {
					t.Fatalf("the same identifier %q assigned twice", id.Str)
				}
			},
		}
	}

	lcRun(t, []lcCase{
		sessionPresent(5, "[MQTT-3.2.2-2] [MQTT-3.2.2-3] [MQTT-3.1.2-4] [MQTT-3.1.2-5] [MQTT-3.1.2-6] [MQTT-3.1.4-5]"),
		sessionPresent(4, "[MQTT-3.2.2-1@3.1.1] [MQTT-3.2.2-2@3.1.1] [MQTT-3.2.2-3@3.1.1] [MQTT-3.1.4-4@3.1.1]"),
		emptyID(5, "[MQTT-3.2.2-16] [MQTT-3.1.3-6] [MQTT-3.1.3-7]"),
		emptyID(4, "[MQTT-3.1.3-6@3.1.1]"),
		{
			name: "the CONNACK flags' reserved bits are 0",
			rule: "[MQTT-3.2.2-1]",
			run: func(t *testing.T, srv *brokertest.Server) {
				c, _ := lcPersist(t, srv, 5, "flags")
				c.Send(mt.Disconnect(5, 0))
				c.ExpectClosed()
				for _, clean := range []bool{false, true} { // Session Present 1, then 0
					c = mt.Dial(t, srv.TCPAddr, 5)
					c.Send(mt.Connect{Version: 5, ClientID: "flags", Clean: clean, Keepalive: 30, Props: [][]byte{mt.Int(mt.PropSessionExpiry, 60)}}.Encode())
					if p := c.Expect(mt.CONNACK); p.Body[0]&0xFE != 0 {
						t.Fatalf("CONNACK flags %#x", p.Body[0])
					}
				}
			},
		},
		{
			name: "an empty client id without a clean session is rejected with 0x02/3.1.1",
			rule: "[MQTT-3.1.3-8@3.1.1] [MQTT-3.1.3-9@3.1.1] [MQTT-3.2.2-4@3.1.1] [MQTT-3.2.2-5@3.1.1]",
			run: func(t *testing.T, srv *brokertest.Server) {
				c := mt.Dial(t, srv.TCPAddr, 4)
				ca := c.Connect(mt.Connect{Keepalive: 30})
				if ca.Reason != 0x02 || ca.SessionPresent {
					t.Fatalf("CONNACK %+v, want return code 0x02 and Session Present 0", ca)
				}
				c.ExpectClosed()
			},
		},
		{
			name: "the CONNACK comes before the session's queued messages",
			rule: "[MQTT-3.2.0-1] [MQTT-3.1.2-5]",
			run: func(t *testing.T, srv *brokertest.Server) {
				lcConnackFirst(t, srv, 5)
			},
		},
		{
			name: "the CONNACK comes before the session's queued messages/3.1.1",
			rule: "[MQTT-3.2.0-1@3.1.1] [MQTT-3.1.2-5@3.1.1] [MQTT-3.1.2-4@3.1.1]",
			run: func(t *testing.T, srv *brokertest.Server) {
				lcConnackFirst(t, srv, 4)
			},
		},
		{
			name: "nothing sent after a refused CONNECT is processed",
			rule: "[MQTT-3.1.4-6]",
			run: func(t *testing.T, srv *brokertest.Server) {
				w := lcWatch(t, srv, "after/#")
				c := mt.Dial(t, srv.TCPAddr, 5)
				c.Send(mt.Connect{ClientID: "x", Clean: true, Keepalive: 30, Props: [][]byte{mt.String(mt.PropAuthMethod, "SCRAM-SHA-1")}}.Encode(),
					mt.Publish{Topic: "after/refused", Payload: []byte("must not pass")}.Encode())
				if ca, err := c.Expect(mt.CONNACK).Connack(5); err != nil || ca.Reason != 0x8C {
					t.Fatalf("CONNACK %+v %v, want 0x8C", ca, err)
				}
				c.ExpectClosed()
				lcMarker(t, srv, w, "after/refused")
			},
		},
		{
			name: "nothing sent after a refused CONNECT is processed/3.1.1",
			rule: "[MQTT-3.1.4-5@3.1.1]",
			run: func(t *testing.T, srv *brokertest.Server) {
				w := lcWatch(t, srv, "after/#")
				c := mt.Dial(t, srv.TCPAddr, 4)
				c.Send(mt.Connect{Version: 4, Keepalive: 30}.Encode(), mt.Publish{Version: 4, Topic: "after/refused", Payload: []byte("must not pass")}.Encode())
				if ca, err := c.Expect(mt.CONNACK).Connack(4); err != nil || ca.Reason == 0 {
					t.Fatalf("CONNACK %+v %v, want a refusal", ca, err)
				}
				c.ExpectClosed()
				lcMarker(t, srv, w, "after/refused")
			},
		},
		{
			name: "a CONNACK leaves out its Reason String beyond the client's Maximum Packet Size",
			rule: "[MQTT-3.2.2-19]",
			run: func(t *testing.T, srv *brokertest.Server) {
				for _, max := range []uint32{16, 256} {
					c := mt.Dial(t, srv.TCPAddr, 5)
					c.Send(mt.Connect{Version: 5, ClientID: "small", Clean: true, Keepalive: 30, Props: [][]byte{
						mt.Int(mt.PropMaximumPacketSize, max), mt.String(mt.PropAuthMethod, "SCRAM-SHA-1"),
					}}.Encode())
					p := c.Expect(mt.CONNACK)
					ca, err := p.Connack(5)
					if err != nil || ca.Reason != 0x8C {
						t.Fatalf("CONNACK %+v %v, want 0x8C", ca, err)
					}
					if n := len(p.Bytes()); uint32(n) > max {
						t.Fatalf("CONNACK of %d bytes for a client allowing %d", n, max)
					}
					if max == 256 && !ca.Props.Has(mt.PropReasonString) {
						t.Fatal("no Reason String even with room for it: the check above proves nothing")
					}
				}
			},
		},
		{
			name: "a refusing CONNACK has Session Present 0 and closes",
			rule: "[MQTT-3.2.2-6] [MQTT-3.2.2-7] [MQTT-3.2.2-8]",
			run: func(t *testing.T, srv *brokertest.Server) {
				lcPersist(t, srv, 5, "refused") // a stored session exists for the id
				c := mt.Dial(t, srv.TCPAddr, 5)
				ca := c.Connect(mt.Connect{ClientID: "refused", Keepalive: 30, Props: [][]byte{
					mt.Int(mt.PropSessionExpiry, 60), mt.String(mt.PropAuthMethod, "SCRAM-SHA-256"),
				}})
				if ca.Reason != 0x8C || ca.SessionPresent {
					t.Fatalf("CONNACK %+v, want 0x8C and Session Present 0", ca)
				}
				if r := c.ExpectClosed(); r != -1 {
					t.Fatalf("DISCONNECT %#x after a refusing CONNACK", r)
				}
			},
		},
	})
}

// lcConnackFirst queues a QoS 1 message for an offline session and checks
// that the reconnecting client gets the CONNACK first, then the message.
func lcConnackFirst(t *testing.T, srv *brokertest.Server, v byte) {
	c, _ := lcPersist(t, srv, v, "queued")
	c.Subscribe(1, mt.Sub{Filter: "q/#", Options: 1})
	c.Send(mt.Disconnect(v, 0))
	c.ExpectClosed()
	p := lcDial(t, srv, 5, "pub")
	p.Send(mt.Publish{Topic: "q/1", QoS: 1, PacketID: 1, Payload: []byte("while away")}.Encode())
	p.ExpectAck(mt.PUBACK)
	c, ca := lcPersist(t, srv, v, "queued") // MustConnect reads the first packet: it must be the CONNACK
	if !ca.SessionPresent {
		t.Fatal("session not resumed")
	}
	lcExpectMessage(t, c, "q/1", "while away")
}

// TestConnackProperties checks that what the broker announces in CONNACK
// matches what it then does (5.0, 3.2.2.3).
func TestConnackProperties(t *testing.T) {
	t.Parallel()
	srv := lcStart(t, brokertest.WithConfig(func(c *broker.Config) {
		c.Limits.ReceiveMaximum = 7
		c.Limits.MaxPacketSize = 4096
	}))
	c := mt.Dial(t, srv.TCPAddr, 5)
	ca := c.MustConnect(mt.Connect{ClientID: "props", Clean: true, Keepalive: 30})
	if rm := lcProp(t, ca.Props, mt.PropReceiveMaximum); rm != 7 {
		t.Errorf("Receive Maximum %d, want the configured 7", rm)
	}
	if mps := lcProp(t, ca.Props, mt.PropMaximumPacketSize); mps != 4096 {
		t.Errorf("Maximum Packet Size %d, want the configured 4096", mps)
	}
	// The Topic Alias Maximum announced is what the broker accepts: an alias
	// at the maximum works.
	tam := lcProp(t, ca.Props, mt.PropTopicAliasMaximum)
	if tam == 0 {
		t.Fatal("Topic Alias Maximum 0")
	}
	// Absent or 1, each of these says the feature is available; so it must be.
	for _, id := range []byte{mt.PropRetainAvailable, mt.PropWildcardAvailable, mt.PropSubIDAvailable, mt.PropSharedSubAvailable} {
		if p, ok := ca.Props.Get(id); ok && p.Value != 1 {
			t.Errorf("property %#x = %d, but the broker supports the feature", id, p.Value)
		}
	}
	// A broker supporting QoS 2 sends no Maximum QoS, or 2.
	if p, ok := ca.Props.Get(mt.PropMaximumQoS); ok && p.Value != 2 {
		t.Errorf("Maximum QoS %d", p.Value)
	}
	// [MQTT-3.1.2-28]: no Response Information unless the client asked.
	if ca.Props.Has(mt.PropResponseInfo) {
		t.Error("Response Information sent to a client that did not ask for it")
	}
	// [MQTT-4.12.0-6]: no Authentication Method unless the client sent one.
	if ca.Props.Has(mt.PropAuthMethod) {
		t.Error("Authentication Method in CONNACK of a CONNECT without one")
	}
	codes := c.Subscribe(1,
		mt.Sub{Filter: "p/+/x", Options: 2},
		mt.Sub{Filter: "$share/g/p/s", Options: 1},
	)
	if string(codes) != "\x02\x01" {
		t.Fatalf("SUBACK %x, want wildcard and shared subscriptions granted at 2 and 1", codes)
	}
	c.Send(mt.Subscribe(5, 2, [][]byte{mt.VarInt(mt.PropSubscriptionID, 9)}, mt.Sub{Filter: "p/id", Options: 1}))
	c.ExpectSuback(mt.SUBACK)
	c.Send(mt.Publish{Topic: "p/ret", Retain: true, Payload: []byte("kept")}.Encode())
	c.Send(mt.Subscribe(5, 3, nil, mt.Sub{Filter: "p/ret"}))
	c.ExpectSuback(mt.SUBACK)
	if m := lcExpectMessage(t, c, "p/ret", "kept"); !m.Retain {
		t.Error("retained message delivered without RETAIN")
	}
	// Sent with the top alias, then by the alias alone. [MQTT-3.3.2-12]
	c.Send(mt.Publish{Topic: "p/id", Props: [][]byte{mt.Short(mt.PropTopicAlias, uint16(tam))}, Payload: []byte("with id")}.Encode())
	c.Send(mt.Publish{Topic: "", Props: [][]byte{mt.Short(mt.PropTopicAlias, uint16(tam))}, Payload: []byte("by alias")}.Encode())
	m := lcExpectMessage(t, c, "p/id", "with id")
	if id := lcProp(t, m.Props, mt.PropSubscriptionID); id != 9 {
		t.Errorf("subscription identifier %d", id)
	}
	lcExpectMessage(t, c, "p/id", "by alias")
}
