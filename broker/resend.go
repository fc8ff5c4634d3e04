package broker

import (
	"cmp"
	"slices"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Receive Maximum on a resumed session. After the CONNACK mochi writes
// every message of the session at once, and then lets the client have its
// whole Receive Maximum again on top of them; it also writes the messages
// it held back for the quota while keeping them marked held, and sends them
// a second time later. The client can so have far more unacknowledged QoS
// 1/2 PUBLISHes than it allows [MQTT-3.3.4-9] [MQTT-4.9.0-2].
//
// resendHook, registered after the store's hooks (whose fixes put the
// session's messages in publish order right after the CONNACK), keeps the
// resend within the new connection's Receive Maximum: PUBREL flows and the
// oldest PUBLISHes up to the quota are resent; the rest are taken out of the
// session for the moment of mochi's resend and put back held, to go out one
// by one as acknowledgements free the quota (receivemax.go). The quota left
// is what the resent flows do not use.
type resendHook struct {
	mqtt.HookBase
	out *outboundHook
}

func (h *resendHook) ID() string { return "courier-resend" }
func (h *resendHook) Provides(b byte) bool {
	return b == mqtt.OnPacketSent || b == mqtt.OnQosPublish || b == mqtt.OnSessionEstablished
}
func (h *resendHook) Init(any) error { return nil }

// OnPacketSent limits the resend that follows a CONNACK resuming a session.
func (h *resendHook) OnPacketSent(cl *mqtt.Client, pk packets.Packet, _ []byte) {
	if pk.FixedHeader.Type != packets.Connack || !pk.SessionPresent || pk.ReasonCode >= 0x80 {
		return
	}
	window := int(cl.Properties.Props.ReceiveMaximum)
	if window == 0 {
		return // no Receive Maximum (MQTT 3): mochi keeps no quota either
	}
	all := cl.State.Inflight.GetAll(false)
	slices.SortStableFunc(all, func(a, b packets.Packet) int {
		return cmp.Or(cmp.Compare(a.Created, b.Created), cmp.Compare(a.PacketID, b.PacketID))
	})
	inUse := 0
	for _, p := range all {
		if p.FixedHeader.Type == packets.Pubrel {
			inUse++ // the PUBCOMP is still due: the flow holds quota
		}
	}
	var aside []packets.Packet
	for _, p := range all {
		if p.FixedHeader.Type != packets.Publish {
			continue
		}
		if inUse < window {
			inUse++
			if p.Expiry == parkedExpiry {
				// mochi resends it now: it is no longer held.
				p.Expiry = h.out.queuedExpiry(cl.ID, p)
				cl.State.Inflight.Set(p)
			}
			continue
		}
		aside = append(aside, p)
	}
	for range inUse {
		cl.State.Inflight.DecreaseSendQuota()
	}
	if len(aside) == 0 {
		return
	}
	// A message routed to the client while the held messages are out of
	// the session must not get one of their packet ids: move the client's
	// id counter past them first.
	top := aside[0].PacketID
	for _, p := range aside {
		top = max(top, p.PacketID)
	}
	for range 1 << 16 {
		if id, err := cl.NextPacketID(); err != nil || uint16(id) >= top {
			break
		}
	}
	for _, p := range aside {
		cl.State.Inflight.Delete(p.PacketID)
	}
	h.out.aside.Store(cl, aside)
}

// OnQosPublish runs as mochi resends each message; the first call comes
// right after mochi has taken its list, so the held messages go back then.
func (h *resendHook) OnQosPublish(cl *mqtt.Client, pk packets.Packet, _ int64, _ int) {
	if pk.FixedHeader.Dup {
		h.putBack(cl)
	}
}

// OnSessionEstablished puts the held messages back if nothing was resent.
func (h *resendHook) OnSessionEstablished(cl *mqtt.Client, _ packets.Packet) { h.putBack(cl) }

func (h *resendHook) putBack(cl *mqtt.Client) {
	v, ok := h.out.aside.LoadAndDelete(cl)
	if !ok {
		return
	}
	for _, p := range v.([]packets.Packet) {
		if _, taken := cl.State.Inflight.Get(p.PacketID); taken {
			// Cannot happen unless the client's ids wrapped within the
			// resend; the message keeps its place under a new id.
			id, err := cl.NextPacketID()
			if err != nil {
				h.out.core.b.log.Warn("no packet id for a held message; dropped", "client_id", cl.ID)
				continue
			}
			p.PacketID = uint16(id)
		}
		p.Expiry = parkedExpiry
		cl.State.Inflight.Set(p)
	}
}

// queuedExpiry is the absolute expiry of a held message: the one recorded
// when it was queued, else what its creation time and interval give.
func (h *outboundHook) queuedExpiry(clientID string, p packets.Packet) int64 {
	if s := h.set(clientID, false); s != nil {
		s.mu.Lock()
		e, ok := s.ids[p.PacketID]
		s.mu.Unlock()
		if ok {
			return e
		}
	}
	if p.Properties.MessageExpiryInterval > 0 {
		return p.Created + int64(p.Properties.MessageExpiryInterval)
	}
	return 0
}
