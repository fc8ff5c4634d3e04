package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	mqtt "github.com/mochi-mqtt/server/v2"
)

// schemaVersion is the version of the key and value layout written by this
// code. Open refuses newer versions; older ones would be migrated here.
const schemaVersion uint64 = 1

// Store is a mochi storage hook on Badger. Create it with Open, register it
// with mochi's AddHook (passing a Config), and Close it after the server has
// been closed. A Store is safe for concurrent use.
type Store struct {
	mqtt.HookBase

	db   *badger.DB
	opts Options
	log  *slog.Logger

	server *mqtt.Server
	fixes  *Fixes

	seq atomic.Uint64 // last allocated message sequence

	// group commit
	mu        sync.Mutex
	cond      *sync.Cond
	pending   []op
	ticket    uint64 // ticket of the last queued write
	committed uint64 // ticket of the last written write
	closed    bool
	commitErr error
	kick      chan struct{}
	quit      chan struct{}
	abort     atomic.Bool
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error

	// in-memory indexes
	idx         sync.Mutex
	out         map[string]map[uint16]uint64 // client -> packet id -> seq of its outbound record
	inbound     map[string]map[uint16]bool   // client -> packet ids of stored inbound QoS 2 records
	inQoS1      map[string]uint16            // client -> packet id of the inbound QoS 1 ack being completed
	fanouts     map[uint64]*fanout           // seq -> write-ahead targets of a publish in progress
	pubFans     map[*mqtt.Client][]uint64    // publisher -> seqs of its publishes in progress
	owed        map[*mqtt.Client]uint64      // client -> ticket its next acknowledgement must wait for
	restoredIDs map[string]bool

	quarantined atomic.Int64
}

// fanout is the set of subscribers a publish was written ahead for.
type fanout struct {
	msg     msgRec
	targets map[string]bool // client id -> OnQosPublish seen
}

type opKind byte

const (
	opSet opKind = iota + 1
	opDelete
	opDeletePrefix
)

type op struct {
	kind opKind
	key  []byte
	val  []byte
}

// Open opens (creating if needed) the store in dir. It checks the schema
// version and starts the group committer and the value-log GC ticker.
func Open(dir string, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	db, err := badger.Open(opts.badger(dir))
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	st := &Store{
		db:      db,
		opts:    opts,
		log:     opts.Logger.With("component", "hooks.store"),
		kick:    make(chan struct{}, 1),
		quit:    make(chan struct{}),
		out:     map[string]map[uint16]uint64{},
		inbound: map[string]map[uint16]bool{},
		inQoS1:  map[string]uint16{},
		fanouts: map[uint64]*fanout{},
		pubFans: map[*mqtt.Client][]uint64{},
		owed:    map[*mqtt.Client]uint64{},
	}
	st.cond = sync.NewCond(&st.mu)
	if err := st.checkSchema(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	if err := st.initSeq(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	st.wg.Add(2)
	go st.commitLoop()
	go st.gcLoop()
	return st, nil
}

// checkSchema writes the schema version into an empty database, accepts the
// current version and refuses anything else.
func (st *Store) checkSchema() error {
	return st.db.Update(func(txn *badger.Txn) error {
		item, err := txn.Get(schemaKey)
		if errors.Is(err, badger.ErrKeyNotFound) {
			it := txn.NewIterator(badger.IteratorOptions{})
			it.Rewind()
			empty := !it.Valid()
			it.Close()
			if !empty {
				return fmt.Errorf("%w: data without a schema marker", ErrSchemaVersion)
			}
			return txn.Set(schemaKey, binary.AppendUvarint(nil, schemaVersion))
		}
		if err != nil {
			return err
		}
		v, err := item.ValueCopy(nil)
		if err != nil {
			return err
		}
		ver, n := binary.Uvarint(v)
		if n <= 0 || n != len(v) {
			return fmt.Errorf("%w: unreadable marker", ErrSchemaVersion)
		}
		switch ver {
		case schemaVersion:
			return nil
		default: // a future version; older ones would be migrated here
			return fmt.Errorf("%w: %d (this build knows %d)", ErrSchemaVersion, ver, schemaVersion)
		}
	})
}

// initSeq sets the sequence counter past every stored outbound record.
func (st *Store) initSeq() error {
	return st.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: false, Prefix: []byte{kindOutbound}})
		defer it.Close()
		var max uint64
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			if len(k) >= 9 {
				if s := binary.BigEndian.Uint64(k[len(k)-8:]); s > max {
					max = s
				}
			}
		}
		st.seq.Store(max)
		return nil
	})
}

// Close writes what is queued, stops the committer and GC goroutines and
// closes Badger. It is safe to call more than once; later calls return nil.
func (st *Store) Close() error {
	st.closeOnce.Do(func() {
		st.mu.Lock()
		st.closed = true
		st.mu.Unlock()
		close(st.quit)
		st.wg.Wait()
		st.mu.Lock()
		st.cond.Broadcast()
		st.mu.Unlock()
		st.closeErr = st.db.Close()
	})
	return st.closeErr
}

// Abort closes the database without writing what is still queued, as a
// process crash would leave it. It exists for crash tests; use Close
// otherwise. Safe to combine with Close.
func (st *Store) Abort() error {
	st.abort.Store(true)
	return st.Close()
}

// Quarantined reports how many corrupt records were set aside since Open.
func (st *Store) Quarantined() int64 { return st.quarantined.Load() }

// enqueue queues writes for the committer and returns their ticket; 0 when
// the store is closed (the writes are dropped).
func (st *Store) enqueue(ops ...op) uint64 {
	st.mu.Lock()
	if st.closed {
		st.mu.Unlock()
		st.log.Debug("store closed, write dropped")
		return 0
	}
	st.pending = append(st.pending, ops...)
	st.ticket++
	t := st.ticket
	st.mu.Unlock()
	select {
	case st.kick <- struct{}{}:
	default:
	}
	return t
}

// waitDurable blocks until every write queued so far is committed.
func (st *Store) waitDurable() error {
	st.mu.Lock()
	t := st.ticket
	st.mu.Unlock()
	return st.waitTicket(t)
}

// waitTicket blocks until the writes with ticket t (and all before) are
// committed.
func (st *Store) waitTicket(t uint64) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	for st.committed < t && !st.closed {
		st.cond.Wait()
	}
	if st.closed {
		// Writes queued after Close were dropped: nothing is durable now.
		return ErrClosed
	}
	return st.commitErr
}

func (st *Store) commitLoop() {
	defer st.wg.Done()
	for {
		select {
		case <-st.kick:
			st.commitPending()
		case <-st.quit:
			if !st.abort.Load() {
				st.commitPending()
			}
			return
		}
	}
}

// commitPending writes everything queued as one group commit and releases
// the waiters.
func (st *Store) commitPending() {
	for {
		st.mu.Lock()
		ops := st.pending
		st.pending = nil
		t := st.ticket
		st.mu.Unlock()
		if len(ops) == 0 {
			return
		}
		err := st.apply(ops)
		if err != nil {
			st.log.Error("store commit failed", "err", err, "writes", len(ops))
		}
		st.mu.Lock()
		st.committed = t
		st.commitErr = err
		st.cond.Broadcast()
		st.mu.Unlock()
	}
}

// apply writes ops in order, in as few Badger transactions as their size
// allows. A set and a later delete of the same key inside one transaction
// leave only the delete.
func (st *Store) apply(ops []op) error {
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
	for _, o := range ops {
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

// Size reports Badger's LSM and value-log sizes in bytes.
func (st *Store) Size() (lsm, vlog int64) { return st.db.Size() }

// Sync forces queued writes into Badger and waits for them (tests, tools).
func (st *Store) Sync() error { return st.waitDurable() }

// deleteClientOps returns the writes that remove everything stored for a
// client except, when keepSession, its session record.
func deleteClientOps(cid string, keepSession bool) []op {
	ops := []op{
		{kind: opDeletePrefix, key: clientPrefix(kindSub, cid)},
		{kind: opDeletePrefix, key: clientPrefix(kindOutbound, cid)},
		{kind: opDeletePrefix, key: clientPrefix(kindInbound, cid)},
	}
	if !keepSession {
		ops = append(ops, op{kind: opDelete, key: sessionKey(cid)})
	}
	return ops
}
