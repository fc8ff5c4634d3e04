package store

import (
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// resumeHold bounds how long a delivery waits for a session's resend: a
// resend that takes longer (a client not reading) gives up the order rather
// than stall the publisher further.
const resumeHold = 2 * time.Second

// Resume order: mochi registers a reconnecting client before it sends the
// CONNACK and resends the session's queued messages, so a message published
// in between goes out on the client's write loop while the resend is still
// writing, ahead of older queued messages (seen: a live message delivered
// before the backlog queued while the subscriber was away). Fixes holds
// deliveries to a client from its OnSessionEstablish until its resend is
// done (OnSessionEstablished), at the one hook mochi calls per subscriber
// before it stores and queues a message: the read ACL check. The check
// itself is left to the auth hooks (Fixes never allows anything).

// OnSessionEstablish starts holding deliveries to a client that may resume
// a session, and notes the connection it may take over (awaitPredecessor).
func (f *Fixes) OnSessionEstablish(cl *mqtt.Client, pk packets.Packet) {
	if pk.Connect.Clean || cl.Net.Inline {
		return
	}
	f.notePredecessor(cl)
	if _, loaded := f.resuming.LoadOrStore(cl, make(chan struct{})); !loaded {
		f.nResuming.Add(1)
	}
}

// OnSessionEstablished releases deliveries once mochi has resent the
// session's messages.
func (f *Fixes) OnSessionEstablished(cl *mqtt.Client, _ packets.Packet) {
	f.endResume(cl)
}

// endResume releases the deliveries held for cl (also when it disconnects
// or expires before establishing: mochi calls neither hook when the CONNACK
// or the resend fails, and then the first delivery that finds the client
// closed, or the session's expiry, ends the hold).
func (f *Fixes) endResume(cl *mqtt.Client) {
	if f.nResuming.Load() == 0 {
		return
	}
	if ch, ok := f.resuming.LoadAndDelete(cl); ok {
		f.nResuming.Add(-1)
		close(ch.(chan struct{}))
	}
}

// OnACLCheck waits, before a delivery to a client whose session is being
// resumed, until the resend is done. It never grants access.
func (f *Fixes) OnACLCheck(cl *mqtt.Client, _ string, write bool) bool {
	if write || f.nResuming.Load() == 0 {
		return false
	}
	v, ok := f.resuming.Load(cl)
	if !ok {
		return false
	}
	ch := v.(chan struct{})
	if cl.Closed() {
		f.endResume(cl)
		return false
	}
	t := time.NewTimer(resumeHold)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
		f.log.Warn("session resend slow, delivering out of order", "client_id", cl.ID)
		f.endResume(cl)
	}
	return false
}
