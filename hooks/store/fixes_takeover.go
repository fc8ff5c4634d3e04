package store

import (
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Takeover mid-packet: mochi's inheritClientSession stops the old
// connection and clones its inflight map into the new one as soon as the
// client reconnects, while the old connection's goroutine may still be
// processing a QoS 2 packet; what it does to the map afterwards is lost to
// the new connection, which resends the stale entries after its CONNACK:
//
//   - PUBLISH: mochi stores the PUBREC before writing it. Cloned then, with
//     the write failing (the connection is closing), the new connection
//     resent a PUBREC for a message never delivered and took the
//     publisher's resend for a duplicate: the message was lost (the rare
//     failure of TestQoS2PublishWhosePubrecWasNotWrittenIsDeliveredOnResend
//     under load; unreceive forgot the id on the old connection only).
//   - PUBREL: cloned before mochi replaced the PUBREC with the PUBCOMP, the
//     new connection still awaited a PUBREL the broker had read; cloned
//     after a PUBCOMP was written, it kept the finished id, and resent a
//     PUBREC or PUBCOMP for an id the publisher may already have reused.
//
// Fixes therefore notes the QoS 2 PUBLISH or PUBREL each connection is
// processing, and which connection a reconnecting client may take over;
// the new connection waits, as its CONNACK is encoded (mochi has cloned the
// map and stopped the old connection by then), until the old one is done,
// and applies the outcome to the entry it inherited.

// predecessorWait bounds how long a resuming connection waits for the
// connection it replaces to finish a QoS 2 packet. It is longer than
// resumeHold: a predecessor delivering to its own client id is held in
// OnACLCheck by this very resume, and that hold must give way first.
const predecessorWait = 2 * resumeHold

// qos2Packet is an inbound QoS 2 PUBLISH or PUBREL being processed on a
// connection. ended and failed are guarded by Fixes.mu; failed may also be
// read once done is closed.
type qos2Packet struct {
	cl     *mqtt.Client
	typ    byte // packets.Publish or packets.Pubrel
	pid    uint16
	ended  bool
	failed bool          // mochi could not write the PUBREC or PUBCOMP
	done   chan struct{} // closed once the connection (and for a PUBLISH the store) is done with it
}

// beginQoS2 notes that cl is processing pk, a new QoS 2 PUBLISH or a PUBREL.
func (f *Fixes) beginQoS2(cl *mqtt.Client, pk packets.Packet) {
	p := &qos2Packet{cl: cl, typ: pk.FixedHeader.Type, pid: pk.PacketID, done: make(chan struct{})}
	f.mu.Lock()
	f.inQoS2[cl.ID] = p
	f.mu.Unlock()
}

// endQoS2 ends the QoS 2 packet cl was processing, if any; failed reports
// that its PUBREC or PUBCOMP was not written. With a store attached, the
// store ends a PUBLISH once it has dropped its records of an abandoned one,
// so that a successor never races that cleanup with a resend of the id. The
// record of a connection already taken over stays for its successor, which
// may have cloned the session before this packet was done and applies the
// outcome at its CONNACK.
func (f *Fixes) endQoS2(cl *mqtt.Client, failed bool) {
	f.mu.Lock()
	p, ok := f.inQoS2[cl.ID]
	if !ok || p.cl != cl || p.ended {
		f.mu.Unlock()
		return
	}
	p.ended, p.failed = true, failed
	if !cl.IsTakenOver() {
		delete(f.inQoS2, cl.ID)
	}
	f.mu.Unlock()
	close(p.done)
}

// attachStore tells Fixes that a store ends each PUBLISH (endQoS2) after its
// own cleanup.
func (f *Fixes) attachStore() { f.storeEnds.Store(true) }

// notePredecessor remembers, before mochi resolves cl's session, which
// connection cl may take over.
func (f *Fixes) notePredecessor(cl *mqtt.Client) {
	old, ok := f.server.Clients.Get(cl.ID)
	if !ok || old == cl {
		return
	}
	f.mu.Lock()
	f.pred[cl] = old
	f.mu.Unlock()
}

// awaitPredecessor runs as cl's CONNACK is encoded. If cl resumes the
// session of a connection that was processing a QoS 2 packet, it waits for
// that packet to be done, then brings the entry cl inherited for its id to
// where the old connection left the flow. Records nobody will apply (left
// by a connection replaced with a clean start) go.
func (f *Fixes) awaitPredecessor(cl *mqtt.Client, present bool) {
	f.mu.Lock()
	pred := f.pred[cl]
	delete(f.pred, cl)
	p, ok := f.inQoS2[cl.ID]
	if ok && (p.cl == cl || !present || p.cl != pred) {
		if p.cl != cl && p.ended {
			delete(f.inQoS2, cl.ID)
		}
		ok = false
	}
	f.mu.Unlock()
	if !ok {
		return
	}
	t := time.NewTimer(predecessorWait)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		f.log.Warn("previous connection still processing a qos 2 packet", "client_id", cl.ID)
		return
	}
	f.mu.Lock()
	if f.inQoS2[cl.ID] == p {
		delete(f.inQoS2, cl.ID)
	}
	f.mu.Unlock()
	inf, ok := cl.State.Inflight.Get(p.pid)
	if !ok {
		return
	}
	// Entries cl drops or replaces are not counted in Info.Inflight: mochi
	// counted them out when it cleared the old connection's copies. Each
	// case leaves alone a clone made after the old connection was done.
	switch typ := inf.FixedHeader.Type; {
	case p.typ == packets.Publish && p.failed && typ == packets.Pubrec:
		// The PUBREC never left: the publisher resends the PUBLISH, which is
		// new (the store dropped its records before endQoS2).
		cl.State.Inflight.Delete(p.pid)
		f.log.Debug("inherited pubrec never written, id released", "client_id", cl.ID)
	case p.typ == packets.Pubrel && p.failed && typ == packets.Pubrec:
		// The PUBREL was read and the PUBCOMP not written: the id is
		// released, the PUBCOMP owed (mochi resends it on resume).
		cl.State.Inflight.Set(packets.Packet{
			FixedHeader: packets.FixedHeader{Type: packets.Pubcomp},
			PacketID:    p.pid,
			ReasonCode:  packets.CodeSuccess.Code,
			Created:     inf.Created,
			Expiry:      inf.Expiry,
		})
	case p.typ == packets.Pubrel && !p.failed && (typ == packets.Pubrec || typ == packets.Pubcomp):
		// The PUBCOMP was written (or the PUBREL ended the flow with a
		// failure code): the flow is over.
		cl.State.Inflight.Delete(p.pid)
	}
}

// forgetQoS2 drops the record left for a successor of an expired session.
func (f *Fixes) forgetQoS2(cl *mqtt.Client) {
	f.mu.Lock()
	if p, ok := f.inQoS2[cl.ID]; ok && p.ended {
		delete(f.inQoS2, cl.ID)
	}
	f.mu.Unlock()
}

// dropInheritedPubacks removes the PUBACKs a resumed session inherited.
// mochi stores a QoS 1 PUBACK in the session just before writing it and
// removes it just after; one still there was not written (the connection
// died, or the client reconnected meanwhile and the session was cloned
// mid-write), and mochi has not delivered its message either. mochi would
// resend it after the CONNACK, for a message never delivered: a client that
// took it as the answer to its unacknowledged PUBLISH would never resend it,
// and the message was lost. Without it the client resends, as it must.
func dropInheritedPubacks(cl *mqtt.Client) {
	for _, p := range cl.State.Inflight.GetAll(false) {
		if p.FixedHeader.Type == packets.Puback {
			cl.State.Inflight.Delete(p.PacketID)
		}
	}
}
