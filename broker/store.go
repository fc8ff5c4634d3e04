package broker

import (
	"context"
	"fmt"

	"github.com/courier-mqtt/courier/hooks/store"
)

// openStore opens the durable store in cfg.DataDir (when set) and returns the
// mochi hooks to register for it, plus a close function that the broker calls
// last in Shutdown, after mochi's event loop has halted and every connection
// has ended. The hooks' own Stop must therefore not close the database.
//
// Core fixes for mochi defects that apply with or without a store are also
// returned here, so they are registered before any user hook.
func (b *Broker) openStore() (hooks []hookEntry, closeFn func() error, err error) {
	fixes := store.NewFixes(b.srv, store.WithFixesLogger(b.opts.logger))
	hooks = []hookEntry{{fixes, nil}}
	if b.cfg.DataDir == "" {
		return hooks, func() error { return nil }, nil
	}
	st, err := store.Open(b.cfg.DataDir, store.Options{Logger: b.opts.logger})
	if err != nil {
		return nil, nil, fmt.Errorf("open store: %w", err)
	}
	b.store = st
	hooks = append(hooks, hookEntry{st, store.Config{Server: b.srv, Fixes: fixes}})
	return hooks, st.Close, nil
}

// Crash stops the broker the way a killed process stops, for crash tests:
// every listener stops and every connection is cut at once (no DISCONNECT,
// no Will), so no acknowledgement leaves the broker after this point; then
// the store is abandoned without applying its queued writes (what was
// acknowledged is in its write-ahead log and is replayed by the next open),
// and the broker shuts down. Use Shutdown otherwise.
func (b *Broker) Crash(ctx context.Context) error {
	b.mu.Lock()
	st, ls, started := b.store, b.listeners, b.state == stateStarted
	b.mu.Unlock()
	if started {
		b.stopping.Store(true) // a crash publishes no Wills either
		for _, l := range ls {
			l.stopAccepting(ctx)
			l.closeConns()
		}
	}
	if st != nil {
		_ = st.Abort()
	}
	return b.Shutdown(ctx)
}
