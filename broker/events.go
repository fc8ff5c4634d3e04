package broker

import (
	"sync"
	"sync/atomic"
	"time"
)

// EventKind says what happened.
type EventKind uint8

// The events a broker reports to its observers.
const (
	EventClientConnected    EventKind = iota + 1 // a client's CONNECT was accepted
	EventClientDisconnected                      // a client's connection ended; Reason says why
	EventAuthDenied                              // a CONNECT, PUBLISH or SUBSCRIBE was refused by authentication or ACL
	EventSubscribed                              // a client subscribed; Filters lists them
	EventUnsubscribed                            // a client unsubscribed; Filters lists them
	EventMessageDropped                          // a message was dropped for a client; Reason says why
	EventSessionExpired                          // a disconnected session reached its expiry and was removed
	EventConnectionPanic                         // handling a connection panicked; the connection was closed
)

var eventNames = [...]string{
	EventClientConnected:    "client_connected",
	EventClientDisconnected: "client_disconnected",
	EventAuthDenied:         "auth_denied",
	EventSubscribed:         "subscribed",
	EventUnsubscribed:       "unsubscribed",
	EventMessageDropped:     "message_dropped",
	EventSessionExpired:     "session_expired",
	EventConnectionPanic:    "connection_panic",
}

func (k EventKind) String() string {
	if int(k) < len(eventNames) && eventNames[k] != "" {
		return eventNames[k]
	}
	return "unknown"
}

// Event is one thing that happened in the broker. Fields that do not apply to
// a kind are zero.
type Event struct {
	Kind     EventKind
	Time     time.Time
	ClientID string
	Username string
	Remote   string
	Listener string
	// ProtocolVersion is 3 (MQTT 3.1), 4 (3.1.1) or 5.
	ProtocolVersion byte
	// Reason is a short human-readable cause: the disconnect error, the drop
	// or denial reason.
	Reason string
	// SessionPresent is set on EventClientConnected when an existing session
	// was resumed.
	SessionPresent bool
	// Filters are the topic filters of EventSubscribed and EventUnsubscribed.
	Filters []string
	// Topic and QoS describe the message of EventMessageDropped.
	Topic string
	QoS   byte
}

// Observer receives broker events on C. Delivery never blocks the broker:
// when C is full the event is dropped and counted in Dropped. Close stops
// delivery and closes C; Shutdown closes every observer.
type Observer struct {
	C <-chan Event

	ch      chan Event
	kinds   uint64 // bit set of EventKind; 0 means all
	dropped atomic.Uint64
	mu      sync.RWMutex
	closed  bool
	b       *Broker
}

// Observe returns an observer with a buffer of the given size (at least 1)
// that receives events of the given kinds, or all events when none are given.
// It is safe to call at any time, including before Start.
func (b *Broker) Observe(buffer int, kinds ...EventKind) *Observer {
	if buffer < 1 {
		buffer = 1
	}
	ch := make(chan Event, buffer)
	o := &Observer{C: ch, ch: ch, b: b}
	for _, k := range kinds {
		o.kinds |= 1 << k
	}
	b.obsMu.Lock()
	defer b.obsMu.Unlock()
	if b.obsClosed {
		o.closed = true
		close(ch)
		return o
	}
	next := append(append([]*Observer(nil), *b.observers.Load()...), o)
	b.observers.Store(&next)
	return o
}

// Dropped reports how many events this observer lost because C was full.
func (o *Observer) Dropped() uint64 { return o.dropped.Load() }

// Close stops delivery and closes C. It is safe to call more than once.
func (o *Observer) Close() {
	o.b.obsMu.Lock()
	cur := *o.b.observers.Load()
	next := make([]*Observer, 0, len(cur))
	for _, x := range cur {
		if x != o {
			next = append(next, x)
		}
	}
	o.b.observers.Store(&next)
	o.b.obsMu.Unlock()
	o.close()
}

func (o *Observer) close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.closed {
		o.closed = true
		close(o.ch)
	}
}

func (o *Observer) deliver(ev Event) bool {
	if o.kinds != 0 && o.kinds&(1<<ev.Kind) == 0 {
		return true
	}
	o.mu.RLock()
	defer o.mu.RUnlock()
	if o.closed {
		return true
	}
	select {
	case o.ch <- ev:
		return true
	default:
		o.dropped.Add(1)
		return false
	}
}

// emit delivers ev to every observer without blocking.
func (b *Broker) emit(ev Event) {
	obs := *b.observers.Load()
	if len(obs) == 0 {
		return
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	for _, o := range obs {
		if !o.deliver(ev) {
			b.metrics.eventsDropped.Inc()
		}
	}
}

// closeObservers closes every observer; later Observe calls get a closed one.
func (b *Broker) closeObservers() {
	b.obsMu.Lock()
	obs := *b.observers.Load()
	empty := []*Observer{}
	b.observers.Store(&empty)
	b.obsClosed = true
	b.obsMu.Unlock()
	for _, o := range obs {
		o.close()
	}
}
