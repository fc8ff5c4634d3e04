package store

import (
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// cachedSubs is the non-shared subscriber set of a topic at generation gen.
type cachedSubs struct {
	gen  uint64
	subs map[string]packets.Subscription
}

func (st *Store) subscriptionsChanged() {
	st.subMu.Lock()
	st.subGen++
	st.subMu.Unlock()
}

// subscribers returns mochi's subscriber set for topic, from a cache when no
// subscription changed since it was computed and the topic has no shared
// subscription (those are chosen per message). Every subscription change
// reaches a hook (OnSubscribed, OnUnsubscribed, also through mochi's
// UnsubscribeClient, OnClientExpired); a change not yet reported only costs
// the write-ahead for that message, as mochi's own fan-out still reaches
// OnQosPublish.
//
// A cached set is returned in dst (the caller's, so that a cache hit
// allocates nothing); the cached map is shared: callers must not change it
// (OnPublish only changes the maps of a set with shared subscriptions, never
// cached).
func (st *Store) subscribers(topic string, dst *mqtt.Subscribers) *mqtt.Subscribers {
	st.subMu.Lock()
	c, ok := st.subCache[topic]
	gen := st.subGen
	st.subMu.Unlock()
	if ok && c.gen == gen {
		*dst = mqtt.Subscribers{Subscriptions: c.subs}
		return dst
	}
	subs := st.server.Topics.Subscribers(topic)
	if len(subs.Shared) == 0 && len(subs.InlineSubscriptions) == 0 {
		st.subMu.Lock()
		if len(st.subCache) >= 4096 {
			clear(st.subCache)
		}
		st.subCache[topic] = cachedSubs{gen: gen, subs: subs.Subscriptions}
		st.subMu.Unlock()
	}
	return subs
}

// OnQosPublish records outbound messages handed to a client (or updates the
// write-ahead record with its packet id) and inbound QoS 2 messages awaiting
// PUBREL.
func (st *Store) OnQosPublish(cl *mqtt.Client, pk packets.Packet, _ int64, _ int) {
	cid, pid := cl.ID, pk.PacketID
	switch pk.FixedHeader.Type {
	case packets.Puback: // inbound QoS 1: mochi sets and deletes at once; nothing to store
		st.idx.Lock()
		st.inQoS1[cid] = pid
		st.idx.Unlock()
	case packets.Pubrec: // inbound QoS 2
		if !persistent(cl) {
			return
		}
		st.idx.Lock()
		m := st.inbound[cid]
		if m == nil {
			m = map[uint16]bool{}
			st.inbound[cid] = m
		}
		seen := m[pid]
		m[pid] = true
		if !seen {
			st.pendingIn[cl] = pid
		}
		st.idx.Unlock()
		if seen {
			return
		}
		r := msgRec{Stage: stagePubrec, Qos: 2, PacketID: pid, Created: pk.Created, Expiry: pk.Expiry}
		st.enqueueFor(cl, op{kind: opSet, key: inboundKey(cid, pid), val: r.encode(kindInbound)})
	case packets.Publish:
		st.qosPublish(cl, pk)
	}
}

func (st *Store) qosPublish(cl *mqtt.Client, pk packets.Packet) {
	cid, pid := cl.ID, pk.PacketID
	tag, tagged := packetTag(pk)
	st.idx.Lock()
	stale, known := st.out[cid][pid]
	if known && pk.FixedHeader.Dup {
		st.idx.Unlock()
		return // a resend of a recorded message
	}
	// A new message (mochi copies it with DUP clear) under an id we still
	// map: mochi ended that flow without a hook (its outbound queue was full,
	// or it sent a quota-held message and forgot it), so the old record goes.
	var seq uint64
	written := false
	if tagged {
		if fan := st.fanouts[tag]; fan != nil {
			if fan.mark(cid) {
				seq, written = tag, true
			}
		}
	}
	if !written && !persistent(cl) {
		st.idx.Unlock()
		return
	}
	if !written {
		seq = st.seq.Add(1)
	}
	m := st.out[cid]
	if m == nil {
		m = map[uint16]uint64{}
		st.out[cid] = m
	}
	m[pid] = seq
	st.idx.Unlock()
	if known && stale != seq {
		st.enqueueLazy(op{kind: opDelete, key: outboundKey(cid, stale)})
	}
	if written && pk.FixedHeader.Qos < 2 {
		return // QoS 1: the write-ahead record needs no packet id
	}
	r := msgFromPacket(stagePublish, pk)
	r.Dup = false
	st.enqueueFor(cl, op{kind: opSet, key: outboundKey(cid, seq), val: r.encode(kindOutbound), create: !written})
}

// OnQosComplete removes a finished flow.
func (st *Store) OnQosComplete(cl *mqtt.Client, pk packets.Packet) {
	cid, pid := cl.ID, pk.PacketID
	switch pk.FixedHeader.Type {
	case packets.Puback:
		st.idx.Lock()
		if p, ok := st.inQoS1[cid]; ok && p == pid {
			delete(st.inQoS1, cid)
			st.idx.Unlock()
			return
		}
		st.idx.Unlock()
		st.dropOutbound(cid, pid)
	case packets.Pubcomp:
		if !st.dropOutbound(cid, pid) {
			// mochi resent a PUBCOMP it could not write before (a resumed
			// session): the inbound flow ends here.
			st.dropInbound(cid, pid)
		}
	case packets.Pubrel:
		st.dropInbound(cid, pid)
	}
}

// OnQosDropped removes a dropped flow (expired, refused, or cleared). It
// ignores a taken-over client: mochi clears the old connection's inflight
// messages after cloning them into the new one, and reports each as dropped.
func (st *Store) OnQosDropped(cl *mqtt.Client, pk packets.Packet) {
	if cl.IsTakenOver() {
		return
	}
	st.dropOutbound(cl.ID, pk.PacketID)
	st.dropInbound(cl.ID, pk.PacketID)
}

// dropOutbound removes an outbound flow and reports whether there was one.
func (st *Store) dropOutbound(cid string, pid uint16) bool {
	st.idx.Lock()
	m := st.out[cid]
	seq, ok := m[pid]
	if ok {
		// An emptied map stays for the client's next message; it goes
		// with the session (forgetClient).
		delete(m, pid)
	}
	st.idx.Unlock()
	if ok {
		st.enqueueLazy(op{kind: opDelete, key: outboundKey(cid, seq)})
	}
	return ok
}

func (st *Store) dropInbound(cid string, pid uint16) {
	st.idx.Lock()
	ok := st.inbound[cid][pid]
	if ok {
		delete(st.inbound[cid], pid)
		if len(st.inbound[cid]) == 0 {
			delete(st.inbound, cid)
		}
	}
	st.idx.Unlock()
	if ok {
		// Not lazy: a lost delete would make the next QoS 2 message that
		// reuses the id look like a duplicate after a restart.
		st.enqueue(op{kind: opDelete, key: inboundKey(cid, pid)})
	}
}
