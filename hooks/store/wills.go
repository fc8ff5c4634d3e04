package store

import (
	"math"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Delayed Wills: mochi parks a Will with a Will Delay Interval in memory
// until it is due, so a restart lost it. The store records when the Will
// is due in the session record as the connection ends, clears it when the
// Will is published or the client comes back, and after a restart
// publishes the Wills of restored sessions that fall due while the client
// stays away [MQTT-3.1.3-9]: at the Will's time, or when the session ends
// if that is sooner.
//
// This covers Wills that mochi parks. A hook before the store that takes
// Will publication over (courier's broker does) hands mochi an empty Will,
// so it tells the store instead: WillDelayed as it parks a delayed Will,
// WillDone once it has published it. The store then keeps the Will in the
// session record as above, and publishes it after a restart.

// WillDelayed records, from a hook's OnWill (before mochi calls the store's
// OnDisconnect), that cl's Will was taken over by that hook and is due at
// due. will is the Will as the client sent it and props its MQTT 5 Will
// properties from the CONNECT (Payload Format Indicator, Message Expiry
// Interval, Content Type, Response Topic, Correlation Data; zero for MQTT
// 3): a Will published after a restart carries them all.
func (st *Store) WillDelayed(cl *mqtt.Client, will mqtt.Will, props packets.Properties, due time.Time) {
	if cl.Net.Inline || !persistent(cl) {
		return
	}
	st.idx.Lock()
	st.willDue[cl] = due.Unix()
	st.willHeld[cl] = willRecord(will, props, 0)
	st.idx.Unlock()
}

// WillDone clears the pending Will of the session id from its record, once
// the hook that holds it has published it while the client stayed away.
func (st *Store) WillDone(id string) {
	cl, ok := st.server.Clients.Get(id)
	if !ok || !cl.Closed() {
		return // gone, or back: a live session's record is written as it connects
	}
	st.idx.Lock()
	known := st.known[id]
	st.idx.Unlock()
	if known {
		st.putSessionWill(cl, cl.StopTime(), willRec{})
	}
}

// pendingWill is a restored session's Will waiting for its time.
type pendingWill struct {
	due  int64 // unix seconds
	ends int64 // when the session expires (unix seconds)
	rec  sessionRec
}

// OnWill notes when a persistent session's Will is due if mochi delays it.
// It runs after the broker's own hooks, which may have deferred the Will
// indefinitely (a graceful shutdown): such a Will is not pending.
func (st *Store) OnWill(cl *mqtt.Client, will mqtt.Will) (mqtt.Will, error) {
	d := cl.Properties.Will.WillDelayInterval
	if d == 0 || d == math.MaxUint32 || cl.Net.Inline || !persistent(cl) {
		return will, nil
	}
	st.idx.Lock()
	st.willDue[cl] = st.now() + int64(d)
	st.idx.Unlock()
	return will, nil
}

// OnWillSent clears a delayed Will that mochi has published from its
// session record.
func (st *Store) OnWillSent(cl *mqtt.Client, pk packets.Packet) {
	if pk.Connect.WillProperties.WillDelayInterval == 0 || cl.Net.Inline || !persistent(cl) {
		return // an immediate Will: OnDisconnect writes the session next
	}
	st.idx.Lock()
	known := st.known[cl.ID]
	st.idx.Unlock()
	if known {
		st.putSession(cl, cl.StopTime(), 0)
	}
}

// restoreWill queues the pending Will of a restored session.
func (st *Store) restoreWill(cid string, r sessionRec, ends int64) {
	if r.Will.Due == 0 || r.Will.Flag == 0 {
		return
	}
	st.willMu.Lock()
	st.wills[cid] = pendingWill{due: min(r.Will.Due, ends), ends: ends, rec: r}
	st.willMu.Unlock()
}

// OnStarted starts publishing the restored Wills once mochi serves.
func (st *Store) OnStarted() {
	st.willMu.Lock()
	n := len(st.wills)
	st.willMu.Unlock()
	if n == 0 {
		return
	}
	st.willStart.Do(func() {
		st.wg.Add(1)
		go st.willLoop()
	})
}

// willLoop publishes each restored Will when it is due, and ends when none
// is left or the store closes.
func (st *Store) willLoop() {
	defer st.wg.Done()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-st.quit:
			return
		case <-t.C:
		}
		next, left := st.publishDueWills()
		if !left {
			return
		}
		t.Reset(time.Until(time.Unix(next, 0)))
	}
}

// publishDueWills publishes the Wills that are due and returns when the
// next one is.
func (st *Store) publishDueWills() (next int64, left bool) {
	now := st.now()
	st.willMu.Lock()
	var due []string
	for cid, w := range st.wills {
		if w.due <= now {
			due = append(due, cid)
		} else if !left || w.due < next {
			next, left = w.due, true
		}
	}
	pending := make([]pendingWill, len(due))
	for i, cid := range due {
		pending[i] = st.wills[cid]
		delete(st.wills, cid)
	}
	st.willMu.Unlock()
	for i, cid := range due {
		st.publishRestoredWill(cid, pending[i], now)
	}
	return next, left
}

// publishRestoredWill publishes a restored session's Will unless the
// client has come back, and clears it from the session record.
func (st *Store) publishRestoredWill(cid string, w pendingWill, now int64) {
	cl, ok := st.server.Clients.Get(cid)
	switch {
	case ok && (cl.Net.Conn != nil || cl.IsTakenOver()):
		return // the client reconnected: no Will [MQTT-3.1.3-9]
	case !ok && now < w.ends:
		return // the session was replaced before its end
	}
	pk := w.rec.Will.packet()
	if pk.FixedHeader.Qos > 0 {
		pk.PacketID = 1 // validity only: an inline publish is never acknowledged
	}
	// An inline client named for the session, so that no-local
	// subscriptions of the same client id skip it, as they would mochi's.
	inl := st.server.NewClient(nil, "local", cid, true)
	if err := st.server.InjectPacket(inl, pk); err != nil {
		st.log.Warn("delayed will not published", "client_id", cid, "err", err)
		return
	}
	st.log.Debug("delayed will published after restart", "client_id", cid)
	if ok {
		r := w.rec
		r.Will = willRec{}
		st.enqueue(op{kind: opSet, key: sessionKey(cid), val: r.encode()})
	}
}

// packet builds the PUBLISH of a restored Will with every property it was
// sent with, as the broker builds a live one [MQTT-3.1.3-10]. Its Message
// Expiry Interval is the Will's own: mochi counts it from this publication,
// as for a live Will, not from the CONNECT.
func (w *willRec) packet() packets.Packet {
	return packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: w.Qos, Retain: w.Retain}, // [MQTT-3.1.2-14] [MQTT-3.1.2-15]
		TopicName:   w.Topic,
		Payload:     w.Payload,
		Properties: packets.Properties{
			User:                  w.User, // in order
			PayloadFormat:         w.PayloadFormat,
			PayloadFormatFlag:     w.PayloadFormatFlag,
			MessageExpiryInterval: w.MessageExpiry,
			ContentType:           w.ContentType,
			ResponseTopic:         w.ResponseTopic,
			CorrelationData:       w.CorrelationData,
		},
	}
}
