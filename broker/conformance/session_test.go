package conformance_test

import (
	"testing"

	"github.com/courier-mqtt/courier/broker"
	"github.com/courier-mqtt/courier/broker/brokertest"
	mt "github.com/courier-mqtt/courier/internal/mqtttest"
)

// lcRaceRounds repeats a reconnect that races the broker's cleanup of the
// previous connection, so that a broker losing the race fails reliably.
const lcRaceRounds = 20

// lcSubscribed reports whether c's session still holds a subscription to
// topic: c subscribes to "mark" (QoS 0); a publisher sends topic, then
// "mark". mochi routes one publisher's messages in order, so a live
// subscription delivers topic before the mark.
func lcSubscribed(t *testing.T, srv *brokertest.Server, c *mt.Conn, topic string) bool {
	t.Helper()
	c.Subscribe(99, mt.Sub{Filter: "mark"})
	p := lcDial(t, srv, 5, "prober")
	p.Send(mt.Publish{Topic: topic, Payload: []byte("probe")}.Encode(), mt.Publish{Topic: "mark", Payload: []byte("mark")}.Encode())
	m := c.ExpectPublish()
	if m.Topic == "mark" {
		return false
	}
	if m.Topic != topic {
		t.Fatalf("unexpected message on %s", m.Topic)
	}
	c.ExpectPublish() // the mark
	return true
}

// lcConnect connects id with the clean flag and, for MQTT 5, a Session
// Expiry (< 0: absent), requiring success.
func lcConnect(t *testing.T, srv *brokertest.Server, v byte, id string, clean bool, expiry int64) (*mt.Conn, mt.Connack) {
	t.Helper()
	c := mt.Dial(t, srv.TCPAddr, v)
	pk := mt.Connect{ClientID: id, Clean: clean, Keepalive: 30}
	if v == 5 && expiry >= 0 {
		pk.Props = [][]byte{mt.Int(mt.PropSessionExpiry, uint32(expiry))}
	}
	return c, c.MustConnect(pk)
}

// lcLeave subscribes c to topic and disconnects normally, DISCONNECT
// properties given.
func lcLeave(t *testing.T, c *mt.Conn, topic string, props ...[]byte) {
	t.Helper()
	c.Subscribe(1, mt.Sub{Filter: topic, Options: 1})
	c.Send(mt.Disconnect(c.Version, 0, props...))
	c.ExpectClosed()
}

// TestSession covers 3.1.2.4 Clean Start, 3.1.2.11.2 Session Expiry
// Interval, 3.1.4 CONNECT actions and 4.1 Session State (5.0), and 3.1.2.4
// Clean Session and 3.1.4 (3.1.1).
func TestSession(t *testing.T) {
	lcRun(t, []lcCase{
		{
			name: "Clean Start discards the stored session",
			rule: "[MQTT-3.1.2-4] [MQTT-3.1.4-4] [MQTT-3.2.2-2]",
			run: func(t *testing.T, srv *brokertest.Server) {
				c, _ := lcConnect(t, srv, 5, "s", false, 60)
				lcLeave(t, c, "s/x")
				c, ca := lcConnect(t, srv, 5, "s", true, 60)
				if ca.SessionPresent || lcSubscribed(t, srv, c, "s/x") {
					t.Fatal("the old session survived a clean start")
				}
			},
		},
		{
			name: "Clean Start 0 resumes the stored session of its client id",
			rule: "[MQTT-3.1.2-5] [MQTT-3.1.2-23] [MQTT-3.2.2-3] [MQTT-3.1.3-2]",
			run: func(t *testing.T, srv *brokertest.Server) {
				c, _ := lcConnect(t, srv, 5, "s", false, 60)
				lcLeave(t, c, "s/x")
				if _, ca := lcConnect(t, srv, 5, "t", false, 60); ca.SessionPresent {
					t.Fatal("another client id got the session")
				}
				c, ca := lcConnect(t, srv, 5, "s", false, 60)
				if !ca.SessionPresent || !lcSubscribed(t, srv, c, "s/x") {
					t.Fatal("the stored session was not resumed")
				}
			},
		},
		{
			name: "Session Expiry 0 ends the session with the connection",
			rule: "[MQTT-3.2.2-3]",
			run: func(t *testing.T, srv *brokertest.Server) {
				// Reconnecting at once races the end of the old session: repeat.
				for i := range lcRaceRounds {
					c, _ := lcConnect(t, srv, 5, "s", false, -1)
					lcLeave(t, c, "s/x")
					c, ca := lcConnect(t, srv, 5, "s", false, -1)
					if ca.SessionPresent {
						t.Fatalf("round %d: a session with expiry 0 outlived its connection", i)
					}
					if i == 0 && lcSubscribed(t, srv, c, "s/x") {
						t.Fatal("its subscription outlived it")
					}
					c.Send(mt.Disconnect(5, 0))
					c.ExpectClosed()
				}
			},
		},
		{
			name: "a session is discarded when its expiry has passed",
			rule: "[MQTT-4.1.0-2] [MQTT-3.2.2-3]",
			run: func(t *testing.T, srv *brokertest.Server) {
				obs := srv.Broker.Observe(16, broker.EventSessionExpired)
				defer obs.Close()
				c, _ := lcConnect(t, srv, 5, "s", false, 1)
				lcLeave(t, c, "s/x")
				lcSessionExpired(t, obs, "s")
				c, ca := lcConnect(t, srv, 5, "s", false, 60)
				if ca.SessionPresent || lcSubscribed(t, srv, c, "s/x") {
					t.Fatal("an expired session was resumed")
				}
			},
		},
		{
			name: "DISCONNECT can end the session by setting Session Expiry 0",
			rule: "[MQTT-3.2.2-3]",
			run: func(t *testing.T, srv *brokertest.Server) {
				for i := range lcRaceRounds {
					c, _ := lcConnect(t, srv, 5, "s", false, 60)
					lcLeave(t, c, "s/x", mt.Int(mt.PropSessionExpiry, 0))
					c, ca := lcConnect(t, srv, 5, "s", false, 60)
					if ca.SessionPresent {
						t.Fatalf("round %d: the session outlived a DISCONNECT with Session Expiry 0", i)
					}
					if i == 0 && lcSubscribed(t, srv, c, "s/x") {
						t.Fatal("its subscription outlived it")
					}
					c.Send(mt.Disconnect(5, 0, mt.Int(mt.PropSessionExpiry, 0)))
					c.ExpectClosed()
				}
			},
		},
		{
			name: "takeover: DISCONNECT 0x8E to the old connection, which is closed",
			rule: "[MQTT-3.1.4-3] [MQTT-3.14.2-1] [MQTT-3.14.2-2] [MQTT-3.14.4-1] [MQTT-3.14.4-2]",
			run: func(t *testing.T, srv *brokertest.Server) {
				old, _ := lcConnect(t, srv, 5, "s", false, 60)
				old.Subscribe(1, mt.Sub{Filter: "s/x", Options: 1})
				nu, ca := lcConnect(t, srv, 5, "s", false, 60)
				got := old.Closed(mt.Timeout)
				if len(got) != 1 || got[0].Type() != mt.DISCONNECT {
					t.Fatalf("old connection got %v, want one DISCONNECT then the close", got)
				}
				r, props, err := got[0].Disconnect()
				if err != nil || r != 0x8E || props.Has(mt.PropSessionExpiry) {
					t.Fatalf("DISCONNECT %#x %+v %v, want 0x8E without Session Expiry", r, props, err)
				}
				if !ca.SessionPresent || !lcSubscribed(t, srv, nu, "s/x") {
					t.Fatal("the new connection did not get the session")
				}
			},
		},
		{
			name: "takeover DISCONNECT leaves out its Reason String beyond the client's Maximum Packet Size",
			rule: "[MQTT-3.14.2-3]",
			run: func(t *testing.T, srv *brokertest.Server) {
				for _, max := range []uint32{20, 256} { // 20 fits the CONNACK, not a DISCONNECT with its Reason String
					old := mt.Dial(t, srv.TCPAddr, 5)
					old.MustConnect(mt.Connect{ClientID: "small", Clean: true, Keepalive: 30, Props: [][]byte{mt.Int(mt.PropMaximumPacketSize, max)}})
					lcConnect(t, srv, 5, "small", true, -1)
					got := old.Closed(mt.Timeout)
					if len(got) != 1 || got[0].Type() != mt.DISCONNECT {
						t.Fatalf("old connection got %v, want one DISCONNECT", got)
					}
					if n := len(got[0].Bytes()); uint32(n) > max {
						t.Fatalf("DISCONNECT of %d bytes for a client allowing %d", n, max)
					}
					_, props, _ := got[0].Disconnect()
					if max == 256 && !props.Has(mt.PropReasonString) {
						t.Fatal("no Reason String even with room for it: the check above proves nothing")
					}
				}
			},
		},
		{
			name: "clean session 1 discards the stored session and ends with the connection/3.1.1",
			rule: "[MQTT-3.1.2-6@3.1.1] [MQTT-3.1.4-3@3.1.1]",
			run: func(t *testing.T, srv *brokertest.Server) {
				c, _ := lcConnect(t, srv, 4, "s", false, -1)
				lcLeave(t, c, "s/x")
				c, ca := lcConnect(t, srv, 4, "s", true, -1)
				if ca.SessionPresent || lcSubscribed(t, srv, c, "s/x") {
					t.Fatal("the old session survived clean session 1")
				}
				lcLeave(t, c, "s/y")
				c, ca = lcConnect(t, srv, 4, "s", false, -1)
				if ca.SessionPresent || lcSubscribed(t, srv, c, "s/y") {
					t.Fatal("a clean session outlived its connection")
				}
			},
		},
		{
			name: "retained messages outlive the session that published them/3.1.1",
			rule: "[MQTT-3.1.2-7@3.1.1]",
			run: func(t *testing.T, srv *brokertest.Server) {
				c, _ := lcConnect(t, srv, 4, "s", true, -1)
				c.Send(mt.Publish{Version: 4, Topic: "r/kept", Retain: true, Payload: []byte("kept")}.Encode())
				c.Send(mt.Disconnect(4, 0))
				c.ExpectClosed()
				c, _ = lcConnect(t, srv, 4, "s", true, -1) // a new session for the same id
				c.Subscribe(1, mt.Sub{Filter: "r/kept"})
				lcExpectMessage(t, c, "r/kept", "kept")
			},
		},
		{
			name: "clean session 0 resumes the stored session of its client id/3.1.1",
			rule: "[MQTT-3.1.2-4@3.1.1] [MQTT-3.1.4-3@3.1.1] [MQTT-3.1.3-2@3.1.1]",
			run: func(t *testing.T, srv *brokertest.Server) {
				c, _ := lcConnect(t, srv, 4, "s", false, -1)
				lcLeave(t, c, "s/x")
				if _, ca := lcConnect(t, srv, 4, "t", false, -1); ca.SessionPresent {
					t.Fatal("another client id got the session")
				}
				c, ca := lcConnect(t, srv, 4, "s", false, -1)
				if !ca.SessionPresent || !lcSubscribed(t, srv, c, "s/x") {
					t.Fatal("the stored session was not resumed")
				}
			},
		},
		{
			name: "takeover closes the old connection without a DISCONNECT/3.1.1",
			rule: "[MQTT-3.1.4-2@3.1.1]",
			run: func(t *testing.T, srv *brokertest.Server) {
				old, _ := lcConnect(t, srv, 4, "s", false, -1)
				old.Subscribe(1, mt.Sub{Filter: "s/x", Options: 1})
				nu, ca := lcConnect(t, srv, 4, "s", false, -1)
				if got := old.Closed(mt.Timeout); len(got) != 0 {
					t.Fatalf("old 3.1.1 connection got %v: 3.1.1 has no server DISCONNECT", got)
				}
				if !ca.SessionPresent || !lcSubscribed(t, srv, nu, "s/x") {
					t.Fatal("the new connection did not get the session")
				}
			},
		},
	})
}
