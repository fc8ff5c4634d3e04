package mqtttest_test

import (
	"bufio"
	"bytes"
	"testing"

	"github.com/courier-mqtt/courier/broker/brokertest"
	"github.com/courier-mqtt/courier/internal/mqtttest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/golang/glog.(*fileSink).flushDaemon"),
		goleak.IgnoreTopFunction("github.com/golang/glog.(*loggingT).flushDaemon"))
}

func TestPublishRoundTrip(t *testing.T) {
	in := mqtttest.Publish{
		Topic: "a/b", QoS: 2, Dup: true, Retain: true, PacketID: 7,
		Props: [][]byte{
			mqtttest.Int(mqtttest.PropMessageExpiry, 60),
			mqtttest.String(mqtttest.PropContentType, "text/plain"),
			mqtttest.User("k", "v"),
			mqtttest.VarInt(mqtttest.PropSubscriptionID, 300),
		},
		Payload: []byte("hello"),
	}
	p, err := mqtttest.ReadPacket(bufio.NewReader(bytes.NewReader(in.Encode())))
	if err != nil {
		t.Fatal(err)
	}
	m, err := p.Publish(5)
	if err != nil {
		t.Fatal(err)
	}
	if m.Topic != "a/b" || m.QoS != 2 || !m.Dup || !m.Retain || m.PacketID != 7 || string(m.Payload) != "hello" {
		t.Fatalf("decoded %+v", m)
	}
	if e, _ := m.Props.Get(mqtttest.PropMessageExpiry); e.Value != 60 {
		t.Errorf("expiry %d", e.Value)
	}
	if u := m.Props.All(mqtttest.PropUserProperty); len(u) != 1 || u[0].Key != "k" || u[0].Str != "v" {
		t.Errorf("user properties %+v", u)
	}
	if s, _ := m.Props.Get(mqtttest.PropSubscriptionID); s.Value != 300 {
		t.Errorf("subscription id %d", s.Value)
	}
	if !bytes.Equal(p.Bytes(), in.Encode()) {
		t.Error("Bytes does not reproduce the frame")
	}
}

func TestRemainingLengthOverFourBytesIsMalformed(t *testing.T) {
	_, err := mqtttest.ReadPacket(bufio.NewReader(bytes.NewReader([]byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x01})))
	if err == nil {
		t.Fatal("five-byte remaining length accepted")
	}
}

func TestConnectSubscribePublishAgainstBroker(t *testing.T) {
	srv := brokertest.Start(t, brokertest.WithoutStore())
	for _, v := range []byte{3, 4, 5} {
		c := mqtttest.Dial(t, srv.TCPAddr, v)
		c.MustConnect(mqtttest.Connect{ClientID: "rt", Clean: true, Keepalive: 30})
		if codes := c.Subscribe(1, mqtttest.Sub{Filter: "rt/+", Options: 1}); !bytes.Equal(codes, []byte{1}) {
			t.Fatalf("v%d SUBACK codes %x", v, codes)
		}
		c.Send(mqtttest.Publish{Version: v, Topic: "rt/x", QoS: 1, PacketID: 9, Payload: []byte("p")}.Encode())
		// The PUBACK and the delivery may come in either order.
		var gotAck, gotMsg bool
		for !gotAck || !gotMsg {
			p := c.Next()
			switch p.Type() {
			case mqtttest.PUBACK:
				a, err := p.Ack(v)
				if err != nil || a.PacketID != 9 {
					t.Fatalf("v%d PUBACK %+v %v", v, a, err)
				}
				gotAck = true
			case mqtttest.PUBLISH:
				m, err := p.Publish(v)
				if err != nil || m.Topic != "rt/x" || string(m.Payload) != "p" || m.QoS != 1 {
					t.Fatalf("v%d delivery %+v %v", v, m, err)
				}
				c.Send(mqtttest.Ack(v, mqtttest.PUBACK, m.PacketID, 0))
				gotMsg = true
			default:
				t.Fatalf("v%d unexpected %s", v, p)
			}
		}
		c.Send(mqtttest.Disconnect(v, 0))
		if r := c.ExpectClosed(); r != -1 {
			t.Fatalf("v%d: broker answered DISCONNECT with reason %d", v, r)
		}
	}
}
