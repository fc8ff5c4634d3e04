package broker

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// coreHook is the broker's own mochi hook: it applies the keepalive floor and
// ceiling, and turns mochi's callbacks into events and metrics. It runs on
// mochi's goroutines, so every method is cheap and never blocks.
type coreHook struct {
	mqtt.HookBase
	b        *Broker
	floor    uint16
	ceiling  uint16
	provides [256]bool
	parkMu   sync.Mutex                // serialises unparking; taken only when a client may have parked messages
	parkQ    map[*mqtt.Client][]uint16 // client -> ids of its parked messages, oldest first (receivemax.go)
	ids      sync.Map                  // client id -> *idSpace, for sessions with collided packet ids
	to       *takeovers
	exp      *expiries
}

func newCoreHook(b *Broker) *coreHook {
	h := &coreHook{
		b:       b,
		to:      newTakeovers(),
		exp:     newExpiries(),
		floor:   uint16(b.cfg.Limits.KeepaliveFloor / time.Second),
		ceiling: uint16(b.cfg.Limits.KeepaliveCeiling / time.Second),
	}
	for _, p := range []byte{
		mqtt.OnConnect, mqtt.OnSessionEstablished, mqtt.OnDisconnect,
		mqtt.OnSubscribed, mqtt.OnUnsubscribed, mqtt.OnPublished, mqtt.OnPacketSent,
		mqtt.OnPublishDropped, mqtt.OnQosDropped, mqtt.OnClientExpired,
		mqtt.OnQosComplete, mqtt.OnPacketRead, mqtt.OnPacketEncode,
		mqtt.OnSessionEstablish, mqtt.OnQosPublish,
	} {
		h.provides[p] = true
	}
	return h
}

func (h *coreHook) ID() string           { return "courier-core" }
func (h *coreHook) Provides(b byte) bool { return h.provides[b] }
func (h *coreHook) Init(any) error       { return nil }
func (h *coreHook) OnStarted()           {}
func (h *coreHook) OnStopped()           {}
func (h *coreHook) clientEvent(k EventKind, cl *mqtt.Client) Event {
	return Event{
		Kind:            k,
		ClientID:        cl.ID,
		Username:        string(cl.Properties.Username),
		Remote:          cl.Net.Remote,
		Listener:        cl.Net.Listener,
		ProtocolVersion: cl.Properties.ProtocolVersion,
	}
}

// OnConnect applies the keepalive floor and ceiling. mochi never times out a
// client that asks for keepalive 0, so a half-open connection of such a client
// would live forever. [MQTT-3.1.2-21] lets the server impose its own keepalive
// on MQTT 5 clients through Server Keep Alive in CONNACK; MQTT 3 clients cannot
// be told and are held to it all the same.
func (h *coreHook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	restoreEmptyWill(cl)
	switch ka := cl.State.Keepalive; {
	case ka == 0:
		cl.State.Keepalive = h.floor
		cl.State.ServerKeepalive = true
	case ka > h.ceiling:
		cl.State.Keepalive = h.ceiling
		cl.State.ServerKeepalive = true
	}
	if c, ok := cl.Net.Conn.(slackConn); ok {
		c.setDeadlineSlack(keepaliveSlack(cl.State.Keepalive))
	}
	return nil
}

func (h *coreHook) OnSessionEstablished(cl *mqtt.Client, pk packets.Packet) {
	h.takeoverEstablished(cl)
	h.b.metrics.connects.Inc()
	ev := h.clientEvent(EventClientConnected, cl)
	ev.SessionPresent = !pk.Connect.Clean && cl.State.Subscriptions.Len() > 0
	h.b.emit(ev)
}

func (h *coreHook) OnDisconnect(cl *mqtt.Client, err error, expire bool) {
	h.takeoverEnded(cl)
	h.forgetParked(cl)
	if expire && !cl.IsTakenOver() {
		h.forgetIDs(cl.ID)
	}
	reason := disconnectReason(err)
	h.b.metrics.disconnects.WithLabelValues(reason).Inc()
	ev := h.clientEvent(EventClientDisconnected, cl)
	ev.Reason = reason
	if err != nil && reason != err.Error() {
		ev.Reason = reason + ": " + err.Error()
	}
	h.b.emit(ev)
}

// disconnectReason maps a disconnect cause to a short, bounded label.
func disconnectReason(err error) string {
	var code packets.Code
	switch {
	case err == nil, errors.Is(err, packets.CodeDisconnect):
		return "normal"
	case errors.Is(err, ErrWriteStalled):
		return "write_stalled"
	case errors.Is(err, io.EOF), errors.Is(err, mqtt.ErrConnectionClosed), errors.Is(err, net.ErrClosed):
		return "connection_closed"
	case errors.Is(err, packets.ErrKeepAliveTimeout), errors.Is(err, os.ErrDeadlineExceeded):
		return "keepalive_timeout"
	case errors.Is(err, packets.ErrSessionTakenOver):
		return "session_taken_over"
	case errors.Is(err, packets.ErrServerShuttingDown):
		return "server_shutting_down"
	case errors.Is(err, packets.CodeDisconnectWillMessage):
		return "disconnect_with_will"
	case errors.As(err, &code):
		return "protocol_error"
	default:
		return "network_error"
	}
}

func (h *coreHook) OnSubscribed(cl *mqtt.Client, pk packets.Packet, codes []byte) {
	ev := h.clientEvent(EventSubscribed, cl)
	for i, f := range pk.Filters {
		if i < len(codes) && codes[i] < 0x80 {
			ev.Filters = append(ev.Filters, f.Filter)
		}
	}
	if len(ev.Filters) > 0 {
		h.b.emit(ev)
	}
}

func (h *coreHook) OnUnsubscribed(cl *mqtt.Client, pk packets.Packet) {
	ev := h.clientEvent(EventUnsubscribed, cl)
	for _, f := range pk.Filters {
		ev.Filters = append(ev.Filters, f.Filter)
	}
	h.b.emit(ev)
}

func (h *coreHook) OnPublished(cl *mqtt.Client, pk packets.Packet) {
	h.b.metrics.messagesIn[min(pk.FixedHeader.Qos, 2)].Inc()
}

func (h *coreHook) OnPacketSent(cl *mqtt.Client, pk packets.Packet, b []byte) {
	if pk.FixedHeader.Type == packets.Publish {
		h.b.metrics.messagesOut[min(pk.FixedHeader.Qos, 2)].Inc()
	}
}

func (h *coreHook) OnPublishDropped(cl *mqtt.Client, pk packets.Packet) {
	h.dropped(cl, pk, "client_write_queue_full")
}

// OnQosDropped reports a QoS 1/2 message given up for a client. On a session
// takeover mochi moves the old connection's messages to the new one and then
// clears them from the old client object, calling this hook for each: those
// messages are still in flight, so a taken-over client's drops are not drops.
func (h *coreHook) OnQosDropped(cl *mqtt.Client, pk packets.Packet) {
	if cl.IsTakenOver() {
		return
	}
	h.dropped(cl, pk, "qos_dropped")
}

func (h *coreHook) dropped(cl *mqtt.Client, pk packets.Packet, reason string) {
	h.b.metrics.dropped.WithLabelValues(reason).Inc()
	ev := h.clientEvent(EventMessageDropped, cl)
	ev.Reason, ev.Topic, ev.QoS = reason, pk.TopicName, pk.FixedHeader.Qos
	h.b.emit(ev)
}

func (h *coreHook) OnClientExpired(cl *mqtt.Client) {
	if !h.expiring(cl) {
		return
	}
	h.forgetIDs(cl.ID)
	h.b.metrics.expired.Inc()
	h.b.emit(h.clientEvent(EventSessionExpired, cl))
}

// anonymousHook allows every client and every topic. The broker registers it
// only when no authentication hook is configured and anonymous access is
// enabled: mochi ORs auth answers, so it must never sit beside a real one.
type anonymousHook struct {
	mqtt.HookBase
}

func (h *anonymousHook) ID() string { return "courier-anonymous" }
func (h *anonymousHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnConnectAuthenticate, mqtt.OnACLCheck}, []byte{b})
}
func (h *anonymousHook) OnConnectAuthenticate(*mqtt.Client, packets.Packet) bool { return true }
func (h *anonymousHook) OnACLCheck(*mqtt.Client, string, bool) bool              { return true }
