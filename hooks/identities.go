package hooks

import (
	"sync"

	"github.com/courier-mqtt/courier/auth"
)

// IdentityRecord is what an IdentityStore keeps per client id: who owns the
// MQTT session and what it may receive. It never holds a token or password.
type IdentityRecord struct {
	Identity string      `json:"identity"`
	Grants   auth.Grants `json:"grants"`
	Admin    bool        `json:"admin,omitempty"`
}

// IdentityStore persists the identity bound to each client id, so that after
// a broker restart (when mochi restores offline persistent sessions from its
// store) deliveries to those sessions are still authorized from the identity
// that created them, and a takeover by another identity is still refused.
// The broker backs it with its durable store; without one, bindings live in
// memory only and restored sessions receive nothing until their owner
// reconnects.
//
// Methods are called on mochi's client goroutines (Load also on the delivery
// path, only for client ids with no binding in memory), so they must be
// fast and safe for concurrent use.
type IdentityStore interface {
	SaveIdentity(clientID string, rec IdentityRecord) error
	LoadIdentity(clientID string) (IdentityRecord, bool, error)
	DeleteIdentity(clientID string) error
}

// MemoryIdentities is an in-memory IdentityStore, for tests and for sharing
// bindings between hooks in one process.
type MemoryIdentities struct {
	mu sync.Mutex
	m  map[string]IdentityRecord
}

// NewMemoryIdentities returns an empty MemoryIdentities.
func NewMemoryIdentities() *MemoryIdentities {
	return &MemoryIdentities{m: make(map[string]IdentityRecord)}
}

// SaveIdentity implements IdentityStore.
func (mi *MemoryIdentities) SaveIdentity(clientID string, rec IdentityRecord) error {
	mi.mu.Lock()
	defer mi.mu.Unlock()
	mi.m[clientID] = rec
	return nil
}

// LoadIdentity implements IdentityStore.
func (mi *MemoryIdentities) LoadIdentity(clientID string) (IdentityRecord, bool, error) {
	mi.mu.Lock()
	defer mi.mu.Unlock()
	rec, ok := mi.m[clientID]
	return rec, ok, nil
}

// DeleteIdentity implements IdentityStore.
func (mi *MemoryIdentities) DeleteIdentity(clientID string) error {
	mi.mu.Lock()
	defer mi.mu.Unlock()
	delete(mi.m, clientID)
	return nil
}

// Len returns the number of bindings.
func (mi *MemoryIdentities) Len() int {
	mi.mu.Lock()
	defer mi.mu.Unlock()
	return len(mi.m)
}
