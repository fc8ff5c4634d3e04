package conformance_test

import (
	"bytes"
	"testing"

	"github.com/courier-mqtt/courier/auth"
	mt "github.com/courier-mqtt/courier/internal/mqtttest"
)

// TestACL covers what an authorization refusal looks like on the wire: a
// refused subscription (3.9.3 SUBACK Payload, 5.0 and 3.1.1) and a refused
// PUBLISH (5.0: a PUBACK or PUBREC with 0x87; 3.1.1 [MQTT-3.3.5-2@3.1.1] lets the
// server acknowledge or close: this broker closes the connection, so the
// publisher knows the message went nowhere). The ACL is a broker token's
// grants: publish and subscribe on ok/#.
func TestACL(t *testing.T) {
	t.Parallel()
	b := lcTokenBroker(t)
	grants := auth.Grants{Pub: []string{"ok/#"}, Sub: []string{"ok/#"}}
	watch := b.connect(t, 5, "watch", auth.Grants{Sub: []string{"#"}})
	watch.Subscribe(1, mt.Sub{Filter: "#", Options: 1})

	subRows := []struct {
		rule    string
		version byte
		want    []byte
	}{
		{"[MQTT-3.8.4-6] [MQTT-3.8.4-7] [MQTT-3.9.3-1] [MQTT-3.9.3-2]", 5, []byte{0x01, 0x87, 0x00}},
		{"[MQTT-3.8.4-5@3.1.1] [MQTT-3.9.3-1@3.1.1] [MQTT-3.9.3-2@3.1.1]", 4, []byte{0x01, 0x80, 0x00}},
	}
	for _, r := range subRows {
		t.Run("a refused subscription/"+lcVersions[r.version], func(t *testing.T) {
			c := b.connect(t, r.version, "sub"+lcVersions[r.version], grants)
			codes := c.Subscribe(2, mt.Sub{Filter: "ok/a", Options: 1}, mt.Sub{Filter: "no/a", Options: 1}, mt.Sub{Filter: "ok/b"})
			if !bytes.Equal(codes, r.want) {
				t.Fatalf("SUBACK codes %x, want %x", codes, r.want)
			}
			c.Send(mt.Pingreq()) // still connected
			c.Expect(mt.PINGRESP)
		})
	}

	t.Run("a refused PUBLISH/5.0", func(t *testing.T) {
		// [MQTT-3.4.2-1] [MQTT-3.5.2-1]
		c := b.connect(t, 5, "pub5", grants)
		c.Send(mt.Publish{Topic: "no/1", QoS: 1, PacketID: 1, Payload: []byte("x")}.Encode())
		if a := c.ExpectAck(mt.PUBACK); a.PacketID != 1 || a.Reason != 0x87 {
			t.Fatalf("PUBACK %+v, want packet 1 with 0x87", a)
		}
		c.Send(mt.Publish{Topic: "no/2", QoS: 2, PacketID: 2, Payload: []byte("x")}.Encode())
		if a := c.ExpectAck(mt.PUBREC); a.PacketID != 2 || a.Reason != 0x87 {
			t.Fatalf("PUBREC %+v, want packet 2 with 0x87", a)
		}
		c.Send(mt.Publish{Topic: "no/0", Payload: []byte("x")}.Encode(), mt.Pingreq())
		c.Expect(mt.PINGRESP) // a refused QoS 0 PUBLISH is dropped; still connected
		c.Send(mt.Publish{Topic: "ok/after", Payload: []byte("allowed")}.Encode())
		lcExpectMessage(t, watch, "ok/after", "allowed") // nothing refused went out before it
	})

	t.Run("Request Problem Information 0: refusals carry no Reason String or User Property", func(t *testing.T) {
		// [MQTT-3.1.2-29]
		c := mt.Dial(t, b.srv.TCPAddr, 5)
		c.MustConnect(mt.Connect{ClientID: "quiet", Clean: true, Keepalive: 30, Password: mt.Ptr(b.token(t, "quiet", grants)),
			Props: [][]byte{mt.Byte(mt.PropRequestProblemInfo, 0)}})
		c.Send(mt.Publish{Topic: "no/1", QoS: 1, PacketID: 1, Props: [][]byte{mt.User("k", "v")}, Payload: []byte("x")}.Encode())
		if a := c.ExpectAck(mt.PUBACK); a.Reason != 0x87 || a.Props.Has(mt.PropReasonString) || a.Props.Has(mt.PropUserProperty) {
			t.Fatalf("PUBACK %+v, want 0x87 without Reason String or User Property", a)
		}
		c.Send(mt.Subscribe(5, 2, [][]byte{mt.User("k", "v")}, mt.Sub{Filter: "no/a"}))
		if s := c.ExpectSuback(mt.SUBACK); s.Props.Has(mt.PropReasonString) || s.Props.Has(mt.PropUserProperty) {
			t.Fatalf("SUBACK %+v, want no Reason String or User Property", s)
		}
	})

	t.Run("a refused PUBLISH/3.1.1", func(t *testing.T) {
		// [MQTT-3.3.5-2@3.1.1]
		c := b.connect(t, 4, "pub4", grants)
		c.Send(mt.Publish{Version: 4, Topic: "no/1", QoS: 1, PacketID: 1, Payload: []byte("x")}.Encode())
		if got := c.Closed(mt.Timeout); len(got) != 0 {
			t.Fatalf("got %v, want the connection closed without a PUBACK or DISCONNECT", got)
		}
		p := b.connect(t, 5, "pub5b", grants)
		p.Send(mt.Publish{Topic: "ok/after4", Payload: []byte("allowed")}.Encode())
		lcExpectMessage(t, watch, "ok/after4", "allowed")
	})
}
