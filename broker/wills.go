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
// Delayed Wills live in memory: a broker restart drops them, as a
// graceful shutdown does (a shutdown is not a client failure).
type wills struct {
	mu      sync.Mutex
	props   map[*mqtt.Client]packets.Properties // Will properties of each MQTT 5 connection with a Will
	latest  map[string]latestConn               // client id -> its newest connection
	pending map[string]*delayedWill             // client id -> a Will waiting for its delay
	stopped bool
	wg      sync.WaitGroup // timers started and not yet stopped or run
}

// latestConn is the newest connection for a client id, recorded before
// mochi takes an older one over.
type latestConn struct {
	cl    *mqtt.Client
	clean bool // Clean Start (MQTT 5) / clean session (MQTT 3)
}

type delayedWill struct {
	timer *time.Timer
	pk    packets.Packet
}

func newWills() *wills {
	return &wills{
		props:   map[*mqtt.Client]packets.Properties{},
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
	w.latest[cl.ID] = latestConn{cl: cl, clean: pk.Connect.Clean}
	d := w.pending[cl.ID]
	delete(w.pending, cl.ID)
	w.mu.Unlock()
	if d == nil {
		return
	}
	w.cancel(d)
	if pk.Connect.Clean {
		h.publishWill(cl.ID, d.pk)
	}
}

// willEstablished keeps the Will properties of an MQTT 5 connection: mochi
// keeps only the user properties.
func (h *lifecycleHook) willEstablished(cl *mqtt.Client, pk packets.Packet) {
	if !pk.Connect.WillFlag || cl.Properties.ProtocolVersion != 5 {
		return
	}
	h.wills.mu.Lock()
	h.wills.props[cl] = pk.Connect.WillProperties
	h.wills.mu.Unlock()
}

// ended forgets a connection once mochi is done with it.
func (w *wills) ended(cl *mqtt.Client) {
	w.mu.Lock()
	delete(w.props, cl)
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
	props := w.props[cl]
	l, ok := w.latest[cl.ID]
	w.mu.Unlock()
	superseded := ok && l.cl != cl

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
	// MQTT 3 clean session) the session ends now. The expiry is the one in
	// force at the close (a DISCONNECT may have changed it).
	var delay uint32
	if cl.Properties.ProtocolVersion == 5 {
		delay = min(props.WillDelayInterval, cl.Properties.Props.SessionExpiryInterval)
	}
	switch {
	case superseded && !l.clean && delay > 0:
		// A new connection resumed the session before the delay. [MQTT-3.1.3-9]
	case superseded || delay == 0:
		h.publishWill(cl.ID, pk)
	default:
		h.scheduleWill(cl.ID, pk, time.Duration(delay)*time.Second)
	}
	return mqtt.Will{}, nil
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
