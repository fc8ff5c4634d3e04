package store

import (
	"sync/atomic"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// unreceive undoes mochi's record of a new inbound QoS 2 PUBLISH whose
// PUBREC could not be written (processPublish returned the write's error). mochi's processPublish stores the PUBREC in
// the client's inflight map, fails to write it (the connection is closing)
// and returns before delivering the message; the id then stays marked as
// received, so the publisher's resend (DUP, same id) is answered as a
// duplicate and the message is never delivered. A failed write means the
// PUBREC did not reach the publisher whole (it is the last bytes written),
// so the publisher still holds the PUBLISH and will resend it: forget the
// id and take the resend as new. The store drops its record in its own
// OnPacketProcessed.
func (f *Fixes) unreceive(cl *mqtt.Client, pid uint16) {
	inf, ok := cl.State.Inflight.Get(pid)
	if !ok || inf.FixedHeader.Type != packets.Pubrec {
		return
	}
	if cl.State.Inflight.Delete(pid) {
		atomic.AddInt64(&f.server.Info.Inflight, -1)
	}
	cl.State.Inflight.IncreaseReceiveQuota() // mochi took one for the PUBREC
	f.log.Debug("qos 2 publish not acknowledged, id released", "client_id", cl.ID)
}

// noteResumed records the inbound QoS 2 ids a resumed session inherits:
// awaiting PUBREL (mochi resends their PUBREC right after the CONNACK), or
// released, with a PUBCOMP that could not be written (mochi resends it).
func (f *Fixes) noteResumed(cl *mqtt.Client, all []packets.Packet) {
	var ids map[uint16]bool
	for _, p := range all {
		if p.FixedHeader.Type == packets.Pubrec || p.FixedHeader.Type == packets.Pubcomp {
			if ids == nil {
				ids = map[uint16]bool{}
			}
			ids[p.PacketID] = p.FixedHeader.Type == packets.Pubcomp
		}
	}
	if ids == nil {
		return
	}
	f.mu.Lock()
	if _, ok := f.resumed[cl]; !ok {
		f.nResumed.Add(1)
	}
	f.resumed[cl] = ids
	f.mu.Unlock()
}

// noteRelease marks an inherited id released by the client's PUBREL.
func (f *Fixes) noteRelease(cl *mqtt.Client, pid uint16) {
	if f.nResumed.Load() == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	ids := f.resumed[cl]
	if _, ok := ids[pid]; !ok {
		return
	}
	if inf, ok := cl.State.Inflight.Get(pid); ok && inf.FixedHeader.Type == packets.Pubrec {
		ids[pid] = true
	}
}

// releasedResend reports whether a QoS 2 PUBLISH with DUP set is the
// client's resend of a message it has already released: the session resumed
// with the id released (its PUBCOMP not yet written) or awaiting PUBREL
// and then released on this connection (mochi resent its PUBREC and the
// client answered PUBREL while resending the PUBLISH itself).
// paho.mqtt.golang keeps the PUBLISH, not the PUBREL, in its store and
// resends it after every reconnect until the PUBCOMP arrives, against
// [MQTT-4.3.3-6]. A client sets DUP only on a resend [MQTT-3.3.1-1], and
// resends only after a reconnect, so on this connection a DUP PUBLISH with
// such an id can only be the old message; one without DUP reuses the id for
// a new message.
func (f *Fixes) releasedResend(cl *mqtt.Client, pk packets.Packet) bool {
	if pk.FixedHeader.Qos != 2 || f.nResumed.Load() == 0 {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	ids := f.resumed[cl]
	released, ok := ids[pk.PacketID]
	if !ok || !released {
		return false
	}
	if !pk.FixedHeader.Dup {
		delete(ids, pk.PacketID)
		return false
	}
	return true
}

// forgetConnection drops what is kept per connection.
func (f *Fixes) forgetConnection(cl *mqtt.Client) {
	f.endQoS2(cl, false) // mochi stopped before processing the packet (it failed validation)
	f.mu.Lock()
	delete(f.pred, cl) // its CONNACK was never sent
	if _, ok := f.resumed[cl]; ok {
		delete(f.resumed, cl)
		f.nResumed.Add(-1)
	}
	delete(f.shadowed, cl)
	f.mu.Unlock()
}
