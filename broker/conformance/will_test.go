package conformance_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/courier-mqtt/courier/broker/brokertest"
	mt "github.com/courier-mqtt/courier/internal/mqtttest"
)

// lcCase is one row of a lifecycle table: the rules it proves and a test
// run on its own broker.
type lcCase struct {
	name string
	rule string
	run  func(t *testing.T, srv *brokertest.Server)
}

// lcRun runs each row in parallel on a fresh broker.
func lcRun(t *testing.T, cases []lcCase, opts ...brokertest.Option) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, lcStart(t, opts...))
		})
	}
}

// lcWillConnect connects id with a Will on topic "will/<id>" (payload
// "gone <id>"). sessionExpiry < 0 leaves the property out.
func lcWillConnect(t *testing.T, srv *brokertest.Server, v byte, id string, clean bool, sessionExpiry int64, will mt.Will) *mt.Conn {
	t.Helper()
	if will.Topic == "" {
		will.Topic = "will/" + id
	}
	if will.Payload == nil {
		will.Payload = []byte("gone " + id)
	}
	pk := mt.Connect{ClientID: id, Clean: clean, Keepalive: 30, Will: &will}
	if sessionExpiry >= 0 {
		pk.Props = append(pk.Props, mt.Int(mt.PropSessionExpiry, uint32(sessionExpiry)))
	}
	c := mt.Dial(t, srv.TCPAddr, v)
	c.MustConnect(pk)
	return c
}

// lcDelay is a Will Delay Interval property.
func lcDelay(seconds uint32) [][]byte { return [][]byte{mt.Int(mt.PropWillDelay, seconds)} }

// lcCut closes the client's side of the connection without DISCONNECT.
func lcCut(c *mt.Conn) { _ = c.C.Close() }

// TestWill covers 3.1.2.5 Will Flag, 3.1.2.6-7 Will QoS and Retain,
// 3.1.3.2 Will Properties and 3.14.4 DISCONNECT actions (5.0) and 3.1.2.5,
// 3.14.4 (3.1.1).
func TestWill(t *testing.T) {
	closeWith := func(v byte) lcCase {
		return lcCase{
			name: "network failure publishes the Will/" + lcVersions[v],
			rule: map[byte]string{5: "[MQTT-3.1.2-8]", 4: "[MQTT-3.1.2-8@3.1.1]", 3: "[MQIsdp-7]"}[v],
			run: func(t *testing.T, srv *brokertest.Server) {
				w := lcWatch(t, srv, "will/#")
				c := lcWillConnect(t, srv, v, "dies", true, -1, mt.Will{QoS: 1})
				lcCut(c)
				if m := lcExpectMessage(t, w, "will/dies", "gone dies"); m.QoS != 1 {
					t.Fatalf("Will QoS 1 delivered at QoS %d", m.QoS)
				}
			},
		}
	}
	normalDisconnect := func(v byte, rule string) lcCase {
		return lcCase{
			name: "DISCONNECT discards the Will/" + lcVersions[v],
			rule: rule,
			run: func(t *testing.T, srv *brokertest.Server) {
				w := lcWatch(t, srv, "will/#")
				c := lcWillConnect(t, srv, v, "leaves", true, -1, mt.Will{})
				c.Send(mt.Disconnect(v, 0x00))
				if r := c.ExpectClosed(); r != -1 {
					t.Fatalf("server answered DISCONNECT with DISCONNECT %#x", r)
				}
				lcMarker(t, srv, w, "will/leaves")
			},
		}
	}
	retained := func(v byte, retain bool, rule string) lcCase {
		return lcCase{
			name: map[bool]string{true: "Will Retain 1 is retained/", false: "Will Retain 0 is not retained/"}[retain] + lcVersions[v],
			rule: rule,
			run: func(t *testing.T, srv *brokertest.Server) {
				w := lcWatch(t, srv, "will/#")
				c := lcWillConnect(t, srv, v, "r", true, -1, mt.Will{Retain: retain})
				lcCut(c)
				lcExpectMessage(t, w, "will/r", "gone r")
				late := lcDial(t, srv, 5, "late")
				late.Subscribe(1, mt.Sub{Filter: "will/r"})
				if !retain {
					lcMarker(t, srv, late, "will/r")
					return
				}
				if m := lcExpectMessage(t, late, "will/r", "gone r"); !m.Retain {
					t.Fatal("retained Will delivered without RETAIN to a new subscription")
				}
			},
		}
	}

	lcRun(t, []lcCase{
		closeWith(5), closeWith(4), closeWith(3),
		{
			name: "no Will Flag, no Will/3.1.1",
			rule: "[MQTT-3.1.2-12@3.1.1]",
			run: func(t *testing.T, srv *brokertest.Server) {
				w := lcWatch(t, srv, "#")
				lcCut(lcDial(t, srv, 4, "plain"))
				lcMarker(t, srv, w, "will/plain")
			},
		},
		normalDisconnect(5, "[MQTT-3.14.4-3] [MQTT-3.1.2-10]"),
		normalDisconnect(4, "[MQTT-3.14.4-3@3.1.1] [MQTT-3.1.2-10@3.1.1]"),
		{
			name: "DISCONNECT 0x04 publishes the Will",
			rule: "[MQTT-3.1.2-8]",
			run: func(t *testing.T, srv *brokertest.Server) {
				w := lcWatch(t, srv, "will/#")
				c := lcWillConnect(t, srv, 5, "asks", true, -1, mt.Will{})
				c.Send(mt.Disconnect(5, 0x04))
				c.ExpectClosed()
				lcExpectMessage(t, w, "will/asks", "gone asks")
			},
		},
		{
			name: "Will properties are forwarded unaltered",
			rule: "[MQTT-3.3.2-4] [MQTT-3.3.2-15] [MQTT-3.3.2-16] [MQTT-3.3.2-17] [MQTT-3.3.2-18] [MQTT-3.3.2-20] [MQTT-3.1.3-10] [MQTT-3.3.2-6]",
			run: func(t *testing.T, srv *brokertest.Server) {
				w := lcWatch(t, srv, "will/#")
				c := lcWillConnect(t, srv, 5, "props", true, -1, mt.Will{QoS: 1, Props: [][]byte{
					mt.Byte(mt.PropPayloadFormat, 1),
					mt.Int(mt.PropMessageExpiry, 100),
					mt.String(mt.PropContentType, "text/plain"),
					mt.String(mt.PropResponseTopic, "reply/props"),
					mt.Binary(mt.PropCorrelationData, []byte{0, 1, 2}),
					mt.User("z", "1"), mt.User("a", "2"), mt.User("z", "3"),
				}})
				lcCut(c)
				m := lcExpectMessage(t, w, "will/props", "gone props")
				if p := lcProp(t, m.Props, mt.PropPayloadFormat); p != 1 {
					t.Errorf("payload format %d", p)
				}
				if e := lcProp(t, m.Props, mt.PropMessageExpiry); e == 0 || e > 100 {
					t.Errorf("message expiry %d, want the Will's 100 less its wait", e)
				}
				if ct, _ := m.Props.Get(mt.PropContentType); ct.Str != "text/plain" {
					t.Errorf("content type %q", ct.Str)
				}
				if rt, _ := m.Props.Get(mt.PropResponseTopic); rt.Str != "reply/props" {
					t.Errorf("response topic %q", rt.Str)
				}
				if cd, _ := m.Props.Get(mt.PropCorrelationData); !bytes.Equal([]byte(cd.Str), []byte{0, 1, 2}) {
					t.Errorf("correlation data %x", cd.Str)
				}
				var users []string
				for _, u := range m.Props.All(mt.PropUserProperty) {
					users = append(users, u.Key+"="+u.Str)
				}
				if got := strings.Join(users, " "); got != "z=1 a=2 z=3" {
					t.Errorf("user properties %q, want z=1 a=2 z=3 in order", got)
				}
			},
		},
		{
			name: "a Will without Message Expiry gets none",
			rule: "[MQTT-3.3.2-6]",
			run: func(t *testing.T, srv *brokertest.Server) {
				w := lcWatch(t, srv, "will/#")
				c := lcWillConnect(t, srv, 5, "noexp", true, -1, mt.Will{QoS: 1})
				lcCut(c)
				if m := lcExpectMessage(t, w, "will/noexp", "gone noexp"); m.Props.Has(mt.PropMessageExpiry) {
					t.Fatalf("Message Expiry Interval added: %+v", m.Props)
				}
			},
		},
		retained(5, false, "[MQTT-3.1.2-14]"),
		retained(5, true, "[MQTT-3.1.2-15]"),
		retained(4, false, "[MQTT-3.1.2-16@3.1.1]"),
		retained(4, true, "[MQTT-3.1.2-17@3.1.1]"),
	})
}

// TestWillDelay covers 3.1.3.2.2 Will Delay Interval against 3.1.2.11.2
// Session Expiry Interval, reconnection and session takeover (5.0).
func TestWillDelay(t *testing.T) {
	lcRun(t, []lcCase{
		{
			name: "Session Expiry 0 ends the session at disconnect: the Will goes then",
			rule: "[MQTT-3.1.2-8]",
			run: func(t *testing.T, srv *brokertest.Server) {
				w := lcWatch(t, srv, "will/#")
				c := lcWillConnect(t, srv, 5, "zero", true, -1, mt.Will{Props: lcDelay(3600)})
				lcCut(c)
				lcExpectMessage(t, w, "will/zero", "gone zero")
			},
		},
		{
			name: "a session ending before the delay sends the Will",
			rule: "[MQTT-3.1.2-8]",
			run: func(t *testing.T, srv *brokertest.Server) {
				w := lcWatch(t, srv, "will/#")
				c := lcWillConnect(t, srv, 5, "short", true, 1, mt.Will{Props: lcDelay(3600)})
				lcCut(c)
				lcExpectMessage(t, w, "will/short", "gone short")
			},
		},
		{
			name: "DISCONNECT setting Session Expiry 0 sends a delayed Will at once",
			rule: "[MQTT-3.1.2-8]",
			run: func(t *testing.T, srv *brokertest.Server) {
				w := lcWatch(t, srv, "will/#")
				c := lcWillConnect(t, srv, 5, "ends", true, 3600, mt.Will{Props: lcDelay(3600)})
				c.Send(mt.Disconnect(5, 0x04, mt.Int(mt.PropSessionExpiry, 0)))
				c.ExpectClosed()
				lcExpectMessage(t, w, "will/ends", "gone ends")
			},
		},
		{
			name: "the Will waits for its delay",
			rule: "[MQTT-3.1.2-7] [MQTT-3.1.2-8]",
			run: func(t *testing.T, srv *brokertest.Server) {
				w := lcWatch(t, srv, "will/#")
				c := lcWillConnect(t, srv, 5, "waits", true, 60, mt.Will{Props: lcDelay(1)})
				lcCut(c)
				w.Quiet(500 * time.Millisecond) // a negative check, bounded: half the delay
				lcExpectMessage(t, w, "will/waits", "gone waits")
			},
		},
		{
			name: "resuming the session within the delay cancels the Will",
			rule: "[MQTT-3.1.3-9]",
			run: func(t *testing.T, srv *brokertest.Server) {
				w := lcWatch(t, srv, "will/#")
				c := lcWillConnect(t, srv, 5, "back", true, 60, mt.Will{Props: lcDelay(2)})
				lcCut(c)
				again := mt.Dial(t, srv.TCPAddr, 5)
				if ca := again.MustConnect(mt.Connect{ClientID: "back", Keepalive: 30, Props: [][]byte{mt.Int(mt.PropSessionExpiry, 60)}}); !ca.SessionPresent {
					t.Fatal("session not resumed")
				}
				w.Quiet(2500 * time.Millisecond) // past the delay (2 s, so that a slow reconnect still comes first)
			},
		},
		{
			name: "a clean start within the delay ends the session: the Will goes then",
			rule: "[MQTT-3.1.2-8]",
			run: func(t *testing.T, srv *brokertest.Server) {
				w := lcWatch(t, srv, "will/#")
				c := lcWillConnect(t, srv, 5, "fresh", true, 3600, mt.Will{Props: lcDelay(3600)})
				lcCut(c)
				again := mt.Dial(t, srv.TCPAddr, 5)
				again.MustConnect(mt.Connect{ClientID: "fresh", Clean: true, Keepalive: 30})
				lcExpectMessage(t, w, "will/fresh", "gone fresh")
			},
		},
		{
			name: "takeover with clean start sends the old connection's delayed Will",
			rule: "[MQTT-3.1.2-8] [MQTT-3.1.4-3]",
			run: func(t *testing.T, srv *brokertest.Server) {
				w := lcWatch(t, srv, "will/#")
				old := lcWillConnect(t, srv, 5, "tk", true, 3600, mt.Will{Props: lcDelay(3600)})
				nu := mt.Dial(t, srv.TCPAddr, 5)
				nu.MustConnect(mt.Connect{ClientID: "tk", Clean: true, Keepalive: 30})
				if r := old.ExpectClosed(); r != 0x8E {
					t.Fatalf("old connection: DISCONNECT %#x, want 0x8E", r)
				}
				lcExpectMessage(t, w, "will/tk", "gone tk")
			},
		},
		{
			name: "takeover resuming the session cancels the old connection's delayed Will",
			rule: "[MQTT-3.1.3-9] [MQTT-3.1.4-3]",
			run: func(t *testing.T, srv *brokertest.Server) {
				w := lcWatch(t, srv, "will/#")
				old := lcWillConnect(t, srv, 5, "tk", true, 60, mt.Will{Props: lcDelay(1)})
				nu := mt.Dial(t, srv.TCPAddr, 5)
				if ca := nu.MustConnect(mt.Connect{ClientID: "tk", Keepalive: 30, Props: [][]byte{mt.Int(mt.PropSessionExpiry, 60)}}); !ca.SessionPresent {
					t.Fatal("session not resumed")
				}
				if r := old.ExpectClosed(); r != 0x8E {
					t.Fatalf("old connection: DISCONNECT %#x, want 0x8E", r)
				}
				w.Quiet(1500 * time.Millisecond) // 1.5 x the delay
			},
		},
		{
			name: "takeover sends the old connection's undelayed Will",
			rule: "[MQTT-3.1.2-8] [MQTT-3.1.4-3]",
			run: func(t *testing.T, srv *brokertest.Server) {
				w := lcWatch(t, srv, "will/#")
				old := lcWillConnect(t, srv, 5, "tk", true, 60, mt.Will{})
				nu := mt.Dial(t, srv.TCPAddr, 5)
				nu.MustConnect(mt.Connect{ClientID: "tk", Keepalive: 30, Props: [][]byte{mt.Int(mt.PropSessionExpiry, 60)}})
				old.ExpectClosed()
				lcExpectMessage(t, w, "will/tk", "gone tk")
			},
		},
		{
			name: "takeover sends the old connection's Will/3.1.1",
			rule: "[MQTT-3.1.4-2@3.1.1] [MQTT-3.1.2-8@3.1.1]",
			run: func(t *testing.T, srv *brokertest.Server) {
				w := lcWatch(t, srv, "will/#")
				old := lcWillConnect(t, srv, 4, "tk", false, -1, mt.Will{})
				nu := mt.Dial(t, srv.TCPAddr, 4)
				nu.MustConnect(mt.Connect{ClientID: "tk", Keepalive: 30})
				old.ExpectClosed()
				lcExpectMessage(t, w, "will/tk", "gone tk")
			},
		},
	})
}
