package broker_test

import (
	"testing"
	"time"

	"github.com/courier-mqtt/courier/broker"
	"github.com/courier-mqtt/courier/broker/brokertest"
	mt "github.com/courier-mqtt/courier/internal/mqtttest"
)

// willClient connects an MQTT 5 client with a persistent session and a
// Will on will/<id> delayed by delay seconds, then cuts the connection (no
// DISCONNECT: the Will applies) and waits for the broker to see it go.
func willClientGone(t *testing.T, srv *brokertest.Server, obs *broker.Observer, id string, delay uint32) {
	t.Helper()
	c := mt.Dial(t, srv.TCPAddr, 5)
	c.MustConnect(mt.Connect{
		ClientID: id, Keepalive: 30,
		Props: [][]byte{mt.Int(mt.PropSessionExpiry, 300)},
		Will: &mt.Will{Topic: "will/" + id, Payload: []byte("gone " + id), QoS: 1,
			Props: [][]byte{mt.Int(mt.PropWillDelay, delay), mt.String(mt.PropContentType, "text/plain")}},
	})
	_ = c.C.Close()
	stWaitEvent(t, obs, broker.EventClientDisconnected, id)
}

// willWatcher connects the persistent session that watches will/#: what is
// published while it is away (a restart) is queued for it.
func willWatcher(t *testing.T, srv *brokertest.Server, first bool) *mt.Conn {
	t.Helper()
	w := mt.Dial(t, srv.TCPAddr, 5)
	w.MustConnect(mt.Connect{ClientID: "will-watch", Clean: first, Keepalive: 30, Props: [][]byte{mt.Int(mt.PropSessionExpiry, 300)}})
	if codes := w.Subscribe(1, mt.Sub{Filter: "will/#", Options: 1}); codes[0] != 1 {
		t.Fatalf("SUBACK %x", codes)
	}
	return w
}

// TestDelayedWillSurvivesRestart: a Will waiting for its delay when the
// broker restarts is published after the restart when it falls due, unless
// its client came back in time; and a Will the broker already published is
// not published again after a restart.
func TestDelayedWillSurvivesRestart(t *testing.T) {
	srv := brokertest.Start(t)
	if srv.DataDir == "" {
		t.Skip("store off")
	}
	w := willWatcher(t, srv, true)
	w.Send(mt.Disconnect(5, 0))
	w.ExpectClosed()
	obs := srv.Broker.Observe(256)
	willClientGone(t, srv, obs, "gone", 2)
	willClientGone(t, srv, obs, "back", 2)
	obs.Close()
	srv.Restart(t)

	w = willWatcher(t, srv, false)
	back := mt.Dial(t, srv.TCPAddr, 5)
	if ca := back.MustConnect(mt.Connect{ClientID: "back", Keepalive: 30, Props: [][]byte{mt.Int(mt.PropSessionExpiry, 300)}}); !ca.SessionPresent {
		t.Fatal("session of back not restored")
	}
	m := w.ExpectPublish()
	if m.Topic != "will/gone" || string(m.Payload) != "gone gone" {
		t.Fatalf("got %q on %s, want the Will of gone", m.Payload, m.Topic)
	}
	w.Send(mt.Ack(5, mt.PUBACK, m.PacketID, 0))
	w.Quiet(500 * time.Millisecond) // bounded negative check: no Will of back

	// A Will published by the running broker is cleared from the store.
	obs = srv.Broker.Observe(256)
	willClientGone(t, srv, obs, "once", 1)
	obs.Close()
	m = w.ExpectPublish()
	if m.Topic != "will/once" {
		t.Fatalf("got %s, want will/once", m.Topic)
	}
	w.Send(mt.Ack(5, mt.PUBACK, m.PacketID, 0))
	w.Send(mt.Disconnect(5, 0))
	w.ExpectClosed()
	srv.Restart(t)
	w = willWatcher(t, srv, false)
	w.Quiet(1500 * time.Millisecond) // past any due time: nothing published again
}
