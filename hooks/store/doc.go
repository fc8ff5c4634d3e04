// Package store is courier's durable storage for the mochi MQTT broker, on
// Badger v4, plus the fixes for mochi core defects that a storage hook alone
// cannot repair.
//
// Two hooks live here:
//
//   - Store (Open) persists sessions, subscriptions, queued and inflight
//     messages and retained messages, and restores them when the server
//     starts. Its schema is versioned and its keys cannot collide whatever a
//     client id or topic contains.
//   - Fixes (NewFixes) repairs mochi core behaviour: publish order of resent
//     messages, live messages overtaking a resuming session's backlog,
//     expired sessions left in the topic index, QoS 2 DUP resends answered
//     0x91, QoS 2 ids kept after a PUBREC that was never sent, PUBLISH
//     resends after PUBREL taken for new messages, outbound flows erased by
//     an inbound packet id, shared subscriptions delivered to offline
//     members and expired retained messages delivered on subscribe. The
//     broker registers it whether or not the store is on, before any auth
//     hook.
//
// Usage sketch:
//
//	srv := mqtt.New(opts)
//	fx := store.NewFixes(srv)
//	st, err := store.Open(dir, store.Options{Logger: l})
//	...
//	_ = srv.AddHook(fx, nil)
//	_ = srv.AddHook(st, store.Config{Server: srv, Fixes: fx}) // register last
//	_ = srv.Serve()
//	...
//	_ = srv.Close()
//	_ = st.Close()
//
// # Durability
//
// mochi sends PUBACK/PUBREC to a publisher before any per-subscriber record
// reaches a hook. The store closes that window by writing ahead: in
// OnPublish it computes the persistent subscribers of a QoS 1/2 message
// (taking the shared-subscription choice from Fixes) and queues one record
// per subscriber. Queuing appends the writes to the store's own write-ahead
// log (dir/wal) on the publisher's goroutine, before mochi encodes the
// acknowledgement: the log's segments are preallocated and memory-mapped, so
// an append is a copy (one write(2) where mmap is unavailable; on Linux the
// committer faults the pages ahead of the write position in, so that the
// copy, made under the store's lock, takes no page fault). A committer
// goroutine applies the log to Badger (dir/db) in batches (group commit,
// lingering 2 ms) and deletes segments once applied. It holds newly created
// outbound records in memory for Options.HoldDelay (250 ms) before writing
// them: a message acknowledged within the hold never costs a Badger write
// (set then delete), and the WAL segments holding such a record are kept
// until it is in Badger or deleted (see hold.go). Open replays what a crash
// left in the log, up to the first torn record.
//
// QoS 2 is exactly once across restarts and crashes because every record is
// durable before the packet that relies on it leaves the broker (see
// exactlyonce.go): the publisher's packet id before its PUBREC, a
// subscriber's packet id before the first PUBLISH, and the PUBREL stage
// before the PUBREL. The publisher's id is removed once its PUBCOMP has been
// written: a crash in the instant between leaves the id looking unreleased
// after the restart (see exactlyonce.go).
//
// With Options.SyncWrites false (the default) an acknowledged message
// survives a process crash (the mapped pages belong to the kernel's page
// cache) but not a power loss, and acknowledgements never wait. With
// SyncWrites true the committer fsyncs the log before releasing the
// acknowledgements that depend on it (PUBACK, PUBREC, SUBACK, UNSUBACK, a
// first QoS 2 PUBLISH to a persistent subscriber, a PUBREL to one), so a
// power loss loses nothing acknowledged either, at the price of one fsync
// per group.
//
// # Layout on disk
//
// Keys start with a kind byte; client ids are length-prefixed, so no client
// id or topic can make two keys collide (see keys.go). Values carry a format
// version and their kind. A schema version key lets Open refuse data written
// by a newer layout. A record that does not decode is logged (never its
// content), moved under the quarantine prefix and skipped.
package store
