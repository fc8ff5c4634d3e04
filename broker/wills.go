package broker

import (
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Wills. mochi publishes a Will with its user properties only (payload
// format, message expiry, content type, response topic and correlation data
// are lost); keeps a delayed Will waiting after the session it belongs to
// has ended (with Session Expiry 0 the Will must go at once); drops the
// delayed Will of a taken-over connection even when the new connection
// starts a clean session, which ends the old one; and can still publish a
// delayed Will after its client came back, because the old connection's
// read loop races the new connection's CONNACK.
//
// The lifecycle hook takes Will publication over. mochi calls OnWill when
// a connection closed without DISCONNECT 0x00 (network failure, keepalive
// timeout, protocol error, DISCONNECT 0x04, takeover): the hook hands mochi
// an empty Will back (an empty topic matches no subscription; not retained,
// not delayed, so mochi publishes nothing) and publishes the real one
// itself, with all its properties, at once or when its delay has passed.
// Whatever marks a Will as gone for mochi (the flag cleared by a normal
// DISCONNECT or by a re-authentication whose grants no longer cover its
// topic) still applies: mochi does not call OnWill then.
//
// Delayed Wills live in memory: a shutdown drops them (a shutdown is not a
// client failure). With a store, the store keeps a waiting Will with all its
// properties in the session record (WillDelayed, WillDone) and publishes it
// when due after the restart (hooks/store wills.go).
type wills struct {
	mu      sync.Mutex
	conns   map[*mqtt.Client]*connWill // each established connection with a Will
	latest  map[string]latestConn      // client id -> its newest connection
	pending map[string]*delayedWill    // client id -> a Will waiting for its delay
	stopped bool
	wg      sync.WaitGroup // timers started and not yet stopped or run
}

// latestConn is the newest connection for a client id, recorded before
// mochi takes an older one over.
type latestConn struct {
	cl    *mqtt.Client
	clean bool // Clean Start (MQTT 5) / clean session (MQTT 3)
}

// connWill is the Will of an established connection, copied on the
// connection's own goroutine (another goroutine must not read mochi's
// client fields, which mochi writes without locks).
type connWill struct {
	will    mqtt.Will
	props   packets.Properties // MQTT 5 Will properties (mochi keeps only user properties)
	version byte
	expiry  uint32 // session expiry at CONNECT
	deleted bool   // a DISCONNECT other than 0x04 deleted it [MQTT-3.1.2-10]
	settled bool   // published, scheduled or cancelled: it is not handled again
}

type delayedWill struct {
	timer *time.Timer
	pk    packets.Packet
}

func newWills() *wills {
	return &wills{
		conns:   map[*mqtt.Client]*connWill{},
		latest:  map[string]latestConn{},
		pending: map[string]*delayedWill{},
	}
}

// willConnecting records cl as its id's newest connection and settles a
// Will still waiting for its delay: a connection that resumes the session
// cancels it [MQTT-3.1.3-9]; one with Clean Start ends the session, so the
// Will goes now [MQTT-3.1.2-8].
func (h *lifecycleHook) willConnecting(cl *mqtt.Client, pk packets.Packet) {
	w := h.wills
	w.mu.Lock()
	prev, hadPrev := w.latest[cl.ID]
	w.latest[cl.ID] = latestConn{cl: cl, clean: pk.Connect.Clean}
	d := w.pending[cl.ID]
	delete(w.pending, cl.ID)
	// A connection still registered for the id is about to be taken over.
	// mochi does not reliably call OnWill for it: the taken-over read loop
	// can find itself stopped and end as if after a DISCONNECT, clearing
	// the Will (seen: 1 in ~10 runs of the 3.1.1 takeover test under load).
	// The takeover settles that Will here, once [MQTT-3.1.4-3].
	var taken *connWill
	if hadPrev && prev.cl != cl {
		if cw := w.conns[prev.cl]; cw != nil && !cw.deleted && !cw.settled {
			cw.settled = true
			taken = cw
		}
	}
	w.mu.Unlock()
	if taken != nil {
		h.settleWill(cl.ID, taken, true, pk.Connect.Clean)
	}
	h.recordWill(cl, pk)
	if d == nil {
		return
	}
	w.cancel(d)
	if pk.Connect.Clean {
		h.publishWill(cl.ID, d.pk)
	}
}

// recordWill copies the Will of a connection with one, on its own
// goroutine and before its CONNACK (a takeover can follow the CONNACK at
// once): its MQTT 5 properties (mochi keeps only the user properties) and
// what a takeover needs to settle it.
func (h *lifecycleHook) recordWill(cl *mqtt.Client, pk packets.Packet) {
	if !pk.Connect.WillFlag {
		return
	}
	cw := &connWill{
		will:    cl.Properties.Will,
		version: cl.Properties.ProtocolVersion,
		expiry:  cl.Properties.Props.SessionExpiryInterval,
	}
	if cw.version == 5 {
		cw.props = pk.Connect.WillProperties
	}
	h.wills.mu.Lock()
	h.wills.conns[cl] = cw
	h.wills.mu.Unlock()
}

// willDisconnecting notes a DISCONNECT read from cl: anything but 0x04
// (Disconnect with Will Message) deletes the Will [MQTT-3.1.2-10].
func (h *lifecycleHook) willDisconnecting(cl *mqtt.Client, pk packets.Packet) {
	if pk.ReasonCode == 0x04 {
		return
	}
	h.wills.mu.Lock()
	if cw := h.wills.conns[cl]; cw != nil {
		cw.deleted = true
	}
	h.wills.mu.Unlock()
}

// ended forgets a connection once mochi is done with it.
func (w *wills) ended(cl *mqtt.Client) {
	w.mu.Lock()
	delete(w.conns, cl)
	if l, ok := w.latest[cl.ID]; ok && l.cl == cl {
		delete(w.latest, cl.ID)
	}
	w.mu.Unlock()
}

// OnWill takes the Will from mochi (see wills) and publishes it now, later
// or not at all. It runs on the client's goroutine.
func (h *lifecycleHook) OnWill(cl *mqtt.Client, will mqtt.Will) (mqtt.Will, error) {
	cl.Properties.Will.WillDelayInterval = 0 // mochi must not park its empty Will
	if h.b.stopping.Load() {
		return mqtt.Will{}, nil // a graceful shutdown is not a client failure
	}
	w := h.wills
	w.mu.Lock()
	cw := w.conns[cl]
	if cw == nil { // a Will from a connection not yet established
		cw = &connWill{version: cl.Properties.ProtocolVersion}
	}
	settled := cw.settled
	cw.settled = true
	l, ok := w.latest[cl.ID]
	w.mu.Unlock()
	if settled { // a takeover already did (willConnecting)
		return mqtt.Will{}, nil
	}
	c := *cw
	c.will = will
	c.expiry = cl.Properties.Props.SessionExpiryInterval // as in force at the close: a DISCONNECT may have changed it
	superseded := ok && l.cl != cl
	if d := h.settleWill(cl.ID, &c, superseded, superseded && l.clean); d > 0 && h.b.store != nil {
		// The store keeps the waiting Will in the session record, so a
		// restart does not lose it (hooks/store wills.go).
		h.b.store.WillDelayed(cl, will, c.props, time.Now().Add(d))
	}
	return mqtt.Will{}, nil
}

// settleWill publishes, schedules or drops a connection's Will, and returns
// the delay it scheduled it for (0 when it did not). superseded says a newer
// connection for the id exists, newClean whether that one started a clean
// session.
func (h *lifecycleHook) settleWill(id string, cw *connWill, superseded, newClean bool) time.Duration {
	will, props := cw.will, cw.props
	pk := packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: will.Qos, Retain: will.Retain}, // [MQTT-3.1.2-14] [MQTT-3.1.2-15]
		TopicName:   will.TopicName,
		Payload:     will.Payload,
		Properties: packets.Properties{
			User:                  will.User, // in order [MQTT-3.1.3-10]
			PayloadFormat:         props.PayloadFormat,
			PayloadFormatFlag:     props.PayloadFormatFlag,
			MessageExpiryInterval: props.MessageExpiryInterval,
			ContentType:           props.ContentType,
			ResponseTopic:         props.ResponseTopic,
			CorrelationData:       props.CorrelationData,
		},
	}
	if pk.FixedHeader.Qos > 0 {
		pk.PacketID = 1 // mochi validates injected packets; the id is never used
	}

	// The Will goes when its delay has passed or its session ends,
	// whichever comes first [MQTT-3.1.2-8]: with Session Expiry 0 (or any
	// MQTT 3 clean session) the session ends now.
	var delay uint32
	if cw.version == 5 {
		delay = min(props.WillDelayInterval, cw.expiry)
	}
	switch {
	case superseded && !newClean && delay > 0:
		// A new connection resumed the session before the delay. [MQTT-3.1.3-9]
	case superseded || delay == 0:
		h.publishWill(id, pk)
	default:
		d := time.Duration(delay) * time.Second
		h.scheduleWill(id, pk, d)
		return d
	}
	return 0
}

// scheduleWill publishes pk after delay unless a connection for the client
// id comes first.
func (h *lifecycleHook) scheduleWill(id string, pk packets.Packet, delay time.Duration) {
	w := h.wills
	d := &delayedWill{pk: pk}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return
	}
	if old := w.pending[id]; old != nil {
		w.cancel(old) // cannot happen: the connection in between took it
	}
	w.pending[id] = d
	w.wg.Add(1)
	d.timer = time.AfterFunc(delay, func() {
		defer w.wg.Done()
		w.mu.Lock()
		due := w.pending[id] == d && !w.stopped
		if due {
			delete(w.pending, id)
		}
		w.mu.Unlock()
		if due && !h.b.stopping.Load() {
			h.publishWill(id, d.pk)
			if h.b.store != nil {
				h.b.store.WillDone(id)
			}
		}
	})
}

// cancel stops d's timer; if it had not fired, its callback never runs.
func (w *wills) cancel(d *delayedWill) {
	if d.timer.Stop() {
		w.wg.Done()
	}
}

// stop drops every waiting Will and waits for timers already firing.
func (w *wills) stop() {
	w.mu.Lock()
	w.stopped = true
	pending := w.pending
	w.pending = map[string]*delayedWill{}
	w.mu.Unlock()
	for _, d := range pending {
		w.cancel(d)
	}
	w.wg.Wait()
}

// publishWill publishes a Will as its client would have: through an inline
// client carrying the client's id (so No Local subscriptions of that id
// skip it, and stores see its origin). Inline publishes skip the ACL check,
// as mochi's own Will publication does: authentication hooks vet the Will
// topic at CONNECT.
func (h *lifecycleHook) publishWill(origin string, pk packets.Packet) {
	cl := h.b.srv.NewClient(nil, mqtt.LocalListener, origin, true)
	if err := h.b.srv.InjectPacket(cl, pk); err != nil {
		h.b.log.Debug("publish will", "client_id", origin, "topic", pk.TopicName, "err", err)
	}
}
