package store

import (
	"errors"
	"os"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// shortLived marks the ops of keys created and deleted within ops (a message
// acknowledged before its record reached Badger).
func shortLived(ops []op) []bool {
	var skip []bool
	var open map[string][]int
	for i, o := range ops {
		switch o.kind {
		case opSet:
			if o.create {
				if open == nil {
					open = map[string][]int{}
				}
				open[string(o.key)] = []int{i}
			} else if idx, ok := open[string(o.key)]; ok {
				open[string(o.key)] = append(idx, i)
			}
		case opDelete:
			if idx, ok := open[string(o.key)]; ok {
				if skip == nil {
					skip = make([]bool, len(ops))
				}
				for _, j := range idx {
					skip[j] = true
				}
				skip[i] = true
				delete(open, string(o.key))
			}
		case opDeletePrefix:
			open = nil
		}
	}
	return skip
}

func (st *Store) commitLoop() {
	defer st.wg.Done()
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	defer linger.Stop()
	holdTimer := time.NewTimer(time.Hour)
	holdTimer.Stop()
	defer holdTimer.Stop()
	for {
		select {
		case <-st.kick:
			// Linger so that records of messages acknowledged within the
			// window are created and deleted in one batch and never reach
			// Badger. Acknowledgements do not wait for this (the WAL has
			// the writes); with SyncWrites they do, so it stays short.
			if d := st.opts.CommitDelay; d > 0 {
				linger.Reset(d)
				select {
				case <-linger.C:
				case <-st.quit:
				}
			}
			st.commitPending()
		case <-holdTimer.C:
			st.commitPending()
		case <-st.quit:
			if !st.abort.Load() {
				st.commitPending()
				st.flushAllHeld()
			}
			return
		}
		st.mu.Lock()
		seg, pos := st.wal.f, st.wal.f.position()
		st.mu.Unlock()
		seg.prefault(pos, walPrefault)
		holdTimer.Stop()
		if at, ok := st.nextHeldDeadline(); ok {
			holdTimer.Reset(max(time.Until(at), time.Millisecond))
		}
	}
}

// flushAllHeld writes every held record to Badger (graceful close); the WAL
// segments are removed by Close afterwards.
func (st *Store) flushAllHeld() {
	if err := st.flushHeld(true, time.Now()); err != nil {
		st.failed.Store(true)
		st.log.Error("store commit failed", "err", err)
	}
}

// commitPending applies everything queued to Badger as one group and
// releases the waiters; with SyncWrites it first syncs the WAL. Records
// created by the group are held back (see hold.go); held records whose hold
// has passed are written. WAL segments sealed before the group are deleted
// once it is applied and no held record may be in them.
func (st *Store) commitPending() {
	for {
		st.mu.Lock()
		ops := st.pending
		st.pending = nil
		t := st.ticket
		first := st.committed + 1 // the group holds tickets first..t
		flushReq := st.flushReq
		if len(st.walBuf) > 0 { // nothing reaches Badger before the WAL
			if err := st.wal.append(st.walBuf, t); err != nil {
				st.log.Error("wal write failed", "err", err)
			}
			clear(st.walBuf)
			st.walBuf = st.walBuf[:0]
		}
		var toSync []segmentFile
		if st.opts.SyncWrites && len(ops) > 0 {
			for _, sg := range st.wal.sealed {
				toSync = append(toSync, sg.f)
			}
			toSync = append(toSync, st.wal.f)
		}
		flushAll := flushReq != st.flushDone
		st.mu.Unlock()
		now := time.Now()
		if len(ops) == 0 && !flushAll && !st.heldDue(now) {
			return
		}
		if st.opts.SyncWrites && len(toSync) > 0 {
			var err error
			for _, f := range toSync {
				if serr := f.sync(); serr != nil && err == nil {
					err = serr
				}
			}
			if err != nil {
				st.log.Error("wal sync failed", "err", err)
			} else {
				st.mu.Lock()
				st.synced = t
				st.cond.Broadcast()
				st.mu.Unlock()
			}
		}
		err := st.applyHolding(ops, first, now)
		if ferr := st.flushHeld(flushAll, now); ferr != nil {
			err = errors.Join(err, ferr)
		}
		if err != nil {
			st.failed.Store(true)
			st.log.Error("store commit failed", "err", err, "writes", len(ops))
		}
		minHeld := st.minHeldTicket()
		st.mu.Lock()
		st.committed = t
		st.commitErr = err
		st.flushDone = flushReq
		var done []sealedSegment
		if !st.failed.Load() {
			keep := st.wal.sealed[:0]
			for _, sg := range st.wal.sealed {
				if sg.ticket <= t && (minHeld == 0 || sg.ticket < minHeld) {
					done = append(done, sg)
				} else {
					keep = append(keep, sg)
				}
			}
			st.wal.sealed = keep
		}
		st.cond.Broadcast()
		st.mu.Unlock()
		for _, sg := range done {
			_ = sg.f.close()
			if rerr := os.Remove(segPath(st.wal.dir, sg.num)); rerr != nil {
				st.log.Warn("wal segment not removed", "err", rerr)
			}
		}
		if len(ops) == 0 {
			return
		}
	}
}

// applyHolding applies ops, holding back the records they create (see
// hold.go); ticket is a lower bound of the tickets of ops.
func (st *Store) applyHolding(ops []op, ticket uint64, now time.Time) error {
	if !st.holding() {
		return st.apply(ops)
	}
	rest := ops[:0:0]
	for _, o := range ops {
		if !st.hold(o, ticket, now) {
			rest = append(rest, o)
		}
	}
	if len(rest) == 0 {
		return nil
	}
	return st.applyNow(rest)
}

// apply writes ops in order, in as few Badger transactions as their size
// allows, leaving out keys both created and deleted within ops.
func (st *Store) apply(ops []op) error { return st.applyOps(ops, shortLived(ops)) }

// applyNow writes ops in order as they are.
func (st *Store) applyNow(ops []op) error { return st.applyOps(ops, nil) }

func (st *Store) applyOps(ops []op, skip []bool) error {
	var errs []error
	txn := st.db.NewTransaction(true)
	n := 0
	commit := func() {
		if n > 0 {
			if err := txn.Commit(); err != nil {
				errs = append(errs, err)
			}
		} else {
			txn.Discard()
		}
		txn = st.db.NewTransaction(true)
		n = 0
	}
	do := func(f func() error) {
		err := f()
		if errors.Is(err, badger.ErrTxnTooBig) {
			commit()
			err = f()
		}
		if err != nil {
			errs = append(errs, err)
		}
		n++
	}
	for i, o := range ops {
		if skip != nil && skip[i] {
			continue
		}
		st.badgerOps.Add(1)
		switch o.kind {
		case opSet:
			do(func() error { return txn.Set(o.key, o.val) })
		case opDelete:
			do(func() error { return txn.Delete(o.key) })
		case opDeletePrefix:
			commit()
			keys, err := st.keysWithPrefix(o.key)
			if err != nil {
				errs = append(errs, err)
			}
			for _, k := range keys {
				do(func() error { return txn.Delete(k) })
			}
		}
		if n >= st.opts.MaxBatch {
			commit()
		}
	}
	if n > 0 {
		if err := txn.Commit(); err != nil {
			errs = append(errs, err)
		}
	} else {
		txn.Discard()
	}
	return errors.Join(errs...)
}

func (st *Store) keysWithPrefix(prefix []byte) ([][]byte, error) {
	var keys [][]byte
	err := st.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			keys = append(keys, it.Item().KeyCopy(nil))
		}
		return nil
	})
	return keys, err
}

func (st *Store) gcLoop() {
	defer st.wg.Done()
	t := time.NewTicker(st.opts.GCInterval)
	defer t.Stop()
	for {
		select {
		case <-st.quit:
			return
		case <-t.C:
			st.runGC()
		}
	}
}

// runGC rewrites value-log files until Badger finds nothing worth it.
func (st *Store) runGC() {
	for i := 0; i < 16; i++ {
		select {
		case <-st.quit:
			return
		default:
		}
		if err := st.db.RunValueLogGC(st.opts.GCDiscardRatio); err != nil {
			if !errors.Is(err, badger.ErrNoRewrite) && !errors.Is(err, badger.ErrRejected) {
				st.log.Warn("value log gc failed", "err", err)
			}
			return
		}
	}
}
