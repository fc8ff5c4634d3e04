package store

import (
	"io"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Fixes is a mochi hook that repairs core behaviour a storage hook cannot.
// Register it on every broker, with or without a Store; create it with
// NewFixes. Each repair names the mochi v2.7.9 behaviour it guards against:
//
//   - Resend order: mochi resends a session's queued messages sorted by
//     uint16(Created), whole seconds, over map order, so messages queued in
//     the same second come back shuffled. Fixes restamps Created in publish
//     order right after CONNACK, before mochi's resend.
//   - Expired sessions: mochi deletes an expired client but leaves its
//     subscriptions in the topic index, so a new session with the same
//     client id receives messages on them. Fixes unsubscribes and clears the
//     expired session.
//   - QoS 2 DUP: mochi answers a resent QoS 2 PUBLISH whose PUBREL has not
//     arrived with PUBREC 0x91, and the publisher then never releases the
//     packet id, which stays poisoned. Fixes answers PUBREC 0x00 and drops
//     the duplicate [MQTT-4.3.3-10].
//   - QoS 2 PUBREC that never left: when mochi cannot write the PUBREC for
//     a new QoS 2 PUBLISH (the connection is closing), it returns without
//     delivering the message but keeps the packet id as received, so the
//     publisher's resend is taken for a duplicate and the message is lost.
//     Fixes forgets the id again.
//   - QoS 2 takeover mid-packet: a reconnecting client's new connection
//     clones the session's inflight map while the old connection may still
//     be processing a QoS 2 PUBLISH or PUBREL, so the new one can inherit a
//     PUBREC that was never written (and then swallow the resend) or miss a
//     release. The new connection waits before its CONNACK until the old
//     one is done and applies the outcome to what it inherited.
//   - QoS 2 resend after PUBREL: mochi resends its stored PUBRECs and
//     PUBCOMPs when a session resumes (only PUBLISH and PUBREL are resent
//     [MQTT-4.4.0-1]). A client resending a PUBLISH it has already released
//     (paho.mqtt.golang does: it stores the PUBLISH, never the PUBREL) then
//     sends PUBREL and the DUP PUBLISH, which mochi takes for a new message.
//     Fixes answers a DUP PUBLISH whose inherited id is released on the
//     resumed connection as the duplicate it is [MQTT-4.3.3-10].
//   - Resume order: mochi registers a resuming client before it resends
//     the session's messages, so a message published meanwhile overtakes
//     them. Fixes holds deliveries to the client until the resend is done.
//   - Shared subscriptions: mochi picks the first map entry of a group, at
//     random and possibly offline. Fixes delivers round-robin over the
//     connected members, and to an offline member only when none is
//     connected.
//   - Packet id namespaces: mochi keeps a client's inbound and outbound QoS
//     flows in one map keyed by packet id, and an inbound QoS 1/2 PUBLISH
//     deletes the outbound message that has the same id (a misreading of
//     [MQTT-4.3.2-5]), so the client's later PUBACK for it is ignored and the
//     message is never completed (a storage hook keeps it forever). Fixes
//     puts an erased outbound QoS 1 entry back once the inbound QoS 1
//     publish is processed.
//   - Expired retained messages: mochi expires them on a 1 s tick and
//     delivers them to subscribers in between. Fixes removes expired retained
//     messages matching a SUBSCRIBE before mochi delivers retained messages.
//
// Fixes is safe for concurrent use.
type Fixes struct {
	mqtt.HookBase

	server *mqtt.Server
	log    *slog.Logger
	now    func() time.Time

	mu                sync.Mutex
	order             map[string]map[uint16]uint64 // client -> packet id -> publish ordinal
	ordinal           uint64
	inQoS1            map[string]uint16
	rr                map[string]uint64                          // shared group filter -> deliveries so far
	chosen            map[uint64]map[string]packets.Subscription // store seq -> shared choice
	shadowed          map[*mqtt.Client]packets.Packet            // outbound inflight entry an inbound PUBLISH's id would erase
	resumed           map[*mqtt.Client]map[uint16]bool           // inbound QoS 2 ids inherited at CONNACK -> released on this connection
	nResumed          atomic.Int64                               // len(resumed), read without the lock on the hot path
	resuming          sync.Map                                   // *mqtt.Client resuming a session -> chan struct{}, closed when the resend is done
	nResuming         atomic.Int64                               // entries in resuming
	inQoS2            map[string]*qos2Packet                     // client id -> inbound QoS 2 PUBLISH or PUBREL its connection is processing (or, taken over, has processed)
	pred              map[*mqtt.Client]*mqtt.Client              // connecting client -> the connection whose session it may take over
	storeEnds         atomic.Bool                                // a store ends each PUBLISH (attachStore)
	onRetainedExpired func(topic string)
}

// FixesOption configures NewFixes.
type FixesOption func(*Fixes)

// WithFixesLogger sets the logger (default: discard).
func WithFixesLogger(l *slog.Logger) FixesOption {
	return func(f *Fixes) {
		if l != nil {
			f.log = l
		}
	}
}

// WithFixesClock sets the clock used for expiry checks (default time.Now).
func WithFixesClock(now func() time.Time) FixesOption {
	return func(f *Fixes) {
		if now != nil {
			f.now = now
		}
	}
}

// NewFixes returns the fixes hook for server. Register it with
// server.AddHook(f, nil) before any storage hook and before any auth hook
// (mochi stops at the first hook that allows an ACL check, and Fixes uses
// that check to hold deliveries to a resuming session).
func NewFixes(server *mqtt.Server, opts ...FixesOption) *Fixes {
	f := &Fixes{
		server:   server,
		log:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		now:      time.Now,
		order:    map[string]map[uint16]uint64{},
		inQoS1:   map[string]uint16{},
		rr:       map[string]uint64{},
		chosen:   map[uint64]map[string]packets.Subscription{},
		shadowed: map[*mqtt.Client]packets.Packet{},
		resumed:  map[*mqtt.Client]map[uint16]bool{},
		inQoS2:   map[string]*qos2Packet{},
		pred:     map[*mqtt.Client]*mqtt.Client{},
	}
	for _, o := range opts {
		o(f)
	}
	f.log = f.log.With("component", "hooks.fixes")
	return f
}

// ID returns the hook id.
func (f *Fixes) ID() string { return "courier-fixes" }

// Provides reports the events the fixes handle.
func (f *Fixes) Provides(b byte) bool { return fixesProvides[b] }

// fixesProvides is the set of mochi events the hook handles, as a lookup table:
// mochi asks every hook before every event.
var fixesProvides = func() (t [256]bool) {
	for _, b := range []byte{
		mqtt.OnPacketRead,
		mqtt.OnPacketProcessed,
		mqtt.OnPacketSent,
		mqtt.OnPacketEncode,
		mqtt.OnSelectSubscribers,
		mqtt.OnSessionEstablish,
		mqtt.OnSessionEstablished,
		mqtt.OnACLCheck,
		mqtt.OnSubscribe,
		mqtt.OnQosPublish,
		mqtt.OnQosComplete,
		mqtt.OnQosDropped,
		mqtt.OnDisconnect,
		mqtt.OnClientExpired,
	} {
		t[b] = true
	}
	return t
}()

func (f *Fixes) setRetainedExpired(fn func(string)) {
	f.mu.Lock()
	f.onRetainedExpired = fn
	f.mu.Unlock()
}

// OnPacketRead answers a resent QoS 2 PUBLISH that is still waiting for its
// PUBREL with a normal PUBREC and turns the packet into one mochi ignores,
// so it is neither delivered twice nor answered 0x91 [MQTT-4.3.3-10].
// (Rejecting the packet here would make mochi drop the connection.)
func (f *Fixes) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline {
		return pk, nil
	}
	if pk.FixedHeader.Type == packets.Pubrel {
		f.noteRelease(cl, pk.PacketID)
		f.beginQoS2(cl, pk)
		return pk, nil
	}
	if pk.FixedHeader.Type != packets.Publish || pk.FixedHeader.Qos == 0 {
		return pk, nil
	}
	inf, ok := cl.State.Inflight.Get(pk.PacketID)
	switch {
	case !ok:
		if f.releasedResend(cl, pk) {
			return f.duplicate(cl, pk), nil
		}
	case inf.FixedHeader.Type == packets.Publish || inf.FixedHeader.Type == packets.Pubrel:
		// An outbound flow with the same id: mochi's processPublish will
		// erase it. Keep it to put back in OnPacketProcessed.
		f.mu.Lock()
		f.shadowed[cl] = inf
		f.mu.Unlock()
	case pk.FixedHeader.Qos == 2 && inf.FixedHeader.Type == packets.Pubrec:
		return f.duplicate(cl, pk), nil
	}
	if pk.FixedHeader.Qos == 2 {
		f.beginQoS2(cl, pk)
	}
	return pk, nil
}

// duplicate answers a QoS 2 PUBLISH already received with PUBREC 0x00 and
// returns it as a packet mochi ignores.
func (f *Fixes) duplicate(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	ack := packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Pubrec},
		PacketID:    pk.PacketID,
		ReasonCode:  packets.CodeSuccess.Code,
	}
	if err := cl.WritePacket(ack); err != nil {
		f.log.Debug("pubrec for duplicate failed", "client_id", cl.ID, "err", err)
	}
	pk.FixedHeader.Qos = 0
	pk.FixedHeader.Dup = false
	pk.FixedHeader.Retain = false
	pk.PacketID = 0
	pk.Ignore = true
	return pk
}

// OnPacketProcessed forgets the id of a new QoS 2 PUBLISH that mochi could
// not acknowledge, and puts back an outbound inflight entry that mochi
// erased while processing an inbound PUBLISH with the same packet id. An
// inbound QoS 2 flow now holds that id until PUBREL, so only QoS 1 can be
// repaired. It also ends the QoS 2 PUBREL or PUBLISH noted for a takeover
// (the store ends a PUBLISH when there is one: see awaitPredecessor).
func (f *Fixes) OnPacketProcessed(cl *mqtt.Client, pk packets.Packet, err error) {
	if pk.FixedHeader.Type == packets.Pubrel {
		f.endQoS2(cl, err != nil)
		return
	}
	if pk.FixedHeader.Type != packets.Publish {
		return
	}
	if err != nil && pk.FixedHeader.Qos == 2 && !cl.Net.Inline {
		// Still QoS 2: not a duplicate (OnPacketRead turns those into QoS
		// 0), so any PUBREC in flight for the id is this publish's own.
		f.unreceive(cl, pk.PacketID)
	}
	if !f.storeEnds.Load() {
		f.endQoS2(cl, err != nil && pk.FixedHeader.Qos == 2)
	}
	f.mu.Lock()
	inf, ok := f.shadowed[cl]
	delete(f.shadowed, cl)
	f.mu.Unlock()
	if !ok {
		return
	}
	if cur, taken := cl.State.Inflight.Get(inf.PacketID); taken {
		if cur.FixedHeader.Type == packets.Pubrec {
			f.log.Warn("outbound message lost to an inbound QoS 2 packet id", "client_id", cl.ID)
		}
		return // still there (mochi refused the publish) or lost to QoS 2
	}
	cl.State.Inflight.Set(inf)
}

// OnPacketEncode holds a resumed session's CONNACK until the connection it
// replaces is done with a QoS 2 PUBLISH or PUBREL (see awaitPredecessor).
func (f *Fixes) OnPacketEncode(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	if pk.FixedHeader.Type == packets.Connack && !cl.Net.Inline {
		f.awaitPredecessor(cl, pk.SessionPresent)
		if pk.SessionPresent {
			dropInheritedPubacks(cl)
		}
	}
	return pk
}

// OnPacketSent restamps a resumed session's inflight messages in publish
// order right after its CONNACK, before mochi resends them.
func (f *Fixes) OnPacketSent(cl *mqtt.Client, pk packets.Packet, _ []byte) {
	if pk.FixedHeader.Type != packets.Connack || !pk.SessionPresent {
		return
	}
	all := cl.State.Inflight.GetAll(false)
	f.noteResumed(cl, all)
	if len(all) < 2 {
		return
	}
	f.mu.Lock()
	ords := f.order[cl.ID]
	type item struct {
		pk    packets.Packet
		known bool
		ord   uint64
	}
	items := make([]item, len(all))
	for i, p := range all {
		o, ok := ords[p.PacketID]
		items[i] = item{pk: p, known: ok && p.FixedHeader.Type == packets.Publish, ord: o}
	}
	f.mu.Unlock()
	// Restored messages (no ordinal) are older than anything published since
	// the start; their Created stamps are already in order.
	sort.SliceStable(items, func(i, j int) bool {
		a, b := items[i], items[j]
		if a.known != b.known {
			return !a.known
		}
		if a.known {
			return a.ord < b.ord
		}
		if a.pk.Created != b.pk.Created {
			return a.pk.Created < b.pk.Created
		}
		return a.pk.PacketID < b.pk.PacketID
	})
	base := f.now().Unix()
	if int64(uint16(base))+int64(len(items)) > 0xFFFF {
		base += 0x10000 - int64(uint16(base))
	}
	for i := range items {
		p := items[i].pk
		p.Created = base + int64(i)
		cl.State.Inflight.Set(p)
	}
}

// OnQosPublish gives each new outbound message its publish ordinal.
func (f *Fixes) OnQosPublish(cl *mqtt.Client, pk packets.Packet, _ int64, _ int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch pk.FixedHeader.Type {
	case packets.Puback:
		f.inQoS1[cl.ID] = pk.PacketID
	case packets.Publish:
		if pk.FixedHeader.Dup {
			return
		}
		m := f.order[cl.ID]
		if m == nil {
			m = map[uint16]uint64{}
			f.order[cl.ID] = m
		}
		f.ordinal++ // a new message: any ordinal left under this id is stale
		m[pk.PacketID] = f.ordinal
	}
}

// OnQosComplete forgets a finished outbound message.
func (f *Fixes) OnQosComplete(cl *mqtt.Client, pk packets.Packet) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if pk.FixedHeader.Type == packets.Puback {
		if p, ok := f.inQoS1[cl.ID]; ok && p == pk.PacketID {
			delete(f.inQoS1, cl.ID)
			return
		}
	}
	if pk.FixedHeader.Type == packets.Pubrel {
		return
	}
	f.forgetID(cl.ID, pk.PacketID)
}

// OnQosDropped forgets a dropped outbound message (not for a taken-over
// client, whose messages mochi has just moved to the new connection).
func (f *Fixes) OnQosDropped(cl *mqtt.Client, pk packets.Packet) {
	if cl.IsTakenOver() {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.forgetID(cl.ID, pk.PacketID)
}

// forgetID forgets an ordinal. An emptied map stays for the client's next
// message; it goes when the session ends (OnDisconnect, OnClientExpired).
func (f *Fixes) forgetID(cid string, pid uint16) {
	if m := f.order[cid]; m != nil {
		delete(m, pid)
	}
}

// OnDisconnect forgets what is kept per connection, and the ordinals of a
// session that ends.
func (f *Fixes) OnDisconnect(cl *mqtt.Client, _ error, expire bool) {
	f.endResume(cl)
	f.forgetConnection(cl)
	if expire && !cl.IsTakenOver() {
		f.mu.Lock()
		delete(f.order, cl.ID)
		delete(f.inQoS1, cl.ID)
		f.mu.Unlock()
	}
}

// OnClientExpired removes an expired session from the topic index and drops
// its queued messages; mochi only deletes the client, leaving its
// subscriptions to be delivered to whoever next uses the client id.
func (f *Fixes) OnClientExpired(cl *mqtt.Client) {
	f.endResume(cl)
	f.forgetQoS2(cl)
	f.server.UnsubscribeClient(cl)
	cl.ClearInflights()
	f.mu.Lock()
	delete(f.order, cl.ID)
	delete(f.inQoS1, cl.ID)
	f.mu.Unlock()
}

// OnSubscribe removes expired retained messages the new subscriptions would
// receive, before mochi delivers retained messages [MQTT-3.3.2-5].
func (f *Fixes) OnSubscribe(_ *mqtt.Client, pk packets.Packet) packets.Packet {
	now := f.now().Unix()
	for _, sub := range pk.Filters {
		for _, m := range f.server.Topics.Messages(sub.Filter) {
			if m.Expiry > 0 && m.Expiry <= now {
				f.server.Topics.RetainMessage(packets.Packet{TopicName: m.TopicName})
				f.mu.Lock()
				fn := f.onRetainedExpired
				f.mu.Unlock()
				if fn != nil {
					fn(m.TopicName)
				}
			}
		}
	}
	return pk
}

// OnSelectSubscribers picks one member per shared group: round-robin over
// connected members; when none is connected, over offline members whose
// session outlives the connection; failing that, over all members. A choice
// made earlier by the store (which writes messages ahead) is reused.
func (f *Fixes) OnSelectSubscribers(subs *mqtt.Subscribers, pk packets.Packet) *mqtt.Subscribers {
	if seq, ok := packetTag(pk); ok {
		f.mu.Lock()
		sel, found := f.chosen[seq]
		delete(f.chosen, seq)
		f.mu.Unlock()
		if found {
			subs.SharedSelected = sel
			return subs
		}
	}
	f.selectShared(subs)
	return subs
}

func (f *Fixes) preselect(subs *mqtt.Subscribers, seq uint64) {
	f.selectShared(subs)
	f.mu.Lock()
	f.chosen[seq] = subs.SharedSelected
	f.mu.Unlock()
}

func (f *Fixes) forget(seq uint64) {
	f.mu.Lock()
	delete(f.chosen, seq)
	f.mu.Unlock()
}

func (f *Fixes) selectShared(subs *mqtt.Subscribers) {
	sel := make(map[string]packets.Subscription, len(subs.Shared))
	groups := make([]string, 0, len(subs.Shared))
	for g := range subs.Shared {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	for _, g := range groups {
		members := subs.Shared[g]
		ids := make([]string, 0, len(members))
		var online, kept []string
		for id := range members {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			cl, ok := f.server.Clients.Get(id)
			switch {
			case !ok:
			case !cl.Closed():
				online = append(online, id)
			case persistent(cl):
				kept = append(kept, id) // offline, but its session queues messages
			}
		}
		pool := online
		if len(pool) == 0 {
			pool = kept
		}
		if len(pool) == 0 {
			pool = ids
		}
		if len(pool) == 0 {
			continue
		}
		f.mu.Lock()
		n := f.rr[g]
		f.rr[g] = n + 1
		f.mu.Unlock()
		id := pool[n%uint64(len(pool))]
		sub := members[id]
		if prev, ok := sel[id]; ok {
			sub = prev.Merge(sub)
		}
		sel[id] = sub
	}
	subs.SharedSelected = sel
}
