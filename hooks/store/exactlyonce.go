package store

import (
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// QoS 2 is exactly once only if every record is durable before the packet
// that relies on it leaves the broker:
//
//   - publisher -> broker: the inbound record (the packet id is received)
//     is written ahead with the message in OnPublish, before the PUBREC, and
//     removed once the PUBCOMP has been written (OnQosComplete). If the
//     PUBCOMP cannot be written the record stays, and the publisher's resend
//     of PUBREL (or of the PUBLISH: paho.mqtt.golang resends the PUBLISH
//     after its PUBREL, see Fixes) is answered without a second delivery.
//     If mochi cannot write the PUBREC it does not deliver the message: the
//     record goes again (abandonPublish), with the copies written ahead for
//     subscribers, so that the publisher's resend is taken as new.
//     Removing the record before the PUBCOMP is written instead (tried)
//     closes the instant in which a crash leaves a released id looking
//     unreleased, but a PUBCOMP that then cannot be written (a graceful
//     shutdown closing the connection) leaves nothing to recognise
//     paho.mqtt.golang's resent PUBLISH by after the restart, and it was
//     delivered twice (the live QoS 2 stream test across a restart).
//   - broker -> subscriber: the record with its packet id is durable before
//     the first PUBLISH, and the PUBREL stage before the PUBREL
//     (recordPubrel): a subscriber that has the PUBREL may complete and
//     forget the id, and a PUBLISH resent after a restart would then be a
//     new message to it.

// abandonPublish runs after mochi has processed a PUBLISH. A write-ahead
// still open means mochi stopped before delivering it: a hook refused it,
// or the PUBACK/PUBREC could not be written because the connection is
// closing. The copies written for subscribers go, and so does the inbound
// QoS 2 record (Fixes forgets the id in mochi too): the publisher never had
// the PUBREC whole and resends the PUBLISH, which must then count as new.
// Both go in one durable write: after a crash, a record without its copies
// would swallow the resend, and copies without the record would deliver it
// twice.
func (st *Store) abandonPublish(cl *mqtt.Client) {
	st.idx.Lock()
	left := append([]uint64(nil), st.pubFans[cl]...)
	pid, rollback := st.pendingIn[cl]
	delete(st.pendingIn, cl)
	if rollback {
		if m := st.inbound[cl.ID]; m != nil {
			delete(m, pid)
			if len(m) == 0 {
				delete(st.inbound, cl.ID)
			}
		}
	}
	st.idx.Unlock()
	var ops []op
	for _, seq := range left {
		ops = append(ops, st.finishFanout(cl, seq, false)...)
	}
	if rollback {
		ops = append(ops, op{kind: opDelete, key: inboundKey(cl.ID, pid)})
		st.enqueue(ops...)
		return
	}
	if len(ops) > 0 {
		st.enqueueLazy(ops...)
	}
}

// recordPubrel writes the PUBREL stage of an outbound QoS 2 flow as mochi
// encodes the PUBREL (mochi never reports the stage to hooks, and its
// processPubrec writes the PUBREL before any later hook runs). It reports
// whether it queued a write the PUBREL must wait for.
func (st *Store) recordPubrel(cl *mqtt.Client, pk packets.Packet) bool {
	if pk.ReasonCode >= packets.ErrUnspecifiedError.Code || cl.Net.Inline {
		return false
	}
	inf, ok := cl.State.Inflight.Get(pk.PacketID)
	if !ok || inf.FixedHeader.Type != packets.Pubrel {
		return false
	}
	st.idx.Lock()
	seq, ok := st.out[cl.ID][pk.PacketID]
	st.idx.Unlock()
	if !ok {
		return false
	}
	r := msgRec{Stage: stagePubrel, Qos: 2, PacketID: pk.PacketID, Created: inf.Created, Expiry: inf.Expiry}
	st.enqueueFor(cl, op{kind: opSet, key: outboundKey(cl.ID, seq), val: r.encode(kindOutbound)})
	return true
}
