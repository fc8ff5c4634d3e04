package store

import (
	"fmt"
	"slices"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// ID returns the hook id.
func (st *Store) ID() string { return "courier-store" }

// Provides reports the mochi events the store handles. It does not provide
// OnSysInfoTick or StoredSysInfo: no $SYS writes every second.
func (st *Store) Provides(b byte) bool { return storeProvides[b] }

// storeProvides is the set of mochi events the hook handles, as a lookup table:
// mochi asks every hook before every event.
var storeProvides = func() (t [256]bool) {
	for _, b := range []byte{
		mqtt.OnSessionEstablish,
		mqtt.OnSessionEstablished,
		mqtt.OnDisconnect,
		mqtt.OnSubscribed,
		mqtt.OnUnsubscribed,
		mqtt.OnPublish,
		mqtt.OnPublished,
		mqtt.OnPacketProcessed,
		mqtt.OnPacketEncode,
		mqtt.OnRetainMessage,
		mqtt.OnRetainedExpired,
		mqtt.OnQosPublish,
		mqtt.OnQosComplete,
		mqtt.OnQosDropped,
		mqtt.OnClientExpired,
		mqtt.OnWill,
		mqtt.OnWillSent,
		mqtt.OnStarted,
		mqtt.StoredClients,
		mqtt.StoredSubscriptions,
		mqtt.StoredInflightMessages,
		mqtt.StoredRetainedMessages,
	} {
		t[b] = true
	}
	return t
}()

// Init takes a Config (or *Config) naming the server the store serves.
func (st *Store) Init(config any) error {
	var c Config
	switch v := config.(type) {
	case Config:
		c = v
	case *Config:
		if v != nil {
			c = *v
		}
	}
	if c.Server == nil {
		return ErrNoServer
	}
	st.server = c.Server
	st.fixes = c.Fixes
	if c.Fixes != nil {
		c.Fixes.setRetainedExpired(func(topic string) {
			st.enqueue(op{kind: opDelete, key: retainedKey(topic)})
		})
		c.Fixes.attachStore()
	}
	return nil
}

// Stop does nothing: mochi calls it before its clients have finished
// disconnecting, so the store stays open until Close.
func (st *Store) Stop() error { return nil }

// persistent reports whether a client's session outlives its connection.
func persistent(cl *mqtt.Client) bool {
	if cl == nil || cl.Net.Inline {
		return false
	}
	if cl.Properties.ProtocolVersion == 5 {
		return cl.Properties.Props.SessionExpiryInterval > 0
	}
	return !cl.Properties.Clean
}

func (st *Store) now() int64 { return st.opts.Now().Unix() }

// enqueueFor queues writes that an acknowledgement to cl will promise.
func (st *Store) enqueueFor(cl *mqtt.Client, ops ...op) {
	t := st.enqueue(ops...)
	if cl == nil || cl.Net.Inline {
		return
	}
	st.idx.Lock()
	if t == 0 {
		t = ^uint64(0) // closed: the acknowledgement must fail
	}
	st.owed[cl] = t
	st.idx.Unlock()
}

// OnSessionEstablish wipes what is stored for a client that connects with a
// clean start, before mochi resolves its session.
func (st *Store) OnSessionEstablish(cl *mqtt.Client, pk packets.Packet) {
	st.kinds.Store(cl, willPersist(cl, st.server))
	if !pk.Connect.Clean {
		return
	}
	st.wipeClient(cl.ID)
}

// willPersist is persistent(cl) as it will be once mochi has sent the
// CONNACK, which caps an MQTT 5 session expiry at the server's maximum. It
// runs on the client's own goroutine, before the client is visible to
// publishers.
func willPersist(cl *mqtt.Client, srv *mqtt.Server) bool {
	if cl.Properties.ProtocolVersion == 5 && srv != nil {
		return min(cl.Properties.Props.SessionExpiryInterval, srv.Options.Capabilities.MaximumSessionExpiryInterval) > 0
	}
	return persistent(cl)
}

// persistentFromAnotherGoroutine is persistent for a client that another
// goroutine may be writing: mochi writes a client's session expiry while it
// connects (CONNACK) and disconnects (DISCONNECT) on that client's
// goroutine, so publishers read the answer cached by OnSessionEstablish and
// OnDisconnect. Restored sessions, never connected, are read directly.
func (st *Store) persistentFromAnotherGoroutine(cl *mqtt.Client) bool {
	if v, ok := st.kinds.Load(cl); ok {
		return v.(bool)
	}
	return persistent(cl)
}

// OnSessionEstablished records a persistent session.
func (st *Store) OnSessionEstablished(cl *mqtt.Client, _ packets.Packet) {
	if !persistent(cl) {
		return
	}
	st.idx.Lock()
	st.known[cl.ID] = true
	st.idx.Unlock()
	st.putSession(cl, 0, 0)
}

// putSession stores cl's session; willDue is when its delayed Will is to be
// published (0: none pending).
func (st *Store) putSession(cl *mqtt.Client, disconnected, willDue int64) {
	st.putSessionWill(cl, disconnected, willRecord(cl.Properties.Will, packets.Properties{}, willDue))
}

// willRecord builds the stored form of a Will: mochi's Will, its MQTT 5
// properties (mochi's Will keeps only the user properties; props holds the
// CONNECT's Will properties, zero when unknown) and when it is due.
func willRecord(will mqtt.Will, props packets.Properties, due int64) willRec {
	return willRec{
		Flag:              will.Flag,
		Topic:             will.TopicName,
		Payload:           will.Payload,
		Qos:               will.Qos,
		Retain:            will.Retain,
		Delay:             will.WillDelayInterval,
		User:              will.User,
		Due:               due,
		PayloadFormat:     props.PayloadFormat,
		PayloadFormatFlag: props.PayloadFormatFlag,
		MessageExpiry:     props.MessageExpiryInterval,
		ContentType:       props.ContentType,
		ResponseTopic:     props.ResponseTopic,
		CorrelationData:   props.CorrelationData,
	}
}

// putSessionWill stores cl's session with will as its Will.
func (st *Store) putSessionWill(cl *mqtt.Client, disconnected int64, will willRec) {
	p := cl.Properties
	r := sessionRec{
		ProtocolVersion:        p.ProtocolVersion,
		Clean:                  p.Clean,
		ExpirySet:              p.Props.SessionExpiryIntervalFlag,
		Username:               p.Username,
		Listener:               cl.Net.Listener,
		ExpiryInterval:         p.Props.SessionExpiryInterval,
		Disconnected:           disconnected,
		ReceiveMaximum:         p.Props.ReceiveMaximum,
		TopicAliasMaximum:      p.Props.TopicAliasMaximum,
		MaximumPacketSize:      p.Props.MaximumPacketSize,
		RequestProblemInfo:     p.Props.RequestProblemInfo,
		RequestProblemInfoFlag: p.Props.RequestProblemInfoFlag,
		RequestResponseInfo:    p.Props.RequestResponseInfo,
		User:                   p.Props.User,
		Will:                   will,
	}
	st.enqueue(op{kind: opSet, key: sessionKey(cl.ID), val: r.encode()})
}

// OnDisconnect records the disconnect time of a persistent session, or
// removes a session that ends with its connection. Restored sessions (no
// connection) and taken-over connections are ignored: mochi calls this hook
// for every session it restores, and for the old connection of a takeover.
func (st *Store) OnDisconnect(cl *mqtt.Client, _ error, expire bool) {
	if expire || cl.IsTakenOver() {
		st.kinds.Delete(cl)
	} else if cl.Net.Conn != nil {
		st.kinds.Store(cl, persistent(cl))
	}
	st.idx.Lock()
	delete(st.owed, cl)
	delete(st.pubFans, cl) // its publishes are processed: mochi reads a client's packets on its own goroutine
	due := st.willDue[cl]
	delete(st.willDue, cl)
	held, isHeld := st.willHeld[cl]
	delete(st.willHeld, cl)
	st.idx.Unlock()
	if cl.Net.Conn == nil || cl.Net.Inline || cl.IsTakenOver() {
		return
	}
	if expire {
		st.wipeClient(cl.ID)
		return
	}
	if persistent(cl) {
		if isHeld {
			held.Due = due
			st.putSessionWill(cl, st.now(), held)
		} else {
			st.putSession(cl, st.now(), due)
		}
	}
}

// OnClientExpired removes everything stored for an expired session.
func (st *Store) OnClientExpired(cl *mqtt.Client) {
	st.kinds.Delete(cl)
	if cl.IsTakenOver() {
		return // a connection resumed or replaced the session first: not expired
	}
	st.subscriptionsChanged()
	st.wipeClient(cl.ID)
}

// OnSubscribed stores the granted subscriptions of a persistent session.
func (st *Store) OnSubscribed(cl *mqtt.Client, pk packets.Packet, codes []byte) {
	st.subscriptionsChanged()
	if !persistent(cl) {
		return
	}
	ops := make([]op, 0, len(pk.Filters))
	for i, f := range pk.Filters {
		if i >= len(codes) || codes[i] >= packets.ErrUnspecifiedError.Code {
			continue
		}
		r := subRec{Qos: codes[i], NoLocal: f.NoLocal, RetainAsPublished: f.RetainAsPublished, RetainHandling: f.RetainHandling, Identifier: f.Identifier}
		ops = append(ops, op{kind: opSet, key: subKey(cl.ID, f.Filter), val: r.encode()})
	}
	if len(ops) > 0 {
		st.enqueueFor(cl, ops...)
	}
}

// OnUnsubscribed removes subscriptions of a persistent session.
func (st *Store) OnUnsubscribed(cl *mqtt.Client, pk packets.Packet) {
	st.subscriptionsChanged()
	if !persistent(cl) {
		return
	}
	ops := make([]op, 0, len(pk.Filters))
	for _, f := range pk.Filters {
		ops = append(ops, op{kind: opDelete, key: subKey(cl.ID, f.Filter)})
	}
	if len(ops) > 0 {
		st.enqueueFor(cl, ops...)
	}
}

// OnPublish writes a QoS 1/2 message ahead for every persistent subscriber
// before mochi acknowledges it (mochi sends PUBACK/PUBREC before the
// per-subscriber OnQosPublish calls). The ack waits in OnPacketEncode.
func (st *Store) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if pk.Ignore || pk.FixedHeader.Qos == 0 || st.server == nil {
		return pk, nil
	}
	var cached mqtt.Subscribers
	subs := st.subscribers(pk.TopicName, &cached)
	if len(subs.Subscriptions) == 0 && len(subs.Shared) == 0 {
		return pk, nil
	}
	seq := st.seq.Add(1)
	fan := &fanout{}
	if len(subs.Shared) > 0 && st.fixes != nil {
		st.fixes.preselect(subs, seq)
		subs.MergeSharedSelected()
		fan.shared = true
	}
	maxQos := st.server.Options.Capabilities.MaximumQos
	var opsBuf [1]op
	ops := opsBuf[:0]
	// One record, adjusted per subscriber below.
	r := msgFromPacket(stagePublish, pk)
	r.Dup = false
	r.PacketID = 0
	var idsBuf [4]int
	for id, sub := range subs.Subscriptions {
		if sub.NoLocal && pk.Origin == id { // [MQTT-3.8.3-3]
			continue
		}
		qos := min(pk.FixedHeader.Qos, sub.Qos, maxQos)
		if qos == 0 {
			continue
		}
		scl, ok := st.server.Clients.Get(id)
		if !ok || !st.persistentFromAnotherGoroutine(scl) {
			continue
		}
		r.Qos = qos
		r.Retain = pk.FixedHeader.Retain
		if !sub.FwdRetainedFlag && (scl.Properties.ProtocolVersion < 5 || !sub.RetainAsPublished) {
			r.Retain = false // [MQTT-3.3.1-12]
		}
		r.SubscriptionIDs = nil
		if len(sub.Identifiers) > 0 { // [MQTT-3.3.4-3]
			ids := idsBuf[:0]
			for _, sid := range sub.Identifiers {
				ids = append(ids, sid)
			}
			slices.Sort(ids)
			r.SubscriptionIDs = ids
		}
		fan.add(id)
		key, val := outboundRecord(id, seq, &r)
		ops = append(ops, op{kind: opSet, key: key, val: val, create: true})
	}
	if len(ops) == 0 && !fan.shared {
		return pk, nil
	}
	// A QoS 2 message from a persistent session: its inbound record (which
	// recognises the publisher's DUP resend after a restart) goes in the same
	// write-ahead as the subscribers' copies. Written later, in OnQosPublish,
	// a crash in between left the copies without the record, and the resend
	// was delivered a second time.
	inbound := len(ops) > 0 && pk.FixedHeader.Qos == 2 && !cl.Net.Inline && persistent(cl)
	if inbound {
		r := msgRec{Stage: stagePubrec, Qos: 2, PacketID: pk.PacketID, Created: pk.Created, Expiry: pk.Expiry}
		ops = append(ops, op{kind: opSet, key: inboundKey(cl.ID, pk.PacketID), val: r.encode(kindInbound)})
		st.idx.Lock()
		m := st.inbound[cl.ID]
		if m == nil {
			m = map[uint16]bool{}
			st.inbound[cl.ID] = m
		}
		m[pk.PacketID] = true
		st.pendingIn[cl] = pk.PacketID
		st.idx.Unlock()
	}
	var t uint64
	if len(ops) > 0 {
		t = st.enqueue(ops...)
	}
	// Nothing looks the publish up before OnPublish returns (mochi delivers
	// it after), so its fanout and the acknowledgement's ticket are recorded
	// together, after the write (as enqueueFor does).
	st.idx.Lock()
	st.fanouts[seq] = fan
	if !cl.Net.Inline {
		st.pubFans[cl] = append(st.pubFans[cl], seq)
		if len(ops) > 0 {
			if t == 0 {
				t = ^uint64(0) // closed: the acknowledgement must fail
			}
			st.owed[cl] = t
		}
	}
	st.idx.Unlock()
	fan.tagPacket(&pk, seq)
	return pk, nil
}

// OnPublished ends the write-ahead of a publish: records written for
// subscribers mochi did not deliver to (ACL, quota) are removed.
func (st *Store) OnPublished(cl *mqtt.Client, pk packets.Packet) {
	publisher := cl != nil && !cl.Net.Inline
	seq, tagged := packetTag(pk)
	if !tagged {
		if publisher {
			st.idx.Lock()
			delete(st.pendingIn, cl) // delivered: the inbound record stands
			st.idx.Unlock()
		}
		return
	}
	if ops := st.finishFanout(cl, seq, publisher); len(ops) > 0 {
		st.enqueueLazy(ops...)
	}
}

// finishFanout ends the write-ahead of publish seq and returns the deletes
// of the records written for subscribers it did not reach; delivered: the
// publish was delivered, so its inbound record (if any) stands.
func (st *Store) finishFanout(cl *mqtt.Client, seq uint64, delivered bool) []op {
	st.idx.Lock()
	if delivered {
		delete(st.pendingIn, cl)
	}
	fan := st.fanouts[seq]
	delete(st.fanouts, seq)
	if list, ok := st.pubFans[cl]; ok && cl != nil && !cl.Net.Inline {
		for i, s := range list {
			if s == seq {
				list = append(list[:i], list[i+1:]...)
				break
			}
		}
		// An emptied list stays, for the client's next publish (no
		// allocation); the entry goes when the client disconnects.
		st.pubFans[cl] = list
	}
	st.idx.Unlock()
	if fan == nil {
		if st.fixes != nil {
			st.fixes.forget(seq)
		}
		return nil
	}
	if fan.shared && st.fixes != nil {
		st.fixes.forget(seq)
	}
	var ops []op
	for _, t := range fan.targets {
		if !t.seen {
			ops = append(ops, op{kind: opDelete, key: outboundKey(t.id, seq)})
		}
	}
	fan.targets, fan.index = nil, nil // the packet's copies may keep fan
	return ops
}

// OnPacketProcessed ends write-aheads left open when mochi stopped
// processing a publish early (see abandonPublish), then tells Fixes the
// publish is over (a resuming connection may be waiting for it).
func (st *Store) OnPacketProcessed(cl *mqtt.Client, pk packets.Packet, err error) {
	if pk.FixedHeader.Type == packets.Publish && !cl.Net.Inline {
		st.abandonPublish(cl)
		if st.fixes != nil {
			st.fixes.endQoS2(cl, err != nil && pk.FixedHeader.Qos == 2)
		}
	}
}

// OnPacketEncode holds an acknowledgement until the writes it promises are
// durable: PUBACK/PUBREC to a publisher (the messages written ahead),
// SUBACK/UNSUBACK (the subscriptions), a first QoS 2 PUBLISH to a
// persistent subscriber (its packet id, so a resend after a crash reuses it)
// and a PUBREL to one (the PUBREL stage, written here: see recordPubrel).
func (st *Store) OnPacketEncode(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	switch pk.FixedHeader.Type {
	case packets.Puback, packets.Pubrec, packets.Suback, packets.Unsuback:
	case packets.Pubrel:
		if !st.recordPubrel(cl, pk) {
			return pk
		}
	case packets.Publish:
		if pk.FixedHeader.Qos < 2 || pk.FixedHeader.Dup || !persistent(cl) {
			return pk
		}
	default:
		return pk
	}
	st.idx.Lock()
	t, ok := st.owed[cl]
	st.idx.Unlock()
	if !ok {
		return pk // this client never queued a write
	}
	if err := st.waitDurable(t); err != nil {
		// The promise behind this packet cannot be kept: drop the connection
		// so it is never sent (the client resends after reconnecting).
		st.log.Warn("store write failed, dropping connection", "client_id", cl.ID, "err", err)
		cl.Stop(err)
	}
	return pk
}

func (st *Store) forgetClient(cid string) {
	st.idx.Lock()
	delete(st.out, cid)
	delete(st.inbound, cid)
	delete(st.inQoS1, cid)
	st.idx.Unlock()
}

// wipeClient removes everything stored for cid. Only clients that ever had a
// persistent session can have records, so others cost nothing (a prefix
// delete walks Badger's tables).
func (st *Store) wipeClient(cid string) {
	st.forgetClient(cid)
	st.idx.Lock()
	known := st.known[cid]
	delete(st.known, cid)
	st.idx.Unlock()
	if known {
		st.enqueue(deleteClientOps(cid, false)...)
	}
}

// OnRetainMessage stores or clears a retained message.
func (st *Store) OnRetainMessage(cl *mqtt.Client, pk packets.Packet, _ int64) {
	if len(pk.Payload) == 0 {
		st.enqueueFor(cl, op{kind: opDelete, key: retainedKey(pk.TopicName)})
		return
	}
	r := msgFromPacket(stageRetain, pk)
	r.PacketID = 0
	r.Dup = false
	r.Retain = true
	st.enqueueFor(cl, op{kind: opSet, key: retainedKey(pk.TopicName), val: r.encode(kindRetained)})
}

// OnRetainedExpired removes an expired retained message.
func (st *Store) OnRetainedExpired(topic string) {
	st.enqueue(op{kind: opDelete, key: retainedKey(topic)})
}

// String describes the store for logs.
func (st *Store) String() string { return fmt.Sprintf("store(%s)", st.db.Opts().Dir) }
