package store

import (
	"sort"
	"sync/atomic"

	"github.com/dgraph-io/badger/v4"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/storage"
)

// scan calls fn for every key/value under prefix. Values are copies.
func (st *Store) scan(prefix []byte, fn func(k, v []byte)) error {
	return st.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 64})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			v, err := item.ValueCopy(nil)
			if err != nil {
				st.log.Warn("unreadable record", "err", err)
				continue
			}
			fn(item.KeyCopy(nil), v)
		}
		return nil
	})
}

// quarantine moves a corrupt record under the quarantine prefix, logs it
// (the key kind, never the value) and counts it.
func (st *Store) quarantine(k, v []byte, err error) {
	st.quarantined.Add(1)
	st.log.Warn("corrupt record set aside", "kind", string(k[:1]), "err", err)
	st.enqueue(op{kind: opSet, key: quarantineKey(k), val: v}, op{kind: opDelete, key: k})
}

// sessionExpiry mirrors mochi's clearExpiredClients: v5 sessions with the
// interval set use it, others the server maximum.
func (st *Store) sessionExpiry(r sessionRec) int64 {
	max := int64(st.server.Options.Capabilities.MaximumSessionExpiryInterval)
	if r.ProtocolVersion == 5 && r.ExpirySet {
		return int64(r.ExpiryInterval)
	}
	return max
}

// StoredClients returns the sessions that have not expired, with the session
// expiry interval shortened to what is left of it (mochi restarts the clock
// at load). Expired sessions are removed with everything they own.
func (st *Store) StoredClients() ([]storage.Client, error) {
	now := st.now()
	var out []storage.Client
	alive := map[string]bool{}
	v3left := map[string]int64{}
	err := st.scan([]byte{kindSession}, func(k, v []byte) {
		pk, err := parseKey(k)
		if err != nil {
			st.quarantine(k, v, err)
			return
		}
		r, err := decodeSession(v)
		if err != nil {
			st.quarantine(k, v, err)
			return
		}
		disc := r.Disconnected
		if disc == 0 { // the broker stopped without seeing the disconnect: count from now
			disc = now
			r.Disconnected = now
			st.enqueue(op{kind: opSet, key: k, val: r.encode()})
		}
		remaining := disc + st.sessionExpiry(r) - now
		if remaining <= 0 {
			st.enqueue(deleteClientOps(pk.client, false)...)
			return
		}
		if r.ProtocolVersion != 5 && r.Clean {
			st.enqueue(deleteClientOps(pk.client, false)...)
			return
		}
		alive[pk.client] = true
		st.restoreWill(pk.client, r, disc+st.sessionExpiry(r))
		c := storage.Client{
			ID:              pk.client,
			T:               storage.ClientKey,
			Listener:        r.Listener,
			Username:        r.Username,
			ProtocolVersion: r.ProtocolVersion,
			Clean:           r.Clean,
			Properties: storage.ClientProperties{
				User:                   r.User,
				MaximumPacketSize:      r.MaximumPacketSize,
				ReceiveMaximum:         r.ReceiveMaximum,
				TopicAliasMaximum:      r.TopicAliasMaximum,
				RequestProblemInfo:     r.RequestProblemInfo,
				RequestProblemInfoFlag: r.RequestProblemInfoFlag,
				RequestResponseInfo:    r.RequestResponseInfo,
			},
			Will: storage.ClientWill{
				Payload:           r.Will.Payload,
				User:              r.Will.User,
				TopicName:         r.Will.Topic,
				Flag:              r.Will.Flag,
				WillDelayInterval: r.Will.Delay,
				Qos:               r.Will.Qos,
				Retain:            r.Will.Retain,
			},
		}
		if r.ProtocolVersion == 5 {
			c.Properties.SessionExpiryInterval = uint32(min(remaining, 1<<32-1))
			c.Properties.SessionExpiryIntervalFlag = true
		} else {
			v3left[pk.client] = remaining
		}
		out = append(out, c)
	})
	st.idx.Lock()
	st.v3left = v3left
	st.restoredIDs = alive
	for id := range alive {
		st.known[id] = true
	}
	st.idx.Unlock()
	st.log.Info("sessions restored", "sessions", len(out))
	return out, err
}

func (st *Store) isRestored(cid string) bool {
	st.idx.Lock()
	defer st.idx.Unlock()
	return st.restoredIDs[cid]
}

// StoredSubscriptions returns the subscriptions of restored sessions;
// subscriptions of sessions that are gone are removed (mochi would put them
// in the topic index as ghosts).
func (st *Store) StoredSubscriptions() ([]storage.Subscription, error) {
	var out []storage.Subscription
	err := st.scan([]byte{kindSub}, func(k, v []byte) {
		pk, err := parseKey(k)
		if err != nil {
			st.quarantine(k, v, err)
			return
		}
		if !st.isRestored(pk.client) {
			st.enqueue(op{kind: opDelete, key: k})
			return
		}
		r, err := decodeSub(v)
		if err != nil {
			st.quarantine(k, v, err)
			return
		}
		out = append(out, storage.Subscription{
			T:                 storage.SubscriptionKey,
			Client:            pk.client,
			Filter:            pk.rest,
			Identifier:        r.Identifier,
			RetainHandling:    r.RetainHandling,
			Qos:               r.Qos,
			RetainAsPublished: r.RetainAsPublished,
			NoLocal:           r.NoLocal,
		})
	})
	return out, err
}

type restoredMsg struct {
	key []byte
	seq uint64
	in  bool
	rec msgRec
}

// StoredInflightMessages loads queued and inflight messages straight into
// the restored clients (mochi's own loader drops the expiry and keeps map
// order) and returns none. Within a client, messages get Created stamps in
// publish (sequence) order so mochi's resend, which sorts by uint16(Created),
// sends them in order. Packet ids are assigned to records that never had
// one, and kept for the rest.
func (st *Store) StoredInflightMessages() ([]storage.Message, error) {
	now := st.now()
	byClient := map[string][]restoredMsg{}
	load := func(kind byte) error {
		return st.scan([]byte{kind}, func(k, v []byte) {
			pk, err := parseKey(k)
			if err != nil {
				st.quarantine(k, v, err)
				return
			}
			if !st.isRestored(pk.client) {
				st.enqueue(op{kind: opDelete, key: k})
				return
			}
			r, err := decodeMsg(kind, v)
			if err != nil {
				st.quarantine(k, v, err)
				return
			}
			if r.Stage == stagePublish && r.Expiry > 0 && r.Expiry <= now {
				st.enqueue(op{kind: opDelete, key: k}) // [MQTT-3.3.2-5]
				return
			}
			byClient[pk.client] = append(byClient[pk.client], restoredMsg{key: k, seq: pk.seq, in: kind == kindInbound, rec: r})
		})
	}
	if err := load(kindOutbound); err != nil {
		return nil, err
	}
	if err := load(kindInbound); err != nil {
		return nil, err
	}
	total := 0
	for cid, msgs := range byClient {
		cl, ok := st.server.Clients.Get(cid)
		if !ok {
			continue
		}
		total += st.restoreClientInflight(cl, msgs, now)
	}
	atomic.AddInt64(&st.server.Info.Inflight, int64(total))
	st.log.Info("messages restored", "messages", total)
	st.restoreV3Expiry()
	return nil, nil
}

// restoreV3Expiry makes restored MQTT 3 sessions expire when their time is
// up counted from the disconnect, not from the restart. mochi expires an
// MQTT 3 session at the server's maximum after the client object stopped,
// and a restored object stops at load; only an MQTT 5 session carries its
// own interval. So the restored (offline, never connected) object is given
// what is left of the maximum as an MQTT 5 interval: mochi's expiry, and
// every hook it calls, then run at the right time. A returning client gets
// a new object from its own CONNECT, with its own version. It runs after
// mochi has loaded the clients and before it serves. The one visible trace:
// the expiry of such a session reports protocol version 5.
func (st *Store) restoreV3Expiry() {
	st.idx.Lock()
	left := st.v3left
	st.v3left = nil
	st.idx.Unlock()
	max := int64(st.server.Options.Capabilities.MaximumSessionExpiryInterval)
	for cid, remaining := range left {
		if remaining >= max {
			continue // the full interval: mochi counts it right
		}
		cl, ok := st.server.Clients.Get(cid)
		if !ok || cl.Net.Conn != nil {
			continue
		}
		cl.Properties.ProtocolVersion = 5
		cl.Properties.Props.SessionExpiryInterval = uint32(remaining)
		cl.Properties.Props.SessionExpiryIntervalFlag = true
	}
}

func (st *Store) restoreClientInflight(cl *mqtt.Client, msgs []restoredMsg, now int64) int {
	sort.SliceStable(msgs, func(i, j int) bool {
		if msgs[i].in != msgs[j].in {
			return msgs[i].in
		}
		return msgs[i].seq < msgs[j].seq
	})
	used := map[uint16]bool{}
	for i := range msgs {
		m := &msgs[i]
		if m.rec.PacketID != 0 && used[m.rec.PacketID] && !m.in && m.rec.Stage == stagePublish {
			m.rec.PacketID = 0 // a duplicate id: give it a new one
		}
		if m.rec.PacketID != 0 {
			used[m.rec.PacketID] = true
		}
	}
	next := uint16(0)
	// Created stamps: consecutive and not wrapping in uint16.
	base := now
	if int64(uint16(base))+int64(len(msgs)) > 0xFFFF {
		base += 0x10000 - int64(uint16(base))
	}
	var ops []op
	defer func() {
		if len(ops) > 0 {
			st.enqueue(ops...)
		}
	}()
	st.idx.Lock()
	defer st.idx.Unlock()
	for i := range msgs {
		m := &msgs[i]
		if m.rec.PacketID == 0 {
			for {
				next++
				if next == 0 {
					next = 1
				}
				if !used[next] {
					break
				}
			}
			m.rec.PacketID = next
			used[next] = true
			if m.rec.Qos == 2 { // keep the id for QoS 2 across another restart
				ops = append(ops, op{kind: opSet, key: m.key, val: m.rec.encode(kindOutbound)})
			}
		}
		pk := m.rec.packet()
		if m.rec.Stage == stagePublish {
			pk.FixedHeader.Dup = m.rec.Dup
		}
		pk.Created = base + int64(i)
		cl.State.Inflight.Set(pk)
		if m.in {
			if st.inbound[cl.ID] == nil {
				st.inbound[cl.ID] = map[uint16]bool{}
			}
			st.inbound[cl.ID][pk.PacketID] = true
		} else {
			if st.out[cl.ID] == nil {
				st.out[cl.ID] = map[uint16]uint64{}
			}
			st.out[cl.ID][pk.PacketID] = m.seq
		}
	}
	return len(msgs)
}

// StoredRetainedMessages loads retained messages straight into the topic
// index with their expiry and protocol version (mochi's loader drops both,
// so a restored message would never expire) and returns none. Expired ones
// are removed.
func (st *Store) StoredRetainedMessages() ([]storage.Message, error) {
	now := st.now()
	n := 0
	err := st.scan([]byte{kindRetained}, func(k, v []byte) {
		r, err := decodeMsg(kindRetained, v)
		if err != nil {
			st.quarantine(k, v, err)
			return
		}
		if r.Expiry > 0 && r.Expiry <= now || len(r.Payload) == 0 {
			st.enqueue(op{kind: opDelete, key: k})
			return
		}
		pk := r.packet()
		pk.FixedHeader.Retain = true
		pk.TopicName = string(k[1:])
		st.server.Topics.RetainMessage(pk)
		n++
	})
	atomic.StoreInt64(&st.server.Info.Retained, int64(st.server.Topics.Retained.Len()))
	st.log.Info("retained messages restored", "messages", n)
	return nil, err
}
