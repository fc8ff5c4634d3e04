package broker

import (
	"slices"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// parkedExpiry is how mochi marks a QoS 1/2 message it did not send because
// the client's Receive Maximum was reached: the message is stored in flight
// with Expiry -1 and nothing ever sends it before the client reconnects.
const parkedExpiry = -1

// OnQosComplete runs after mochi has finished an outbound QoS 1 or 2 flow
// (PUBACK or PUBCOMP) and given its send quota back. mochi never uses that
// quota for the messages it parked while the quota was exhausted, so an
// MQTT 5 subscriber with a small Receive Maximum stalls [MQTT-4.9.0-1]. Send
// the oldest parked message now, in publish order.
func (h *coreHook) OnQosComplete(cl *mqtt.Client, pk packets.Packet) {
	if pk.FixedHeader.Type == packets.Pubrel || pk.Created != 0 {
		// The end of one of the client's own QoS 1/2 flows (mochi reports
		// those too, with the acknowledgement it built): no send quota was
		// freed, and sending now would exceed the client's Receive Maximum.
		return
	}
	if !mayHaveParked(cl) || cl.Closed() {
		return
	}
	h.parkMu.Lock()
	p, ok := h.nextParked(cl)
	if ok {
		p = unpark(cl, p)
		cl.State.Inflight.DecreaseSendQuota()
	}
	h.parkMu.Unlock()
	if ok {
		if err := cl.WritePacket(p); err != nil {
			h.b.log.Debug("send parked message", "client_id", cl.ID, "err", err)
		}
	}
}

// mayHaveParked is a cheap filter: messages are parked only once a full
// Receive Maximum window is in flight, and right after an acknowledgement a
// client with parked messages still has at least that many stored (one fewer
// sent, one or more parked). Below that there is nothing to scan for.
func mayHaveParked(cl *mqtt.Client) bool {
	max := int(cl.Properties.Props.ReceiveMaximum)
	return max > 0 && cl.State.Inflight.Len() >= max
}

// unpark restores a parked message's expiry in the in-flight store and
// returns it ready to write.
func unpark(cl *mqtt.Client, p packets.Packet) packets.Packet {
	p.Expiry = 0
	if p.Properties.MessageExpiryInterval > 0 {
		p.Expiry = p.Created + int64(p.Properties.MessageExpiryInterval)
	}
	cl.State.Inflight.Set(p)
	if p.Expiry > 0 {
		p.Properties.MessageExpiryInterval = uint32(max(1, p.Expiry-time.Now().Unix())) // [MQTT-3.3.2-6]
	}
	return p
}

// nextParked returns cl's oldest parked message. The order comes from a
// queue of packet ids built from the session when the previous one ran out:
// a message parked later is younger than every one in the queue, so
// rebuilding only when it is empty keeps publish order, and an
// acknowledgement costs O(log n) amortised instead of a scan and sort of
// the whole session (up to MaxOfflineQueue messages) each time. An id that
// is no longer parked (sent, expired, dropped) is skipped. Called with
// parkMu held.
func (h *coreHook) nextParked(cl *mqtt.Client) (packets.Packet, bool) {
	q := h.parkQ[cl]
	for rebuilt := false; ; {
		if len(q) == 0 {
			if rebuilt {
				delete(h.parkQ, cl)
				return packets.Packet{}, false
			}
			q, rebuilt = parkedInOrder(cl.State.Inflight.GetAll(false)), true
			continue
		}
		id := q[0]
		q = q[1:]
		if p, ok := cl.State.Inflight.Get(id); ok && p.FixedHeader.Type == packets.Publish && p.Expiry == parkedExpiry {
			if h.parkQ == nil {
				h.parkQ = map[*mqtt.Client][]uint16{}
			}
			h.parkQ[cl] = q
			return p, true
		}
	}
}

// forgetParked drops a closed connection's queue.
func (h *coreHook) forgetParked(cl *mqtt.Client) {
	h.parkMu.Lock()
	delete(h.parkQ, cl)
	h.parkMu.Unlock()
}

// parkedInOrder returns the ids of the parked PUBLISHes, oldest first.
// Packet ids are allocated in increasing order modulo 2^16, so the oldest is
// the one after the largest gap between consecutive ids on the circle.
func parkedInOrder(inflight []packets.Packet) []uint16 {
	var ids []uint16
	for _, p := range inflight {
		if p.FixedHeader.Type == packets.Publish && p.Expiry == parkedExpiry {
			ids = append(ids, p.PacketID)
		}
	}
	if len(ids) < 2 {
		return ids
	}
	slices.Sort(ids)
	start, gap := 0, 0
	for i := range ids {
		next := ids[(i+1)%len(ids)]
		if d := int(uint16(next - ids[i])); d > gap {
			gap, start = d, (i+1)%len(ids)
		}
	}
	return append(ids[start:], ids[:start]...)
}
