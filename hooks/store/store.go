package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/dgraph-io/badger/v4"
	mqtt "github.com/mochi-mqtt/server/v2"
)

// schemaVersion is the version of the key and value layout written by this
// code. Open refuses newer versions; older ones would be migrated here.
// Version 1 has only grown by optional fields at the end of a record (the
// session's Will Due time, then the Will's MQTT 5 properties), which records
// written before them decode without (decodeSession): no migration, so no
// new version.
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
	kinds  sync.Map // *mqtt.Client -> bool: persistent, for reads from other goroutines

	seq atomic.Uint64 // last allocated message sequence

	// group commit
	mu        sync.Mutex
	cond      *sync.Cond
	pending   []op
	ticket    uint64 // ticket of the last queued write
	synced    uint64 // ticket of the last write fsynced in the WAL (SyncWrites)
	committed uint64 // ticket of the last write applied to Badger
	wal       *wal
	walBuf    []op // queued writes not yet in the WAL (enqueueLazy)
	closed    bool
	commitErr error
	flushReq  uint64 // Sync calls that asked for every held record in Badger
	flushDone uint64 // flushReq as of the last group commit

	// outbound records held back from Badger (committer goroutine; hold.go)
	held      map[string]*heldRec
	heldQ     []*heldRec // in creation order
	kick      chan struct{}
	quit      chan struct{}
	abort     atomic.Bool
	failed    atomic.Bool // an apply to Badger failed: keep the WAL for the next Open
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error

	// in-memory indexes
	idx       sync.Mutex
	out       map[string]map[uint16]uint64 // client -> packet id -> seq of its outbound record
	inbound   map[string]map[uint16]bool   // client -> packet ids of stored inbound QoS 2 records
	inQoS1    map[string]uint16            // client -> packet id of the inbound QoS 1 ack being completed
	pendingIn map[*mqtt.Client]uint16      // publisher -> id of the inbound QoS 2 record written for the publish being processed
	fanouts   map[uint64]*fanout           // seq -> write-ahead targets of a publish in progress
	pubFans   map[*mqtt.Client][]uint64    // publisher -> seqs of its publishes in progress
	owed      map[*mqtt.Client]uint64      // client -> ticket its next acknowledgement must wait for
	known     map[string]bool              // clients that may have records (persistent sessions seen)
	willDue   map[*mqtt.Client]int64       // ending connection -> when its delayed Will is due
	willHeld  map[*mqtt.Client]willRec     // ending connection -> its Will, held by a hook before the store (WillDelayed)

	// delayed Wills of restored sessions, published by willLoop
	willMu    sync.Mutex
	wills     map[string]pendingWill // client id -> its pending Will
	willStart sync.Once

	// subscriber cache for OnPublish (mochi computes the same set again)
	subMu       sync.Mutex
	subGen      uint64 // bumped on every subscription change
	subCache    map[string]cachedSubs
	restoredIDs map[string]bool
	v3left      map[string]int64 // restored MQTT 3 session -> seconds of expiry left

	quarantined atomic.Int64
	badgerOps   atomic.Int64 // writes applied to Badger (sets, deletes, prefix deletes): a bench metric
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
	// create marks the first write of a key that cannot exist yet (a fresh
	// sequence number): if the same batch also deletes it, Badger never
	// needs to see either. Not kept in the WAL.
	create bool
}

// Open opens (creating if needed) the store in dir. It checks the schema
// version and starts the group committer and the value-log GC ticker.
func Open(dir string, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	walDir := filepath.Join(dir, "wal")
	if err := os.MkdirAll(walDir, 0o700); err != nil {
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	db, err := badger.Open(opts.badger(filepath.Join(dir, "db")))
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	st := &Store{
		db:        db,
		opts:      opts,
		log:       opts.Logger.With("component", "hooks.store"),
		kick:      make(chan struct{}, 1),
		quit:      make(chan struct{}),
		out:       map[string]map[uint16]uint64{},
		inbound:   map[string]map[uint16]bool{},
		inQoS1:    map[string]uint16{},
		pendingIn: map[*mqtt.Client]uint16{},
		fanouts:   map[uint64]*fanout{},
		pubFans:   map[*mqtt.Client][]uint64{},
		owed:      map[*mqtt.Client]uint64{},
		known:     map[string]bool{},
		willDue:   map[*mqtt.Client]int64{},
		willHeld:  map[*mqtt.Client]willRec{},
		wills:     map[string]pendingWill{},
		held:      map[string]*heldRec{},

		subCache: map[string]cachedSubs{},
	}
	st.cond = sync.NewCond(&st.mu)
	if err := st.checkSchema(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	if err := st.recoverWAL(walDir); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open store %s: replay wal: %w", dir, err)
	}
	if err := st.initSeq(); err != nil {
		_ = st.wal.f.close()
		_ = db.Close()
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	st.wg.Add(2)
	go st.commitLoop()
	go st.gcLoop()
	return st, nil
}

// recoverWAL applies what a crash left in the WAL to Badger, removes the
// old segments and starts a new one.
func (st *Store) recoverWAL(dir string) error {
	n := 0
	nums, torn, err := replayWAL(dir, func(ops []op) error {
		n += len(ops)
		return st.apply(ops)
	})
	if err != nil {
		return err
	}
	if torn {
		st.log.Warn("wal replay stopped at a torn record", "writes", n)
	}
	if n > 0 {
		st.log.Info("wal replayed", "writes", n, "segments", len(nums))
	}
	next := uint64(1)
	if len(nums) > 0 {
		next = nums[len(nums)-1] + 1
	}
	st.wal = &wal{dir: dir}
	if err := st.wal.openSegment(next, 0); err != nil {
		return err
	}
	for _, num := range nums {
		if err := os.Remove(segPath(dir, num)); err != nil {
			return err
		}
	}
	return nil
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
		var errs []error
		keep := st.abort.Load() || st.failed.Load() // the next Open replays
		segs := append(st.wal.sealed, sealedSegment{num: st.wal.num, f: st.wal.f})
		st.wal.sealed = nil
		for _, sg := range segs {
			if err := sg.f.close(); err != nil {
				errs = append(errs, err)
			}
			if !keep {
				if err := os.Remove(segPath(st.wal.dir, sg.num)); err != nil {
					errs = append(errs, err)
				}
			}
		}
		if err := st.db.Close(); err != nil {
			errs = append(errs, err)
		}
		st.closeErr = errors.Join(errs...)
	})
	return st.closeErr
}

// Abort closes the database without applying what is still queued to
// Badger, as a process crash would leave it: the next Open replays the WAL. It exists for crash tests; use Close
// otherwise. Safe to combine with Close.
func (st *Store) Abort() error {
	st.abort.Store(true)
	return st.Close()
}

// Quarantined reports how many corrupt records were set aside since Open.
func (st *Store) Quarantined() int64 { return st.quarantined.Load() }

// enqueue queues writes for the committer and returns their ticket; 0 when
// the store is closed or the WAL cannot be written (the writes are dropped).
// The writes are in the WAL when it returns.
func (st *Store) enqueue(ops ...op) uint64 { return st.queue(ops, false) }

// enqueueLazy queues writes that need not be durable before anything is sent
// (deletes of finished flows): they reach the WAL with the next durable write
// or group commit, saving a write(2) per message. Losing them in a crash
// only means a resend.
func (st *Store) enqueueLazy(ops ...op) uint64 { return st.queue(ops, true) }

func (st *Store) queue(ops []op, lazy bool) uint64 {
	st.mu.Lock()
	if st.closed {
		st.mu.Unlock()
		st.log.Debug("store closed, write dropped")
		return 0
	}
	if lazy {
		st.walBuf = append(st.walBuf, ops...)
	} else if err := st.walAppend(ops); err != nil {
		st.mu.Unlock()
		st.log.Error("wal write failed", "err", err)
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

// walAppend writes the queued lazy writes and ops to the WAL as one record
// (st.mu held). The lazy writes stay queued if it fails; their array is
// kept for the next ones (ops never goes into it: it stays on the caller's
// stack).
func (st *Store) walAppend(ops []op) error {
	n := len(st.walBuf)
	if n == 0 {
		return st.wal.append(ops, st.ticket)
	}
	st.walBuf = append(st.walBuf, ops...)
	if err := st.wal.append(st.walBuf, st.ticket); err != nil {
		clear(st.walBuf[n:])
		st.walBuf = st.walBuf[:n]
		return err
	}
	clear(st.walBuf)
	st.walBuf = st.walBuf[:0]
	if cap(st.walBuf) > 1024 {
		st.walBuf = nil
	}
	return nil
}

// waitDurable blocks until the writes with ticket t survive a process crash
// (always true once queued: they are in the WAL) or, with SyncWrites, a power
// loss (the committer has fsynced the WAL). Ticket ^0 marks writes dropped
// because the store was closed.
func (st *Store) waitDurable(t uint64) error {
	if t == ^uint64(0) {
		return ErrClosed
	}
	if !st.opts.SyncWrites {
		return nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	for st.synced < t && !st.closed {
		st.cond.Wait()
	}
	if st.synced < t {
		return ErrClosed
	}
	return nil
}

// waitApplied blocks until every write queued so far is in Badger, held
// records included.
func (st *Store) waitApplied() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	t := st.ticket
	st.flushReq++
	req := st.flushReq
	select {
	case st.kick <- struct{}{}:
	default:
	}
	for (st.committed < t || st.flushDone < req) && !st.closed {
		st.cond.Wait()
	}
	if st.closed {
		return ErrClosed
	}
	return st.commitErr
}

// Size reports Badger's LSM and value-log sizes in bytes.
func (st *Store) Size() (lsm, vlog int64) { return st.db.Size() }

// Sync waits until every queued write is applied to Badger (tests, tools).
func (st *Store) Sync() error { return st.waitApplied() }

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
