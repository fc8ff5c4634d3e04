package broker

import (
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// outboundHook corrects the packets mochi sends to clients. It is registered
// right after the core hook, before the store, so its view of a resumed
// session comes before the store's fixes reorder it. Each repair names the
// mochi v2.7.9 behaviour it guards against:
//
//   - DUP: mochi sets DUP on every PUBLISH it resends after a reconnect,
//     including messages it never sent (queued while the client was away,
//     or held back by the client's Receive Maximum). The hook remembers
//     which outbound QoS 1/2 messages have not been written yet and clears
//     DUP on their first attempt [MQTT-3.3.1-1] [MQTT-3.3.1-3].
//   - Maximum Packet Size: mochi refuses to write a PUBLISH larger than the
//     client's maximum but leaves it in flight, holding its packet id and a
//     unit of the client's Receive Maximum for ever, resends it on every
//     reconnect (where the failed write closes the connection), and strips
//     the user properties of a PUBLISH they would not fit instead of dropping
//     it. The hook drops such a message for that client as if delivered
//     [MQTT-3.1.2-24] [MQTT-3.1.2-25] [MQTT-3.3.2-17].
//   - Acknowledgement properties: mochi's own trimming of Reason String and
//     User Properties miscounts the fixed header, so an acknowledgement
//     close to the client's maximum is not sent at all. The hook leaves them
//     out until the packet fits [MQTT-3.4.2-2] [MQTT-3.4.2-3] (and the same
//     rules for PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK).
//   - Request Problem Information 0: mochi then strips User Properties from
//     PUBLISH packets too, which must carry them [MQTT-3.1.2-29]
//     [MQTT-3.3.2-17].
//   - Expiry: mochi removes expired queued messages on a one-second tick and
//     sends one that expired in between with an expiry of 1 s; the same
//     tick deletes messages whose delivery has started, so a QoS 2 flow
//     never completes. The hook drops a message that expired before its
//     first attempt, and stops expiry once it is attempted [MQTT-3.3.2-5]
//     [MQTT-4.3.3-7] [MQTT-4.4.0-1].
//   - Topic aliases: mochi assigns an outbound alias when it queues a
//     message, not when it writes it, and keeps the topic-less aliased copy
//     in flight, so a resend after a reconnect names a topic through an
//     alias the new connection never saw [MQTT-3.3.2-7]. The broker sends no
//     topic aliases, which a server may always choose [MQTT-3.1.2-26].
//
// Also: acknowledgements checked against the flow they name (ackcheck.go),
// No Local with overlapping subscriptions (nolocal.go), the published
// Message Expiry Interval under a maximum message age (expiryfix.go), and,
// with resendHook, Receive Maximum on a resumed session (resend.go).
type outboundHook struct {
	mqtt.HookBase
	core     *coreHook
	provides [256]bool
	maxAge   int64 // Limits.MaxMessageExpiry in seconds (0: none)

	unsent    sync.Map // client id -> *idSet: queued QoS 1/2 PUBLISHes never written
	aside     sync.Map // *mqtt.Client -> []packets.Packet: held back from mochi's resend (resend.go)
	resending sync.Map // *mqtt.Client -> struct{}: mochi is resending its session
	noLocal   sync.Map // client id -> struct{}: has subscribed with No Local (nolocal.go)
	subIDs    sync.Map // client id -> struct{}: has subscribed with an identifier (subids.go)
}

func newOutboundHook(core *coreHook) *outboundHook {
	h := &outboundHook{core: core, maxAge: int64(core.b.cfg.Limits.MaxMessageExpiry / time.Second)}
	for _, b := range []byte{
		mqtt.OnConnect, mqtt.OnQosPublish, mqtt.OnPacketEncode, mqtt.OnPacketSent, mqtt.OnPacketRead,
		mqtt.OnSessionEstablished, mqtt.OnQosComplete, mqtt.OnQosDropped,
		mqtt.OnDisconnect, mqtt.OnClientExpired,
	} {
		h.provides[b] = true
	}
	h.provides[mqtt.OnPublish] = true   // nolocal.go, expiryfix.go
	h.provides[mqtt.OnSubscribe] = true // nolocal.go, subids.go
	return h
}

func (h *outboundHook) ID() string           { return "courier-outbound" }
func (h *outboundHook) Provides(b byte) bool { return h.provides[b] }
func (h *outboundHook) Init(any) error       { return nil }

// idSet holds the packet ids of a session's queued QoS 1/2 PUBLISHes that
// were never written, each with its absolute expiry (unix seconds, 0 for
// none): mochi overwrites the expiry of a message it holds back for Receive
// Maximum, and the store's fixes restamp its creation time on a resume.
type idSet struct {
	mu  sync.Mutex
	ids map[uint16]int64
}

func (h *outboundHook) set(clientID string, create bool) *idSet {
	if v, ok := h.unsent.Load(clientID); ok {
		return v.(*idSet)
	}
	if !create {
		return nil
	}
	v, _ := h.unsent.LoadOrStore(clientID, &idSet{ids: map[uint16]int64{}})
	return v.(*idSet)
}

// OnConnect turns mochi's outbound topic aliases off (see the type comment).
func (h *outboundHook) OnConnect(cl *mqtt.Client, _ packets.Packet) error {
	cl.Properties.Props.TopicAliasMaximum = 0
	return nil
}

// OnQosPublish notes a new outbound QoS 1/2 message as not yet written.
// mochi calls it for every new message it stores for a client (DUP clear),
// and again for each resend (DUP set), which is ignored.
func (h *outboundHook) OnQosPublish(cl *mqtt.Client, pk packets.Packet, _ int64, _ int) {
	if pk.FixedHeader.Type != packets.Publish || pk.FixedHeader.Dup {
		return
	}
	s := h.set(cl.ID, true)
	s.mu.Lock()
	var expiry int64
	if hasExpiry(pk) {
		expiry = pk.Expiry
	}
	s.ids[pk.PacketID] = expiry
	s.mu.Unlock()
}

// OnPacketSent, after a CONNACK that resumes a session and before mochi
// resends the session's messages, drops what must not be resent.
func (h *outboundHook) OnPacketSent(cl *mqtt.Client, pk packets.Packet, _ []byte) {
	switch pk.FixedHeader.Type {
	case packets.Connack:
		if pk.SessionPresent && pk.ReasonCode < 0x80 {
			h.resending.Store(cl, struct{}{})
			h.beforeResend(cl)
		}
	}
}

// OnSessionEstablished runs right after mochi's resend.
func (h *outboundHook) OnSessionEstablished(cl *mqtt.Client, _ packets.Packet) {
	h.resending.Delete(cl)
}

func (h *outboundHook) forget(clientID string, id uint16) {
	if s := h.set(clientID, false); s != nil {
		s.mu.Lock()
		delete(s.ids, id)
		s.mu.Unlock()
	}
}

func (h *outboundHook) OnQosComplete(cl *mqtt.Client, pk packets.Packet) {
	h.forget(cl.ID, pk.PacketID)
}

func (h *outboundHook) OnQosDropped(cl *mqtt.Client, pk packets.Packet) {
	if cl.IsTakenOver() { // mochi moved the taken-over client's messages on
		return
	}
	h.forget(cl.ID, pk.PacketID)
	if pk.FixedHeader.Type == packets.Pubrec && (pk.ReasonCode >= 0x80 || !pk.ReasonCodeValid()) {
		// The client refused a QoS 2 message with its PUBREC: the flow is
		// over and its quota free again [MQTT-4.9.0-2]. mochi forgets the
		// quota, and a subscriber with a small Receive Maximum stalls.
		cl.State.Inflight.IncreaseSendQuota()
		h.core.OnQosComplete(cl, pk)
	}
}

func (h *outboundHook) OnDisconnect(cl *mqtt.Client, _ error, expire bool) {
	h.resending.Delete(cl)
	if expire && !cl.IsTakenOver() {
		h.unsent.Delete(cl.ID)
		h.noLocal.Delete(cl.ID)
		h.subIDs.Delete(cl.ID)
	}
}

func (h *outboundHook) OnClientExpired(cl *mqtt.Client) {
	h.unsent.Delete(cl.ID)
	h.noLocal.Delete(cl.ID)
	h.subIDs.Delete(cl.ID)
}

// OnPacketEncode corrects a packet just before mochi encodes and writes it.
func (h *outboundHook) OnPacketEncode(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	if pk.FixedHeader.Type != packets.Publish {
		if pk.Mods.MaxSize > 0 && pk.ProtocolVersion == 5 && (pk.Properties.ReasonString != "" || len(pk.Properties.User) > 0) {
			return fitProperties(pk)
		}
		return pk
	}
	// PUBLISH carries its User Properties whatever Request Problem
	// Information says [MQTT-3.1.2-29] [MQTT-3.3.2-17].
	pk.Mods.DisallowProblemInfo = false
	pk = h.withSubscriptionIDs(cl, pk)
	first := false
	if pk.FixedHeader.Qos > 0 {
		if s := h.set(cl.ID, false); s != nil {
			s.mu.Lock()
			// Taken off the set as the attempt begins: a resend on a new
			// connection may come before this write returns.
			var expiry int64
			expiry, first = s.ids[pk.PacketID]
			delete(s.ids, pk.PacketID)
			s.mu.Unlock()
			if first {
				pk.FixedHeader.Dup = false // [MQTT-3.3.1-3]
				if expiry > 0 {
					pk.Expiry = expiry // [MQTT-3.3.2-6]
					pk.Properties.MessageExpiryInterval = uint32(max(1, expiry-time.Now().Unix()))
				}
			}
		}
	}
	if h.maxAge > 0 {
		pk = h.ownExpiry(pk)
	}
	tooLarge := pk.Mods.MaxSize > 0 && publishLen(pk) > int(pk.Mods.MaxSize) || misrouted(cl, pk)
	// Only a message whose delivery has not started expires [MQTT-3.3.2-5]:
	// a resend is due whatever its age [MQTT-4.4.0-1] [MQTT-4.3.3-7].
	expired := (first || pk.FixedHeader.Qos == 0) && hasExpiry(pk) && pk.Expiry <= time.Now().Unix()
	if !tooLarge && !expired {
		if first && hasExpiry(pk) {
			keepSent(cl, pk)
		}
		return pk
	}
	if _, ok := h.resending.Load(cl); ok {
		// A failed write would end mochi's resend and the connection;
		// beforeResend already dropped what was due.
		return pk
	}
	if pk.FixedHeader.Qos > 0 {
		h.drop(cl, pk.PacketID)
	}
	// mochi batches the packets it writes while more are queued, and writes
	// the batch out with the last one: if this was the last, the batch would
	// wait for the client's next packet. Write it out now.
	cl.Lock()
	_ = mochiFlushOutbuf(cl)
	cl.Unlock()
	pk.Mods.MaxSize = 1 // mochi refuses to write it: ErrPacketTooLarge [MQTT-3.1.2-25] [MQTT-3.3.2-5]
	return pk
}

// keepSent stops expiry for a QoS 1/2 message as its first PUBLISH is
// written: its delivery has started, so it is resent until acknowledged
// [MQTT-4.4.0-1] and a QoS 2 message never expires once sent
// [MQTT-4.3.3-7]. mochi's one-second sweep would otherwise delete it from
// the session, and a QoS 2 flow could never complete. A resend carries the
// interval of the first attempt.
func keepSent(cl *mqtt.Client, pk packets.Packet) {
	p, ok := cl.State.Inflight.Get(pk.PacketID)
	if !ok || p.FixedHeader.Type != packets.Publish || p.Expiry <= 0 {
		return
	}
	p.Expiry = 0
	p.Properties.MessageExpiryInterval = pk.Properties.MessageExpiryInterval
	cl.State.Inflight.Set(p)
}

// drop ends an outbound QoS 1/2 flow whose PUBLISH will not be written, as
// if the client had acknowledged it: the packet id and the Receive Maximum
// quota are freed, and the next message held back by that quota goes out.
func (h *outboundHook) drop(cl *mqtt.Client, id uint16) {
	p, ok := cl.State.Inflight.Get(id)
	if !ok || p.FixedHeader.Type != packets.Publish {
		return
	}
	parked := p.Expiry == parkedExpiry
	dropInflight(cl, p)
	if !parked {
		cl.State.Inflight.IncreaseSendQuota()
	}
	h.core.OnQosComplete(cl, packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: id})
}

// dropInflight removes an outbound message through mochi's own expiry
// path, which reports it to every hook's OnQosDropped (the store deletes
// its record) and keeps mochi's counters right.
func dropInflight(cl *mqtt.Client, p packets.Packet) {
	p.Expiry = 1
	p.ProtocolVersion = 5
	cl.State.Inflight.Set(p)
	cl.ClearExpiredInflights(time.Now().Unix(), 0)
}

// hasExpiry reports whether pk.Expiry is the time its Message Expiry
// Interval ends. A delayed Will carries its due time there instead.
func hasExpiry(pk packets.Packet) bool {
	return pk.Expiry > 0 && pk.Connect.WillProperties.WillDelayInterval == 0
}

// beforeResend drops the messages of a resumed session that must not be
// resent: expired ones [MQTT-3.3.2-5], and ones larger than the client's
// Maximum Packet Size on this connection [MQTT-3.1.2-25]. mochi would
// resend them all.
func (h *outboundHook) beforeResend(cl *mqtt.Client) {
	now := time.Now().Unix()
	max := int(cl.Properties.Props.MaximumPacketSize)
	for _, p := range cl.State.Inflight.GetAll(false) {
		if p.FixedHeader.Type != packets.Publish {
			continue
		}
		var expiry int64
		switch {
		case p.Connect.WillProperties.WillDelayInterval > 0: // a Will's due time, not an expiry
		case p.Expiry == parkedExpiry:
			if p.Properties.MessageExpiryInterval > 0 {
				expiry = p.Created + int64(p.Properties.MessageExpiryInterval)
			}
		default:
			expiry = p.Expiry
		}
		// A message whose delivery may have started is not expired
		// [MQTT-3.3.2-5] [MQTT-4.3.3-7].
		expired := expiry > 0 && expiry <= now && h.isUnsent(cl.ID, p.PacketID)
		tooLarge := false
		if max > 0 {
			q := p
			q.ProtocolVersion = cl.Properties.ProtocolVersion
			q.Mods.AllowResponseInfo = true
			q.FixedHeader.Dup = true
			if q.Expiry > 0 && q.Properties.MessageExpiryInterval == 0 {
				q.Properties.MessageExpiryInterval = 1 // as mochi's WritePacket sets it
			}
			if h.maxAge > 0 {
				q = h.ownExpiry(q)
			}
			tooLarge = publishLen(q) > max
		}
		if expired || tooLarge || misrouted(cl, p) {
			dropInflight(cl, p)
			h.forget(cl.ID, p.PacketID)
		}
	}
}

// isUnsent reports whether the session's message id was never written.
func (h *outboundHook) isUnsent(clientID string, id uint16) bool {
	s := h.set(clientID, false)
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.ids[id]
	return ok
}
