package brokertest

import (
	"context"
	"testing"
	"time"
)

// Crash stops the broker as a killed process would (see broker.Broker.Crash):
// the store is abandoned without applying its queued writes and every
// connection is cut. Addresses and data dir are kept, so Restart brings up a
// new broker on what the crash left on disk.
func (s *Server) Crash(t testing.TB) {
	t.Helper()
	if s.Broker == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Broker.Crash(ctx); err != nil {
		t.Errorf("brokertest: crash: %v", err)
	}
}
