package broker

import (
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
)

// Session expiry racing a reconnect: mochi's event loop runs the
// OnClientExpired hooks for a session and then deletes the registry entry
// by client id, unsynchronised with a client connecting under that id. A
// CONNECT in between either resumes the half-expired session, or registers
// a new client that the delete then removes from the registry (it stays
// connected but nothing is routed to it).
//
// The core hook, which mochi calls first, closes both windows: while a
// session expires, a connection for its id waits in OnSessionEstablish until
// the delete is done, and so starts a new session; and if a connection got
// in before the expiry began (the expiring object is already taken over),
// the expiry is ignored and the live client is put back after the delete.
type expiries struct {
	mu      sync.Mutex
	pending map[string]chan struct{} // client id -> closed when its expiry is done
	wg      sync.WaitGroup
	quit    chan struct{}
	once    sync.Once
}

func newExpiries() *expiries {
	return &expiries{pending: map[string]chan struct{}{}, quit: make(chan struct{})}
}

// stop ends the watchers; called by Shutdown before mochi stops.
func (e *expiries) stop() {
	e.once.Do(func() { close(e.quit) })
	e.wg.Wait()
}

// expiring reports whether the expiry of cl should be carried out, and
// arranges for the registry to settle afterwards.
func (h *coreHook) expiring(cl *mqtt.Client) bool {
	srv, e := h.b.srv, h.exp
	if cl.IsTakenOver() {
		// A connection already took this session over (resumed it, or
		// replaced it with a clean start): the expiry is stale, but mochi
		// will still delete the id. Put the live client back after that.
		if cur, ok := srv.Clients.Get(cl.ID); ok && cur != cl {
			h.afterDelete(cl, func() {
				if _, ok := srv.Clients.Get(cl.ID); !ok {
					srv.Clients.Add(cur)
				}
			})
		}
		return false
	}
	done := make(chan struct{})
	e.mu.Lock()
	e.pending[cl.ID] = done
	e.mu.Unlock()
	h.afterDelete(cl, func() {
		e.mu.Lock()
		if e.pending[cl.ID] == done {
			delete(e.pending, cl.ID)
		}
		e.mu.Unlock()
		close(done)
	})
	return true
}

// afterDelete runs fn once mochi has removed cl from the registry, or the
// broker stops. mochi deletes right after the expiry hooks return, so the
// watch is short.
func (h *coreHook) afterDelete(cl *mqtt.Client, fn func()) {
	e := h.exp
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer fn()
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			if cur, ok := h.b.srv.Clients.Get(cl.ID); !ok || cur != cl {
				return
			}
			select {
			case <-t.C:
			case <-e.quit:
				return
			}
		}
	}()
}

// logConnectWaitsForExpiry is logged (at debug) when a connection is held
// while its session expires.
const logConnectWaitsForExpiry = "connect waits for its session's expiry"

// awaitExpiry holds a connecting client while its id's session expires.
func (h *coreHook) awaitExpiry(clientID string) {
	h.exp.mu.Lock()
	done, ok := h.exp.pending[clientID]
	h.exp.mu.Unlock()
	if !ok {
		return
	}
	h.b.log.Debug(logConnectWaitsForExpiry, "client_id", clientID)
	select {
	case <-done:
	case <-h.exp.quit:
	case <-time.After(5 * time.Second):
	}
}
