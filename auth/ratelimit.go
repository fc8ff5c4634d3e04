package auth

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// RateLimit is a token bucket: Rate requests per second on average, bursts
// of up to Burst. A zero Rate disables the limit.
type RateLimit struct {
	Rate  float64 `json:"rate" yaml:"rate"`
	Burst int     `json:"burst" yaml:"burst"`
}

// keyedLimiter holds one token bucket per key (identity or remote address).
// Its size is bounded: idle buckets (full again) are swept when the map is
// full, and if every bucket is busy a new key is refused rather than growing
// without bound. It owns no goroutine.
type keyedLimiter struct {
	limit rate.Limit
	burst int
	max   int

	mu        sync.Mutex
	m         map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	lim  *rate.Limiter
	last time.Time
}

func newKeyedLimiter(rl RateLimit, max int) *keyedLimiter {
	if rl.Rate <= 0 {
		return nil
	}
	burst := rl.Burst
	if burst < 1 {
		burst = 1
	}
	return &keyedLimiter{limit: rate.Limit(rl.Rate), burst: burst, max: max, m: make(map[string]*bucket)}
}

// allow takes one token for key at now. It returns 0 when allowed, else how
// long until a token is available (at least one second when the table is
// full).
func (kl *keyedLimiter) allow(key string, now time.Time) time.Duration {
	if kl == nil {
		return 0
	}
	kl.mu.Lock()
	defer kl.mu.Unlock()
	b, ok := kl.m[key]
	if !ok {
		if len(kl.m) >= kl.max && now.Sub(kl.lastSweep) >= time.Second {
			kl.sweep(now) // at most once a second: a sweep walks the whole table
			kl.lastSweep = now
		}
		if len(kl.m) >= kl.max {
			return time.Second
		}
		b = &bucket{lim: rate.NewLimiter(kl.limit, kl.burst)}
		kl.m[key] = b
	}
	b.last = now
	r := b.lim.ReserveN(now, 1)
	if !r.OK() {
		return time.Second
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d
	}
	return 0
}

// sweep drops buckets that have refilled completely: forgetting them loses
// nothing.
func (kl *keyedLimiter) sweep(now time.Time) {
	refill := time.Duration(float64(kl.burst) / float64(kl.limit) * float64(time.Second))
	for k, b := range kl.m {
		if now.Sub(b.last) >= refill {
			delete(kl.m, k)
		}
	}
}
