package load

import (
	"context"
	"net/http"
	"time"
)

// Test-only access to unexported pieces.

type TokenSource interface {
	Get(ctx context.Context, clientID string) (Credentials, error)
	Invalidate(clientID string)
}

func NewTokenSourceForTest(url, key string) TokenSource {
	return newTokenSource(url, key, 5*time.Second)
}

type BrokerMetrics = brokerMetrics

func ScrapeMetrics(ctx context.Context, addr, name string) (float64, float64, float64, error) {
	m, err := scrapeMetrics(ctx, http.DefaultClient, addr, name)
	return m.conns, m.goroutines, m.memory, err
}

func Tracker() *seqTracker { return &seqTracker{} }

func (t *seqTracker) Observe(seq uint64) bool     { return t.observe(seq) }
func (t *seqTracker) UniqueBelow(n uint64) uint64 { return t.uniqueBelow(n) }
func (t *seqTracker) Counts() (u, d, r uint64)    { return t.unique, t.dups, t.reordered }

func LimitReason(err error) string { return limitReason(err) }
