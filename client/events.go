package client

import (
	"sync"
	"sync/atomic"
	"time"
)

// EventType names a client event; String gives Courier's event name.
type EventType int

// The event types, named as in the Courier clients.
const (
	EventConnectAttempt EventType = iota + 1
	EventConnectSuccess
	EventConnectFailure
	EventConnectionLost
	EventReconnect
	EventDisconnect
	EventSubscribeAttempt
	EventSubscribeSuccess
	EventSubscribeFailure
	EventUnsubscribeAttempt
	EventUnsubscribeSuccess
	EventUnsubscribeFailure
	EventMessageSend
	EventMessageSendSuccess
	EventMessageSendFailure
	EventMessageReceive
	EventMessageReceiveError
	EventPingInitiated
	EventPingSuccess
	EventPingFailure
	EventInboundInactivity
	EventAuthenticatorAttempt
	EventAuthenticatorSuccess
	EventAuthenticatorError
	EventOfflineMessageDiscarded
	EventSocketConnectAttempt
	EventSocketConnectSuccess
	EventSocketConnectFailure
	EventSSLHandshakeSuccess
	EventSSLHandshakeFailure
)

var eventNames = map[EventType]string{
	EventConnectAttempt:          "MqttConnectAttempt",
	EventConnectSuccess:          "MqttConnectSuccess",
	EventConnectFailure:          "MqttConnectFailure",
	EventConnectionLost:          "MqttConnectionLost",
	EventReconnect:               "MqttReconnect",
	EventDisconnect:              "MqttDisconnect",
	EventSubscribeAttempt:        "MqttSubscribeAttempt",
	EventSubscribeSuccess:        "MqttSubscribeSuccess",
	EventSubscribeFailure:        "MqttSubscribeFailure",
	EventUnsubscribeAttempt:      "MqttUnsubscribeAttempt",
	EventUnsubscribeSuccess:      "MqttUnsubscribeSuccess",
	EventUnsubscribeFailure:      "MqttUnsubscribeFailure",
	EventMessageSend:             "MqttMessageSend",
	EventMessageSendSuccess:      "MqttMessageSendSuccess",
	EventMessageSendFailure:      "MqttMessageSendFailure",
	EventMessageReceive:          "MqttMessageReceive",
	EventMessageReceiveError:     "MqttMessageReceiveError",
	EventPingInitiated:           "MqttPingInitiated",
	EventPingSuccess:             "MqttPingSuccess",
	EventPingFailure:             "MqttPingFailure",
	EventInboundInactivity:       "InboundInactivity",
	EventAuthenticatorAttempt:    "AuthenticatorAttempt",
	EventAuthenticatorSuccess:    "AuthenticatorSuccess",
	EventAuthenticatorError:      "AuthenticatorError",
	EventOfflineMessageDiscarded: "OfflineMessageDiscarded",
	EventSocketConnectAttempt:    "SocketConnectAttempt",
	EventSocketConnectSuccess:    "SocketConnectSuccess",
	EventSocketConnectFailure:    "SocketConnectFailure",
	EventSSLHandshakeSuccess:     "SSLHandshakeSuccess",
	EventSSLHandshakeFailure:     "SSLHandshakeFailure",
}

func (t EventType) String() string {
	if n, ok := eventNames[t]; ok {
		return n
	}
	return "Unknown"
}

// ConnectionInfo describes the connection an event belongs to.
type ConnectionInfo struct {
	ClientID     string        `json:"client_id"`
	Username     string        `json:"username"`
	KeepAlive    time.Duration `json:"keepalive"`
	Address      string        `json:"address"`
	CleanSession bool          `json:"clean_session"`
	// SessionPresent is the broker's CONNACK flag for the current (or
	// last) connection: true when it resumed a stored session, so queued
	// messages and subscriptions survived; false when the session is new.
	SessionPresent bool `json:"session_present"`
}

// Event is one client event. Fields that do not apply to a type are zero.
type Event struct {
	Type     EventType
	Time     time.Time
	Conn     ConnectionInfo
	Duration time.Duration // time taken (connect success, send success, subscribe success, ping success)
	Err      error         // reason of a failure
	Topic    string        // topic or filter(s); the dialled address for Socket*/SSL* events
	QoS      QOSLevel
	Size     int // payload size
	Attempt  int // connect attempt number since the last connection
	// NextRetry is the wait before the next connect attempt (ConnectFailure,
	// and ConnectionLost where the first retry is immediate, so 0).
	NextRetry time.Duration
	Queued    bool // MessageSend: the message went to the offline buffer
}

// EventStream delivers events to one reader. A slow reader never blocks the
// client: when C is full the event is dropped and counted.
type EventStream struct {
	C       <-chan Event
	c       chan Event
	hub     *eventHub
	dropped atomic.Uint64
	once    sync.Once
}

// Dropped returns how many events were dropped because C was full.
func (s *EventStream) Dropped() uint64 { return s.dropped.Load() }

// Close stops delivery and closes C.
func (s *EventStream) Close() {
	s.once.Do(func() { s.hub.remove(s) })
}

type eventHub struct {
	mu      sync.Mutex
	streams map[*EventStream]struct{}
	n       atomic.Int32 // number of streams, read without the lock on hot paths
}

func newEventHub() *eventHub { return &eventHub{streams: map[*EventStream]struct{}{}} }

func (h *eventHub) add(buffer int) *EventStream {
	if buffer < 1 {
		buffer = 1
	}
	c := make(chan Event, buffer)
	s := &EventStream{C: c, c: c, hub: h}
	h.mu.Lock()
	h.streams[s] = struct{}{}
	h.n.Store(int32(len(h.streams)))
	h.mu.Unlock()
	return s
}

func (h *eventHub) remove(s *EventStream) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.streams[s]; ok {
		delete(h.streams, s)
		close(s.c)
		h.n.Store(int32(len(h.streams)))
	}
}

func (h *eventHub) active() bool { return h.n.Load() > 0 }

func (h *eventHub) emit(e Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.streams {
		select {
		case s.c <- e:
		default:
			s.dropped.Add(1)
		}
	}
}

// Events returns a new event stream with the given channel buffer. Close it
// when done; Stop does not close it, so one stream follows a client across
// Stop and Start.
func (c *Client) Events(buffer int) *EventStream { return c.events.add(buffer) }

func (c *Client) emit(e Event) {
	if !c.events.active() {
		return
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.Conn = c.connInfo()
	c.events.emit(e)
}
