package store

import (
	"bytes"
	"time"
	"unsafe"
)

// Outbound records are held back from Badger for a while. Under load most
// QoS 1 messages are acknowledged by their subscriber some milliseconds
// after the publish, later than one group commit: writing each record to
// Badger when it is created would cost a Badger set and then a delete per
// message. The committer therefore keeps newly created records (ops with
// create set) in memory for Options.HoldDelay. A delete that finds the
// record still held cancels both, so Badger never sees the message; a
// record still live once its hold has passed (or when too many are held, or
// on Sync and Close) is written to Badger then.
//
// Durability does not change: a held record is in the write-ahead log
// before anything relies on it, and the WAL segments holding it are kept
// (not deleted as applied) until it is in Badger or deleted, so a crash
// replays it on the next Open. The held records belong to the committer
// goroutine (and to Open and Close around it); nothing else reads them:
// Badger is only read at start, after the replay, and by Sync callers.

// maxHeld caps the number of held records; past it the oldest are written.
const maxHeld = 1 << 16

// heldRec is one outbound record kept out of Badger.
type heldRec struct {
	key    string
	val    []byte
	ticket uint64 // no larger than the ticket of the write that created it
	at     time.Time
	dead   bool // deleted before it reached Badger
}

// holding reports whether records are held back at all.
func (st *Store) holding() bool { return st.opts.HoldDelay > 0 }

// hold takes over o if it concerns a held record or creates one; it reports
// whether o is done with (nothing to write to Badger now).
func (st *Store) hold(o op, ticket uint64, now time.Time) bool {
	switch o.kind {
	case opSet:
		if h := st.held[string(o.key)]; h != nil {
			h.val = o.val
			return true
		}
		if !o.create {
			return false
		}
		h := &heldRec{key: keyString(o.key), val: o.val, ticket: ticket, at: now}
		st.held[h.key] = h
		st.heldQ = append(st.heldQ, h)
		return true
	case opDelete:
		if h := st.held[string(o.key)]; h != nil {
			h.dead = true
			delete(st.held, h.key)
			return true
		}
	case opDeletePrefix:
		for k, h := range st.held {
			if bytes.HasPrefix([]byte(k), o.key) {
				h.dead = true
				delete(st.held, k)
			}
		}
	}
	return false
}

// keyString is k as a string without a copy. Keys are never written once
// built (outboundRecord caps the key so that nothing appends into it), so
// the string stays what it was.
func keyString(k []byte) string { return unsafe.String(unsafe.SliceData(k), len(k)) }

// heldDue reports whether some held record must be written (or dropped) now.
func (st *Store) heldDue(now time.Time) bool {
	if len(st.heldQ) == 0 {
		return false
	}
	h := st.heldQ[0]
	return h.dead || len(st.held) > maxHeld || now.Sub(h.at) >= st.opts.HoldDelay
}

// flushHeld writes the held records whose hold has passed (all of them with
// all) to Badger, oldest first, and forgets the deleted ones in front.
func (st *Store) flushHeld(all bool, now time.Time) error {
	var ops []op
	i := 0
	for ; i < len(st.heldQ); i++ {
		h := st.heldQ[i]
		if h.dead {
			continue
		}
		if !all && len(st.held) <= maxHeld && now.Sub(h.at) < st.opts.HoldDelay {
			break
		}
		ops = append(ops, op{kind: opSet, key: []byte(h.key), val: h.val})
		delete(st.held, h.key)
		st.heldQ[i] = nil
	}
	clear(st.heldQ[:i])
	st.heldQ = st.heldQ[i:]
	if len(st.heldQ) == 0 {
		st.heldQ = nil
	}
	if len(ops) == 0 {
		return nil
	}
	return st.applyNow(ops)
}

// minHeldTicket is the ticket bound of the oldest record still held, 0 when
// none is: WAL segments sealed at or after it must stay.
func (st *Store) minHeldTicket() uint64 {
	if len(st.heldQ) == 0 {
		return 0
	}
	return st.heldQ[0].ticket
}

// nextHeldDeadline is when the oldest held record is due, false when none is
// held.
func (st *Store) nextHeldDeadline() (time.Time, bool) {
	if len(st.heldQ) == 0 {
		return time.Time{}, false
	}
	return st.heldQ[0].at.Add(st.opts.HoldDelay), true
}
