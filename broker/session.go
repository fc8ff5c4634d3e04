package broker

import (
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// A session that ends with its connection (MQTT 5 Session Expiry 0, MQTT 3
// clean session) is removed by mochi only after the connection is closed:
// the closing goroutine clears it some time after the client has seen the
// close. A client that reconnects at once can get in between: mochi then
// resumes the dead MQTT 5 session (Session Present 1, its subscriptions
// back), and for either version its late cleanup can remove the new
// client from the registry. awaitSessionEnd holds the new connection until
// the old session is gone. A session whose connection is still open is
// not waited for: that is a takeover, handled by mochi.
//
// A connection is known to be closing once mochi has stopped it (Closed),
// or, earlier, once it has read the client's DISCONNECT: mochi closes the
// socket before it marks the client stopped, so a client that reconnects
// right after its DISCONNECT could otherwise find its old connection still
// looking open. (After a close the server starts itself, such as a
// keepalive timeout, that window of a few instructions remains.)

// sessionEndWait bounds the wait; mochi removes the session right after
// the connection's last hooks, so it is normally microseconds.
const sessionEndWait = 5 * time.Second

// awaitSessionEnd runs in OnSessionEstablish, before mochi looks for an
// existing session for cl's id.
func (h *lifecycleHook) awaitSessionEnd(cl *mqtt.Client) {
	srv := h.b.srv
	old, ok := srv.Clients.Get(cl.ID)
	if !ok || old == cl || !h.sessionEnds(old) {
		return
	}
	deadline := time.NewTimer(sessionEndWait)
	defer deadline.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		if cur, ok := srv.Clients.Get(cl.ID); !ok || cur != old {
			return
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			h.b.log.Warn("session of a closed connection not removed in time", "client_id", cl.ID)
			return
		}
	}
}

// sessionEnds reports whether old is closing and its session ends with
// its connection. It never reads old's session expiry unless old's own
// goroutine is done writing it: a DISCONNECT can change it.
func (h *lifecycleHook) sessionEnds(old *mqtt.Client) bool {
	if ends, ok := h.closing.Load(old); ok {
		return ends.(bool)
	}
	return old.Closed() && endsWithConnection(old) // Closed orders the read after mochi's last write
}

// disconnecting records, on the client's goroutine, whether the DISCONNECT
// it just read ends its session: Session Expiry 0 in force after it (a
// DISCONNECT raising 0 to non-zero is a protocol error that leaves 0), or a
// clean MQTT 3 session.
func (h *lifecycleHook) disconnecting(cl *mqtt.Client, pk packets.Packet) {
	ends := cl.Properties.Clean
	if cl.Properties.ProtocolVersion == 5 {
		expiry := cl.Properties.Props.SessionExpiryInterval
		if pk.Properties.SessionExpiryIntervalFlag && expiry > 0 {
			expiry = pk.Properties.SessionExpiryInterval
		}
		ends = expiry == 0
	}
	h.closing.Store(cl, ends)
}

// endsWithConnection reports whether cl's session ends when its
// connection closes.
func endsWithConnection(cl *mqtt.Client) bool {
	if cl.Properties.ProtocolVersion == 5 {
		return cl.Properties.Props.SessionExpiryInterval == 0
	}
	return cl.Properties.Clean
}
