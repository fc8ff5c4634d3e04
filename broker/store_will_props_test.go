package broker_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"

	"github.com/courier-mqtt/courier/broker"
	"github.com/courier-mqtt/courier/broker/brokertest"
	mt "github.com/courier-mqtt/courier/internal/mqtttest"
)

// endedHook reports each ending connection's client id once every hook
// before it has seen the end: registered after the broker's own hooks, it
// runs after the store has written the session (and its pending Will) to
// its write-ahead log, which is what survives a crash.
type endedHook struct {
	mqtt.HookBase
	ended chan string
}

func (h *endedHook) ID() string           { return "test-ended" }
func (h *endedHook) Provides(b byte) bool { return b == mqtt.OnDisconnect }
func (h *endedHook) OnDisconnect(cl *mqtt.Client, _ error, _ bool) {
	select {
	case h.ended <- cl.ID:
	default: // nobody waits for this one; never block mochi
	}
}

func (h *endedHook) wait(t *testing.T, id string) {
	t.Helper()
	deadline := time.After(stWait)
	for {
		select {
		case got := <-h.ended:
			if got == id {
				return
			}
		case <-deadline:
			t.Fatalf("the connection of %s did not end", id)
		}
	}
}

// TestDelayedWillKeepsPropertiesAcrossRestart: a delayed Will pending when
// the broker restarts (gracefully, or in a crash) is published after the
// restart with every property its client sent, as a live one is: payload
// format, message expiry (counted from the publication), content type,
// response topic, correlation data and the user properties in order.
func TestDelayedWillKeepsPropertiesAcrossRestart(t *testing.T) {
	for _, tc := range []struct {
		name string
		stop func(t *testing.T, srv *brokertest.Server)
	}{
		{"restart", func(t *testing.T, srv *brokertest.Server) { srv.Stop(t) }},
		{"crash", func(t *testing.T, srv *brokertest.Server) { srv.Crash(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ended := &endedHook{ended: make(chan string, 64)}
			srv := brokertest.Start(t, brokertest.WithOptions(broker.WithHook(ended, nil)))
			if srv.DataDir == "" {
				t.Skip("store off")
			}
			w := willWatcher(t, srv, true)
			w.Send(mt.Disconnect(5, 0))
			w.ExpectClosed()

			c := mt.Dial(t, srv.TCPAddr, 5)
			c.MustConnect(mt.Connect{
				ClientID: "props", Keepalive: 30,
				Props: [][]byte{mt.Int(mt.PropSessionExpiry, 300)},
				Will: &mt.Will{Topic: "will/props", Payload: []byte("gone props"), QoS: 1, Props: [][]byte{
					mt.Int(mt.PropWillDelay, 2),
					mt.Byte(mt.PropPayloadFormat, 1),
					mt.Int(mt.PropMessageExpiry, 100),
					mt.String(mt.PropContentType, "text/plain"),
					mt.String(mt.PropResponseTopic, "reply/props"),
					mt.Binary(mt.PropCorrelationData, []byte{0, 1, 2}),
					mt.User("z", "1"), mt.User("a", "2"), mt.User("z", "3"),
				}},
			})
			_ = c.C.Close() // no DISCONNECT: the Will applies, after its delay
			ended.wait(t, "props")
			tc.stop(t, srv)
			srv.Restart(t)

			w = willWatcher(t, srv, false)
			m := w.ExpectPublish()
			if m.Topic != "will/props" || string(m.Payload) != "gone props" || m.QoS != 1 {
				t.Fatalf("got %q on %s at QoS %d, want the Will of props", m.Payload, m.Topic, m.QoS)
			}
			w.Send(mt.Ack(5, mt.PUBACK, m.PacketID, 0))
			if p, ok := m.Props.Get(mt.PropPayloadFormat); !ok || p.Value != 1 {
				t.Errorf("payload format %+v (present %v), want 1", p, ok)
			}
			// The Will's own expiry, as for a live Will: its 100 s less any
			// wait in the watcher's queue.
			if e, ok := m.Props.Get(mt.PropMessageExpiry); !ok || e.Value == 0 || e.Value > 100 {
				t.Errorf("message expiry %+v (present %v), want the Will's 100 s less its wait", e, ok)
			}
			if ct, _ := m.Props.Get(mt.PropContentType); ct.Str != "text/plain" {
				t.Errorf("content type %q", ct.Str)
			}
			if rt, _ := m.Props.Get(mt.PropResponseTopic); rt.Str != "reply/props" {
				t.Errorf("response topic %q", rt.Str)
			}
			if cd, ok := m.Props.Get(mt.PropCorrelationData); !ok || !bytes.Equal([]byte(cd.Str), []byte{0, 1, 2}) {
				t.Errorf("correlation data %x (present %v)", cd.Str, ok)
			}
			var users []string
			for _, u := range m.Props.All(mt.PropUserProperty) {
				users = append(users, u.Key+"="+u.Str)
			}
			if got := strings.Join(users, " "); got != "z=1 a=2 z=3" {
				t.Errorf("user properties %q, want z=1 a=2 z=3 in order", got)
			}
		})
	}
}
