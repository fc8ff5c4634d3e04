package conformance_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/courier-mqtt/courier/broker"
	"github.com/courier-mqtt/courier/internal/mqtttest"
)

// Message Expiry Interval (3.3.2.3.3): the broker forwards the interval
// less the time the message waited, deletes a message whose interval has
// passed before it is delivered, and adds no interval to a message that
// had none.

// outAwaitSecond waits until the wall clock reaches unix second sec.
// Message expiry counts whole wall-clock seconds inside the broker: there is
// no event to wait on, only the time itself.
func outAwaitSecond(t *testing.T, sec int64) {
	t.Helper()
	d := time.Until(time.Unix(sec, 0))
	if d <= 0 {
		return
	}
	if d > 3*time.Second {
		t.Fatalf("refusing to wait %s", d)
	}
	<-time.After(d)
}

func TestMessageExpiry(t *testing.T) {
	t.Parallel()
	for _, store := range []bool{false, true} {
		t.Run(fmt.Sprintf("store=%v", store), func(t *testing.T) {
			t.Parallel()
			srv := outBroker(t, store, nil)
			sub, _ := outSession(t, srv.TCPAddr, 5, "exp-sub")
			sub.Subscribe(1, mqtttest.Sub{Filter: "exp/#", Options: 1})
			outGone(t, srv, sub, "exp-sub", false)

			pub := outClient(t, srv.TCPAddr, 5, "exp-pub")
			expiry := func(s uint32) [][]byte { return [][]byte{mqtttest.Int(mqtttest.PropMessageExpiry, s)} }
			outPublishAcked(pub, mqtttest.Publish{Topic: "exp/short", QoS: 1, PacketID: 1, Props: expiry(1)})
			outPublishAcked(pub, mqtttest.Publish{Topic: "exp/long", QoS: 1, PacketID: 2, Props: expiry(60)})
			outPublishAcked(pub, mqtttest.Publish{Topic: "exp/none", QoS: 1, PacketID: 3})
			outPublishAcked(pub, mqtttest.Publish{Topic: "exp/retained", QoS: 1, PacketID: 4, Retain: true, Props: expiry(60), Payload: []byte("r")})
			outPublishAcked(pub, mqtttest.Publish{Topic: "exp/retained-short", QoS: 1, PacketID: 5, Retain: true, Props: expiry(1), Payload: []byte("r")})
			published := time.Now().Unix()
			outAwaitSecond(t, published+1)

			// The 1 s message has expired while queued: not delivered
			// [MQTT-3.3.2-5]. The 60 s one comes with what is left of its
			// interval [MQTT-3.3.2-6]; the one without an interval comes
			// without one.
			sub, _ = outSession(t, srv.TCPAddr, 5, "exp-sub")
			got := sub.ExpectPublishes(3)
			for _, m := range got {
				sub.SendAck(mqtttest.PUBACK, m.PacketID)
			}
			if got[0].Topic != "exp/long" || got[1].Topic != "exp/none" || got[2].Topic != "exp/retained" {
				t.Fatalf("delivered %q, %q, %q; want exp/long, exp/none, exp/retained", got[0].Topic, got[1].Topic, got[2].Topic)
			}
			if e, ok := got[0].Props.Get(mqtttest.PropMessageExpiry); !ok || e.Value >= 60 || e.Value < 55 {
				t.Errorf("queued 60 s message forwarded with expiry %v (present %v), want 55..59 [MQTT-3.3.2-6]", e.Value, ok)
			}
			if got[1].Props.Has(mqtttest.PropMessageExpiry) {
				t.Error("an expiry was added to a message that had none")
			}
			if got := sub.Ping(); len(got) > 0 {
				t.Fatalf("expired message delivered: %v [MQTT-3.3.2-5]", got)
			}

			// Retained: the same rules [MQTT-3.3.2-5] [MQTT-3.3.2-6].
			sub.Subscribe(2, mqtttest.Sub{Filter: "exp/retained", Options: 1}, mqtttest.Sub{Filter: "exp/retained-short", Options: 1})
			m := sub.ExpectPublish()
			sub.SendAck(mqtttest.PUBACK, m.PacketID)
			if m.Topic != "exp/retained" {
				t.Fatalf("retained: got %q", m.Topic)
			}
			if e, ok := m.Props.Get(mqtttest.PropMessageExpiry); !ok || e.Value >= 60 || e.Value < 55 {
				t.Errorf("retained 60 s message sent with expiry %v (present %v), want 55..59 [MQTT-3.3.2-6]", e.Value, ok)
			}
			if got := sub.Ping(); len(got) > 0 {
				t.Fatalf("expired retained message delivered: %v [MQTT-3.3.2-5]", got)
			}
		})
	}
}

// With a maximum message age configured (Limits.MaxMessageExpiry), messages
// without an expiry of their own are still forwarded without one, and a
// longer interval is forwarded as published, less the wait.
func TestMessageExpiryNotAddedByMaximumAge(t *testing.T) {
	t.Parallel()
	srv := outBroker(t, false, func(c *broker.Config) { c.Limits.MaxMessageExpiry = time.Hour })
	sub := outClient(t, srv.TCPAddr, 5, "expmax-sub")
	sub.Subscribe(1, mqtttest.Sub{Filter: "expmax/#", Options: 1})
	pub := outClient(t, srv.TCPAddr, 5, "expmax-pub")
	outPublishAcked(pub, mqtttest.Publish{Topic: "expmax/none", QoS: 1, PacketID: 1})
	outPublishAcked(pub, mqtttest.Publish{Topic: "expmax/long", QoS: 1, PacketID: 2,
		Props: [][]byte{mqtttest.Int(mqtttest.PropMessageExpiry, 7200)}})
	for _, m := range sub.ExpectPublishes(2) {
		sub.SendAck(mqtttest.PUBACK, m.PacketID)
		e, ok := m.Props.Get(mqtttest.PropMessageExpiry)
		switch m.Topic {
		case "expmax/none":
			if ok {
				t.Errorf("expiry %d added to a message that had none", e.Value)
			}
		case "expmax/long":
			if !ok || e.Value < 7190 || e.Value > 7200 { // [MQTT-3.3.2-6]
				t.Errorf("7200 s message forwarded with expiry %d (present %v)", e.Value, ok)
			}
		}
	}
}

// Once the broker has sent a QoS 1 or 2 PUBLISH, the message no longer
// expires: it is resent until acknowledged and the flow completes even if
// the subscriber takes longer than the interval [MQTT-3.3.2-5]
// [MQTT-4.4.0-1] [MQTT-4.3.3-7]. mochi's one-second expiry sweep deleted it.
func TestMessageExpiryAfterDeliveryStarted(t *testing.T) {
	t.Parallel()
	for _, qos := range []byte{1, 2} {
		t.Run(fmt.Sprintf("qos%d", qos), func(t *testing.T) {
			t.Parallel()
			srv := outBroker(t, false, nil)
			sub, _ := outSession(t, srv.TCPAddr, 5, "exp2-sub")
			sub.Subscribe(1, mqtttest.Sub{Filter: "exp2/#", Options: 2})
			pub := outClient(t, srv.TCPAddr, 5, "exp2-pub")
			outPublishAcked(pub, mqtttest.Publish{Topic: "exp2/a", QoS: qos, PacketID: 1, Payload: []byte("a"),
				Props: [][]byte{mqtttest.Int(mqtttest.PropMessageExpiry, 1)}})
			published := time.Now().Unix()
			m := sub.ExpectPublish()
			// The sweep runs every second and removes what expired before the
			// current second: by published+3 it has seen this message expired.
			outAwaitSecond(t, published+3)
			outCut(sub)
			sub, _ = outSession(t, srv.TCPAddr, 5, "exp2-sub")
			again := sub.ExpectPublish()
			if again.PacketID != m.PacketID || !again.Dup {
				t.Fatalf("resend %+v", again)
			}
			if qos == 1 {
				sub.SendAck(mqtttest.PUBACK, again.PacketID)
			} else {
				sub.SendAck(mqtttest.PUBREC, again.PacketID)
				sub.ExpectAck(mqtttest.PUBREL)
				sub.SendAck(mqtttest.PUBCOMP, again.PacketID)
			}
			if got := sub.Ping(); len(got) > 0 {
				t.Fatalf("then %v", got)
			}
		})
	}
}
