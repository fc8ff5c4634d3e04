package store

import (
	"io"
	"log/slog"
	"time"

	"github.com/dgraph-io/badger/v4"
	mqtt "github.com/mochi-mqtt/server/v2"
)

// Options configures a Store. The zero value is usable: every zero field
// takes the default documented on it.
type Options struct {
	// Logger receives the store's logs; nil discards them.
	Logger *slog.Logger

	// SyncWrites makes every group commit fsync. Off (the default), an
	// acknowledged message survives a process crash but not a power loss.
	SyncWrites bool

	// MemTableSize is Badger's memtable size in bytes (default 4 MiB).
	MemTableSize int64
	// ValueLogFileSize is the size of one value log file (default 16 MiB).
	ValueLogFileSize int64
	// ValueThreshold: values at least this large go to the value log
	// (default 4 KiB); smaller ones live in the LSM tree.
	ValueThreshold int64
	// BlockCacheSize is Badger's block cache in bytes (default 8 MiB).
	BlockCacheSize int64

	// GCInterval is how often the store runs Badger's value-log GC
	// (default 1 minute).
	GCInterval time.Duration
	// GCDiscardRatio is the ratio passed to RunValueLogGC (default 0.5).
	GCDiscardRatio float64

	// CommitDelay is how long the committer gathers writes before applying
	// them to Badger (default 2 ms; negative: none). Records of messages
	// acknowledged within it never reach Badger. With SyncWrites it adds to
	// the latency of acknowledgements.
	CommitDelay time.Duration

	// HoldDelay is how long a newly created outbound record stays out of
	// Badger (default 250 ms; negative: none). It is durable in the
	// write-ahead log meanwhile; a message acknowledged within it never
	// costs a Badger write. Longer holds keep more WAL segments on disk.
	HoldDelay time.Duration

	// MaxBatch caps the number of writes in one group commit (default 4096).
	MaxBatch int

	// Now is the clock used for disconnect times and expiry; nil means
	// time.Now. A test seam.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.MemTableSize <= 0 {
		o.MemTableSize = 4 << 20
	}
	if o.ValueLogFileSize <= 0 {
		o.ValueLogFileSize = 16 << 20
	}
	if o.ValueThreshold <= 0 {
		o.ValueThreshold = 4 << 10
	}
	if o.BlockCacheSize <= 0 {
		o.BlockCacheSize = 8 << 20
	}
	if o.GCInterval <= 0 {
		o.GCInterval = time.Minute
	}
	if o.GCDiscardRatio <= 0 || o.GCDiscardRatio >= 1 {
		o.GCDiscardRatio = 0.5
	}
	if o.CommitDelay == 0 {
		o.CommitDelay = 2 * time.Millisecond
	}
	if o.HoldDelay == 0 {
		o.HoldDelay = 250 * time.Millisecond
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 4096
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

func (o Options) badger(dir string) badger.Options {
	return badger.DefaultOptions(dir).
		WithLogger(nil).
		WithSyncWrites(o.SyncWrites).
		WithMemTableSize(o.MemTableSize).
		WithNumMemtables(2).
		WithNumLevelZeroTables(2).
		WithNumLevelZeroTablesStall(8).
		WithValueLogFileSize(o.ValueLogFileSize).
		WithValueThreshold(o.ValueThreshold).
		WithBlockCacheSize(o.BlockCacheSize).
		WithIndexCacheSize(0).
		WithNumCompactors(2).
		WithBaseTableSize(2 << 20).
		WithMetricsEnabled(false).
		WithDetectConflicts(false)
}

// Config is the value to pass to mochi's AddHook for a Store: the server
// whose topic index the store reads to write messages ahead of the ack, and
// the Fixes hook the store coordinates shared-subscription choices with
// (optional; without it shared-subscription deliveries are persisted only
// once mochi hands them to the store, after the ack).
type Config struct {
	Server *mqtt.Server
	Fixes  *Fixes
}
