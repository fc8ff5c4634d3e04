package conformance_test

import (
	"slices"
	"testing"

	"github.com/courier-mqtt/courier/broker/brokertest"
	mt "github.com/courier-mqtt/courier/internal/mqtttest"
)

// Section 3.3.1.3 RETAIN: what a retained PUBLISH stores, replaces and
// clears, in MQTT 5 and 3.1.1.

// retainedOn returns the payloads of the retained messages a new subscriber
// to topic is sent (each with RETAIN 1). mochi queues them for the
// client's writer while it handles the SUBSCRIBE, so a live marker the
// subscriber publishes on the topic right after comes behind them.
func retainedOn(t *testing.T, srv *brokertest.Server, v byte, id, topic string) []string {
	t.Helper()
	c := mt.Dial(t, srv.TCPAddr, v)
	c.MustConnect(mt.Connect{ClientID: id, Clean: true, Keepalive: 30})
	c.Subscribe(1, mt.Sub{Filter: topic, Options: 1})
	c.Send(mt.Publish{Version: v, Topic: topic, Payload: []byte("marker")}.Encode())
	var got []string
	for {
		m := c.ExpectPublish()
		if !m.Retain && string(m.Payload) == "marker" {
			break
		}
		if !m.Retain {
			t.Fatalf("retained message %q sent with RETAIN 0", m.Payload)
		}
		got = append(got, string(m.Payload))
		if m.QoS == 1 {
			c.SendAck(mt.PUBACK, m.PacketID)
		}
	}
	c.Send(mt.Disconnect(v, 0))
	return got
}

func TestRetain(t *testing.T) {
	t.Parallel()
	srv := start(t)
	type step struct {
		payload string
		qos     byte
		retain  bool
	}
	rows := []struct {
		name  string
		rules map[byte]string // by protocol version
		steps []step
		want  []string
	}{
		{
			name: "a retained message is stored and a newer one replaces it",
			rules: map[byte]string{
				5: "[MQTT-3.3.1-5]",
				4: "[MQTT-3.3.1-5@3.1.1] [MQTT-3.3.1-7@3.1.1]",
			},
			steps: []step{{"one", 1, true}, {"two", 0, true}},
			want:  []string{"two"},
		},
		{
			name: "an empty retained payload clears the topic and is not stored",
			rules: map[byte]string{
				5: "[MQTT-3.3.1-6] [MQTT-3.3.1-7]",
				4: "[MQTT-3.3.1-10@3.1.1] [MQTT-3.3.1-11@3.1.1]",
			},
			steps: []step{{"one", 1, true}, {"", 1, true}},
			want:  nil,
		},
		{
			name: "an empty retained payload on a topic without one stores nothing",
			rules: map[byte]string{
				5: "[MQTT-3.3.1-7]",
				4: "[MQTT-3.3.1-11@3.1.1]",
			},
			steps: []step{{"", 0, true}},
			want:  nil,
		},
		{
			name: "RETAIN 0 neither stores nor replaces",
			rules: map[byte]string{
				5: "[MQTT-3.3.1-8]",
				4: "[MQTT-3.3.1-12@3.1.1]",
			},
			steps: []step{{"kept", 1, true}, {"live", 1, false}},
			want:  []string{"kept"},
		},
	}
	for i, r := range rows {
		for _, v := range []byte{5, 4} {
			t.Run(r.name+"/"+lcVersions[v], func(t *testing.T) {
				t.Parallel()
				topic := "retain/" + lcVersions[v] + "/" + string(rune('a'+i))
				pub := mt.Dial(t, srv.TCPAddr, v)
				pub.MustConnect(mt.Connect{ClientID: "rp-" + topic, Clean: true, Keepalive: 30})
				for j, s := range r.steps {
					p := mt.Publish{Version: v, Topic: topic, QoS: s.qos, Retain: s.retain, PacketID: uint16(j + 1), Payload: []byte(s.payload)}
					pub.Send(p.Encode())
					if s.qos == 1 {
						pub.ExpectAck(mt.PUBACK)
					}
				}
				if got := pub.Ping(); len(got) > 0 { // routed and stored: the broker handles one client's packets in order
					t.Fatalf("publisher received %v", got)
				}
				if got := retainedOn(t, srv, v, "rs-"+topic, topic); !slices.Equal(got, r.want) {
					t.Fatalf("%s retained %q, want %q", r.rules[v], got, r.want)
				}
			})
		}
	}
}
