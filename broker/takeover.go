package broker

import (
	"bytes"
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Session takeover: when a client resumes a session that still has a client
// object (connected elsewhere, or offline), mochi's inheritClientSession
// marks the old object taken over, clones its in-flight messages to the new
// client, and only later registers the new client. A QoS 1/2 message routed
// in that window is added to the old object and never sent: it is lost
// (with the store, it is resent only after a restart, out of order).
//
// The core hook catches those messages as mochi stores them on the
// taken-over object (OnQosPublish) and hands them to the new client once it
// is registered (OnSessionEstablished), or at once if it already is.
type takeovers struct {
	mu      sync.Mutex
	pending map[string][]packets.Packet // client id -> messages routed to a taken-over object
	live    map[string]*mqtt.Client     // client id -> the client that resumed, while a takeover settles
}

func newTakeovers() *takeovers {
	return &takeovers{pending: map[string][]packets.Packet{}, live: map[string]*mqtt.Client{}}
}

// OnSessionEstablish runs before mochi looks for an existing session.
func (h *coreHook) OnSessionEstablish(cl *mqtt.Client, pk packets.Packet) {
	h.awaitExpiry(cl.ID)
	if pk.Connect.Clean {
		return // a clean start discards the old session's messages anyway
	}
	if old, ok := h.b.srv.Clients.Get(cl.ID); ok && old != cl {
		h.to.mu.Lock()
		if _, ok := h.to.pending[cl.ID]; !ok {
			h.to.pending[cl.ID] = nil // expect a takeover for this id
		}
		h.to.mu.Unlock()
	}
}

// OnQosPublish catches a message stored on a taken-over client object.
func (h *coreHook) OnQosPublish(cl *mqtt.Client, pk packets.Packet, _ int64, _ int) {
	if pk.FixedHeader.Type != packets.Publish || !cl.IsTakenOver() {
		return
	}
	h.to.mu.Lock()
	next, settled := h.to.live[cl.ID]
	_, expected := h.to.pending[cl.ID]
	if !settled && expected {
		h.to.pending[cl.ID] = append(h.to.pending[cl.ID], pk)
	}
	h.to.mu.Unlock()
	if settled {
		h.handOver(next, []packets.Packet{pk})
	}
}

// takeoverEstablished hands the caught messages to the resumed client.
func (h *coreHook) takeoverEstablished(cl *mqtt.Client) {
	h.to.mu.Lock()
	late, expected := h.to.pending[cl.ID]
	if expected {
		delete(h.to.pending, cl.ID)
		h.to.live[cl.ID] = cl
	}
	h.to.mu.Unlock()
	if len(late) > 0 {
		h.handOver(cl, late)
	}
}

// takeoverEnded forgets a settled takeover when that client disconnects.
func (h *coreHook) takeoverEnded(cl *mqtt.Client) {
	h.to.mu.Lock()
	if h.to.live[cl.ID] == cl {
		delete(h.to.live, cl.ID)
	}
	h.to.mu.Unlock()
}

// handOver stores messages on the resumed client and sends them, skipping
// any that mochi's clone already carried over.
func (h *coreHook) handOver(cl *mqtt.Client, msgs []packets.Packet) {
	for _, p := range msgs {
		if q, ok := cl.State.Inflight.Get(p.PacketID); ok {
			if q.FixedHeader.Type == packets.Publish && q.TopicName == p.TopicName && q.Created == p.Created && bytes.Equal(q.Payload, p.Payload) {
				continue // cloned already
			}
			id, err := cl.NextPacketID()
			if err != nil {
				h.dropped(cl, p, "packet_ids_exhausted")
				continue
			}
			p.PacketID = uint16(id)
		}
		p.FixedHeader.Dup = false
		cl.State.Inflight.Set(p)
		if err := cl.WritePacket(p); err != nil {
			// Still in flight: resent when the session resumes again.
			h.b.log.Debug("hand over message", "client_id", cl.ID, "err", err)
		}
	}
}
