package broker

import (
	"sync"
	"sync/atomic"
)

// mochiReceiveMaximum is the receive quota mochi gets per client. The
// validating layer enforces the configured Receive Maximum itself, because
// mochi's check also fires on QoS 0 PUBLISHes once the quota is used up and
// disconnects the client with 0x93, though Receive Maximum counts only QoS 1
// and 2 (MQTT 5 section 3.3.4). mochi's quota is set out of reach, and the
// configured value is what CONNACK announces.
const mochiReceiveMaximum = 65535

// qos2In tracks an MQTT 5 client's QoS 2 PUBLISHes the broker has not
// completed (no PUBREL yet), for the Receive Maximum. QoS 1 needs no
// tracking: mochi answers each QoS 1 PUBLISH before it reads the next
// packet. The read goroutine adds and removes ids; a refusing PUBREC or
// PUBACK (reason 0x80 or more, which ends the flow) removes one from the
// writing side, hence the lock.
type qos2In struct {
	mu  sync.Mutex
	ids map[uint16]struct{}
	n   atomic.Int32 // len(ids), for the writers' fast path
}

// publish records a QoS 2 PUBLISH; a resend of an id still open is not a
// new message. It refuses a new one beyond max with 0x93.
func (q *qos2In) publish(id uint16, max uint16) *violation {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.ids[id]; ok {
		return nil
	}
	if len(q.ids) >= int(max) {
		return &violation{code: 0x93, why: "receive maximum exceeded"}
	}
	if q.ids == nil {
		q.ids = make(map[uint16]struct{})
	}
	q.ids[id] = struct{}{}
	q.n.Store(int32(len(q.ids)))
	return nil
}

// release forgets an id: its PUBREL arrived, or the broker refused it.
func (q *qos2In) release(id uint16) {
	q.mu.Lock()
	delete(q.ids, id)
	q.n.Store(int32(len(q.ids)))
	q.mu.Unlock()
}

// sent looks at packets the broker writes while QoS 2 flows are open: a
// PUBREC or PUBACK with a reason code of 0x80 or more ends its flow, except
// 0x91 (packet identifier in use), which answers a resend of an open one.
// mochi writes whole packets, one or more per call.
func (q *qos2In) sent(b []byte) {
	if q.n.Load() == 0 {
		return
	}
	for len(b) >= 2 {
		typ := b[0] >> 4
		n, used := 0, 0
		for mult := 1; used < 4; mult *= 128 {
			if 1+used >= len(b) {
				return
			}
			x := b[1+used]
			used++
			n += int(x&0x7f) * mult
			if x&0x80 == 0 {
				break
			}
		}
		body := b[1+used:]
		if len(body) < n {
			return
		}
		if (typ == 4 || typ == 5) && n >= 3 && body[2] >= 0x80 && body[2] != 0x91 {
			q.release(uint16(body[0])<<8 | uint16(body[1]))
		}
		b = body[n:]
	}
}
