package broker

import (
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Packet identifiers: client and server number their packets independently
// [MQTT-2.2.1-3], but mochi keeps one in-flight map per client for both
// directions. A client PUBLISH, SUBSCRIBE or UNSUBSCRIBE whose id equals one
// of the broker's own in-flight PUBLISHes to that client is refused with
// 0x91, or (PUBLISH) deletes the broker's message, and interleaved QoS 2
// flows with one id end in PUBCOMP 0x92.
//
// The core hook keeps the two spaces apart: an id the client picks that is
// in use by a broker flow is mapped, as the packet is read, to a free id
// (and back on the acknowledgements the broker writes: PUBACK, PUBREC,
// PUBCOMP, SUBACK, UNSUBACK). Ids that do not collide, the usual case, pass
// through unchanged, so nothing is mapped and nothing costs more than one
// lookup. A QoS 2 mapping lives until PUBCOMP, across reconnects of the
// session; mappings are not persisted, so a collided QoS 2 flow interrupted
// by a broker restart still ends with 0x92.

// idSpace maps one session's collided client packet ids to internal ids.
type idSpace struct {
	mu       sync.Mutex
	internal map[uint16]uint16 // client id -> internal id
	client   map[uint16]uint16 // internal id -> client id
	next     uint16
}

func (h *coreHook) idSpace(clientID string, create bool) *idSpace {
	if v, ok := h.ids.Load(clientID); ok {
		return v.(*idSpace)
	}
	if !create {
		return nil
	}
	v, _ := h.ids.LoadOrStore(clientID, &idSpace{
		internal: map[uint16]uint16{}, client: map[uint16]uint16{}, next: 1 << 15,
	})
	return v.(*idSpace)
}

// brokerFlow reports whether an in-flight record belongs to a flow the
// broker started (its PUBLISH to the client, or its PUBREL after the
// client's PUBREC), as opposed to the client's own QoS 1/2 flows.
func brokerFlow(p packets.Packet) bool {
	return p.FixedHeader.Type == packets.Publish || p.FixedHeader.Type == packets.Pubrel
}

// OnPacketRead maps a client-chosen packet id that collides with a broker
// flow. PUBACK, PUBREC and PUBCOMP from the client answer broker flows and
// keep their ids.
func (h *coreHook) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	switch pk.FixedHeader.Type {
	case packets.Connect:
		return stubEmptyWill(pk), nil
	case packets.Publish:
		if pk.FixedHeader.Qos == 0 {
			return pk, nil
		}
	case packets.Subscribe, packets.Unsubscribe, packets.Pubrel:
	default:
		return pk, nil
	}
	if sp := h.idSpace(cl.ID, false); sp != nil {
		sp.mu.Lock()
		y, ok := sp.internal[pk.PacketID]
		sp.mu.Unlock()
		if ok {
			pk.PacketID = y
			return pk, nil
		}
	}
	if pk.FixedHeader.Type == packets.Pubrel {
		return pk, nil
	}
	if p, ok := cl.State.Inflight.Get(pk.PacketID); !ok || !brokerFlow(p) {
		return pk, nil // free, or the client's own flow (a DUP resend)
	}
	sp := h.idSpace(cl.ID, true)
	sp.mu.Lock()
	defer sp.mu.Unlock()
	y := sp.free(cl)
	if y == 0 {
		return pk, nil // every id in use: let mochi refuse it
	}
	sp.internal[pk.PacketID], sp.client[y] = y, pk.PacketID
	pk.PacketID = y
	return pk, nil
}

// free returns an id in use neither in the session's in-flight map nor as a
// mapping, or 0 when there is none. Called with sp.mu held.
func (sp *idSpace) free(cl *mqtt.Client) uint16 {
	for range 1 << 16 {
		y := sp.next
		sp.next++
		if sp.next == 0 {
			sp.next = 1
		}
		if y == 0 {
			continue
		}
		if _, used := sp.client[y]; used {
			continue
		}
		if _, used := cl.State.Inflight.Get(y); used {
			continue
		}
		return y
	}
	return 0
}

// OnPacketEncode maps the ids of acknowledgements to the client back to the
// ids it chose, and forgets a mapping when its flow ends.
func (h *coreHook) OnPacketEncode(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	switch pk.FixedHeader.Type {
	case packets.Connack:
		return announceLimits(cl, pk, h.b.cfg.Limits.ReceiveMaximum)
	case packets.Puback, packets.Pubrec, packets.Pubcomp, packets.Suback, packets.Unsuback:
	default:
		return pk
	}
	sp := h.idSpace(cl.ID, false)
	if sp == nil {
		return pk
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	x, ok := sp.client[pk.PacketID]
	if !ok {
		return pk
	}
	// A successful PUBREC keeps the mapping for the client's PUBREL.
	if pk.FixedHeader.Type != packets.Pubrec || pk.ReasonCode >= 0x80 {
		delete(sp.client, pk.PacketID)
		delete(sp.internal, x)
	}
	pk.PacketID = x
	return pk
}

// forgetIDs drops a session's mappings when the session ends.
func (h *coreHook) forgetIDs(clientID string) { h.ids.Delete(clientID) }
