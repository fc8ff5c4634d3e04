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
//     messages, expired sessions left in the topic index, QoS 2 DUP resends
//     answered 0x91, shared subscriptions delivered to offline members and
//     expired retained messages delivered on subscribe. The broker registers
//     it whether or not the store is on.
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
// A QoS 1/2 PUBLISH is written ahead: in OnPublish the store computes the
// persistent subscribers of the message and queues one record per
// subscriber, and the PUBACK/PUBREC to the publisher is held in
// OnPacketEncode until a group commit has written them (mochi itself sends
// the ack before any per-subscriber record reaches a hook). SUBACK, CONNACK,
// PUBCOMP and outgoing QoS 2 PUBLISH packets wait the same way. With
// Options.SyncWrites false (the default) an acknowledged message survives a
// process crash; with SyncWrites true it also survives a power loss, at a
// higher cost per commit.
package store
