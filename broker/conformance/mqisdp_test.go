package conformance_test

import (
	"testing"

	"github.com/courier-mqtt/courier/broker/brokertest"
	mt "github.com/courier-mqtt/courier/internal/mqtttest"
)

// TestMQIsdp covers MQTT 3.1 (protocol name "MQIsdp", level 3) where it
// differs from 3.1.1. The 3.1 specification numbers no rules; the MQIsdp-n
// rules are ours (testdata/mqtt-v3.1.txt). Keepalive, PINGREQ and the Will
// of 3.1 clients are rows of TestKeepalive, TestPingreq and TestWill.
func TestMQIsdp(t *testing.T) {
	lcRun(t, []lcCase{
		{
			name: "connect, subscribe and publish at every QoS",
			rule: "[MQIsdp-1] [MQIsdp-2] [MQIsdp-5]",
			run: func(t *testing.T, srv *brokertest.Server) {
				c := mt.Dial(t, srv.TCPAddr, 3)
				if ca := c.MustConnect(mt.Connect{ClientID: "old-client", Clean: true, Keepalive: 30}); ca.SessionPresent {
					t.Fatal("Session Present with a clean session")
				}
				if codes := c.Subscribe(1, mt.Sub{Filter: "m/0"}, mt.Sub{Filter: "m/1", Options: 1}, mt.Sub{Filter: "m/2", Options: 2}); string(codes) != "\x00\x01\x02" {
					t.Fatalf("SUBACK %x", codes)
				}
				for q := byte(0); q <= 2; q++ {
					topic := "m/" + string(rune('0'+q))
					c.Send(mt.Publish{Version: 3, Topic: topic, QoS: q, PacketID: uint16(10 + q), Payload: []byte("hi")}.Encode())
					var gotAck, gotMsg bool
					for !gotAck || !gotMsg {
						p := c.Next()
						switch p.Type() {
						case mt.PUBLISH:
							m, err := p.Publish(3)
							if err != nil || m.Topic != topic || m.QoS != q {
								t.Fatalf("delivery %+v %v", m, err)
							}
							switch q {
							case 1:
								c.Send(mt.Ack(3, mt.PUBACK, m.PacketID, 0))
							case 2:
								c.Send(mt.Ack(3, mt.PUBREC, m.PacketID, 0))
							}
							gotMsg, gotAck = true, gotAck || q == 0
						case mt.PUBACK, mt.PUBREC:
							gotAck = true
							if p.Type() == mt.PUBREC {
								c.Send(mt.Ack(3, mt.PUBREL, uint16(10+q), 0))
							}
						case mt.PUBREL:
							a, _ := p.Ack(3)
							c.Send(mt.Ack(3, mt.PUBCOMP, a.PacketID, 0))
						case mt.PUBCOMP:
						default:
							t.Fatalf("unexpected %s", p)
						}
					}
				}
			},
		},
		{
			name: "an empty or too long client id is rejected with 0x02",
			rule: "[MQIsdp-3] [MQIsdp-2]",
			run: func(t *testing.T, srv *brokertest.Server) {
				for _, id := range []string{"", "abcdefghijklmnopqrstuvwx"} { // 0 and 24 characters
					c := mt.Dial(t, srv.TCPAddr, 3)
					if ca := c.Connect(mt.Connect{ClientID: id, Clean: true, Keepalive: 30}); ca.Reason != 0x02 || ca.SessionPresent {
						t.Fatalf("client id %q: CONNACK %+v, want return code 0x02", id, ca)
					}
					c.ExpectClosed()
				}
				lcDial(t, srv, 3, "abcdefghijklmnopqrstuvw") // 23 characters
			},
		},
		{
			name: "protocol name MQIsdp with level 4 is an unacceptable protocol version",
			rule: "[MQIsdp-4]",
			run: func(t *testing.T, srv *brokertest.Server) {
				c := mt.Dial(t, srv.TCPAddr, 3)
				c.Send(mt.Connect{Version: 4, ProtocolName: "MQIsdp", ClientID: "lvl", Clean: true, Keepalive: 30}.Encode())
				if ca, err := c.Expect(mt.CONNACK).Connack(3); err != nil || ca.Reason != 0x01 {
					t.Fatalf("CONNACK %+v %v, want return code 1", ca, err)
				}
				c.ExpectClosed()
			},
		},
		{
			name: "a resumed session: CONNACK's reserved byte stays 0, queued messages arrive",
			rule: "[MQIsdp-6]",
			run: func(t *testing.T, srv *brokertest.Server) {
				c, _ := lcConnect(t, srv, 3, "keeper", false, -1)
				c.Subscribe(1, mt.Sub{Filter: "k/#", Options: 1})
				c.Send(mt.Disconnect(3, 0))
				c.ExpectClosed()
				p := lcDial(t, srv, 5, "pub")
				p.Send(mt.Publish{Topic: "k/1", QoS: 1, PacketID: 1, Payload: []byte("kept")}.Encode())
				p.ExpectAck(mt.PUBACK)
				c = mt.Dial(t, srv.TCPAddr, 3)
				c.Send(mt.Connect{Version: 3, ClientID: "keeper", Keepalive: 30}.Encode())
				if ack := c.Expect(mt.CONNACK); ack.Body[0] != 0 || ack.Body[1] != 0 {
					t.Fatalf("CONNACK % x, want 00 00", ack.Body)
				}
				lcExpectMessage(t, c, "k/1", "kept")
			},
		},
		{
			name: "takeover closes the old connection without a DISCONNECT",
			rule: "", // 3.1 has the 3.1.1 takeover rule, unnumbered; it has no server DISCONNECT either
			run: func(t *testing.T, srv *brokertest.Server) {
				old := lcDial(t, srv, 3, "twice")
				lcDial(t, srv, 3, "twice")
				if got := old.Closed(mt.Timeout); len(got) != 0 {
					t.Fatalf("old 3.1 connection got %v: 3.1 has no server DISCONNECT", got)
				}
			},
		},
	})
}
