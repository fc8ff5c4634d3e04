package client

import (
	"sync"
	"sync/atomic"
	"time"
)

// Stream delivers received messages whose topic matches its filter (wildcards
// honoured; "#" receives everything). A slow reader never blocks the client:
// when C is full the message is dropped and counted, so size the buffer for
// bursts, or use a Subscribe handler for back pressure.
type Stream struct {
	C       <-chan *Message
	c       chan *Message
	filter  string
	set     *streamSet
	dropped atomic.Uint64
	once    sync.Once
}

// Filter returns the stream's topic filter.
func (s *Stream) Filter() string { return s.filter }

// Dropped returns how many messages were dropped because C was full.
func (s *Stream) Dropped() uint64 { return s.dropped.Load() }

// Close stops delivery and closes C.
func (s *Stream) Close() { s.once.Do(func() { s.set.remove(s) }) }

type streamSet struct {
	mu      sync.RWMutex
	streams map[*Stream]struct{}
	ttl     time.Duration // unmatched retention, 0 = off
	max     int
	pending []pendingMsg // unmatched messages, oldest first
}

type pendingMsg struct {
	msg *Message
	at  time.Time
}

// keep retains an unmatched message; ss.mu must be held for writing.
func (ss *streamSet) keep(msg *Message) {
	ss.prune(time.Now())
	if len(ss.pending) >= ss.max {
		ss.pending = ss.pending[1:]
	}
	ss.pending = append(ss.pending, pendingMsg{msg: msg, at: time.Now()})
}

// prune drops expired retained messages; ss.mu must be held for writing.
func (ss *streamSet) prune(now time.Time) {
	i := 0
	for i < len(ss.pending) && now.Sub(ss.pending[i].at) > ss.ttl {
		i++
	}
	ss.pending = ss.pending[i:]
}

func (ss *streamSet) add(filter string, buffer int) *Stream {
	if buffer < 1 {
		buffer = 1
	}
	c := make(chan *Message, buffer)
	s := &Stream{C: c, c: c, filter: filter, set: ss}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.streams == nil {
		ss.streams = map[*Stream]struct{}{}
	}
	ss.streams[s] = struct{}{}
	if len(ss.pending) > 0 {
		// Replay retained unmatched messages, in order, before anything newer.
		ss.prune(time.Now())
		kept := ss.pending[:0]
		for _, p := range ss.pending {
			if !MatchTopic(filter, p.msg.Topic) {
				kept = append(kept, p)
				continue
			}
			select {
			case s.c <- p.msg:
			default:
				s.dropped.Add(1)
			}
		}
		clear(ss.pending[len(kept):])
		ss.pending = kept
	}
	return s
}

func (ss *streamSet) remove(s *Stream) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if _, ok := ss.streams[s]; ok {
		delete(ss.streams, s)
		close(s.c)
	}
}

// deliver hands msg to every matching stream; with retention on, a message
// no stream (and, per handled, no handler) took is kept.
func (ss *streamSet) deliver(msg *Message, handled bool) bool {
	if ss.ttl > 0 {
		ss.mu.Lock()
		defer ss.mu.Unlock()
	} else {
		ss.mu.RLock()
		defer ss.mu.RUnlock()
	}
	matched := false
	for s := range ss.streams {
		if !MatchTopic(s.filter, msg.Topic) {
			continue
		}
		matched = true
		select {
		case s.c <- msg:
		default:
			s.dropped.Add(1)
		}
	}
	if !matched && !handled && ss.ttl > 0 {
		ss.keep(msg)
	}
	return matched
}

// Stream returns a stream of received messages matching filter. It does not
// subscribe: pair it with Subscribe (with a nil handler) or a persistent
// session. Streams may be created before Start, so messages delivered right
// at connect are not lost.
func (c *Client) Stream(filter string, buffer int) *Stream { return c.streams.add(filter, buffer) }

// Messages returns the global stream: every received message.
func (c *Client) Messages(buffer int) *Stream { return c.streams.add("#", buffer) }
