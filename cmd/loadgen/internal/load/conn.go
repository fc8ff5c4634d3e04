package load

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/courier-mqtt/courier/cmd/loadgen/internal/wire"
)

// slot is one of the N long-lived clients of conn and storm.
type slot struct {
	idx     int
	id      string
	mu      sync.Mutex
	c       *wire.Client
	leaving atomic.Bool // we are closing it on purpose (churn)
}

func (s *slot) client() *wire.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c
}

func (s *slot) set(c *wire.Client) {
	s.mu.Lock()
	s.c = c
	s.mu.Unlock()
}

// connBufSize keeps idle connections cheap on our side.
const connBufSize = 512

// rampSlots connects every slot, starting slot i at start + i/ConnRate, with at
// most Parallel handshakes in flight. A local resource limit stops the ramp. It
// returns how long the ramp took.
func (r *runner) rampSlots(ctx context.Context, slots []*slot, onClose func(*slot, error)) time.Duration {
	r.target.Store(int64(len(slots)))
	if r.tokens != nil && r.cfg.TokenPrefetch {
		r.prefetchTokens(ctx, slots)
	}
	r.setPhase("ramp")
	rctx, stopRamp := context.WithCancel(ctx)
	defer stopRamp()
	sem := make(chan struct{}, r.cfg.Parallel)
	var wg sync.WaitGroup
	begin := time.Now()
	for i, s := range slots {
		var intended time.Time // unpaced: latency from the dial
		if r.cfg.ConnRate > 0 {
			intended = begin.Add(time.Duration(float64(i) / r.cfg.ConnRate * float64(time.Second)))
			if !pause(rctx, time.Until(intended)) {
				break
			}
		}
		select {
		case sem <- struct{}{}:
		case <-rctx.Done():
		}
		if rctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, _, err := r.connect(rctx, s.idx, s.id, intended, r.slotHandler(s, onClose), connBufSize)
			var le *limitError
			if errors.As(err, &le) {
				r.stop(fmt.Sprintf("%s (at %d connections)", le.reason, r.connected.Load()))
				stopRamp()
			}
			if err == nil {
				s.set(c)
			}
		}()
	}
	wg.Wait()
	return time.Since(begin)
}

// prefetchTokens fetches every slot's credentials before the ramp, so the
// connect rate measures the broker and not the token API.
func (r *runner) prefetchTokens(ctx context.Context, slots []*slot) {
	r.setPhase("tokens")
	begin := time.Now()
	_ = r.parallel(ctx, len(slots), func(i int) error {
		if _, err := r.tokens.Get(ctx, slots[i].id); err != nil {
			r.tokenErr.Add(1)
		}
		return nil
	})
	r.tokenSecs = time.Since(begin).Seconds()
}

func (r *runner) slotHandler(s *slot, onClose func(*slot, error)) wire.Handler {
	return wire.Handler{OnClose: func(err error) {
		if s.leaving.Load() || err == nil || r.isClosing() {
			return
		}
		r.dropped.Add(1)
		r.dropReason(err)
		if onClose != nil {
			onClose(s, err)
		}
	}}
}

// closeSlots disconnects every slot, Parallel at a time.
func (r *runner) closeSlots(slots []*slot) {
	r.setPhase("close")
	sem := make(chan struct{}, r.cfg.Parallel)
	var wg sync.WaitGroup
	for _, s := range slots {
		c := s.client()
		if c == nil {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.leaving.Store(true)
			_ = c.Close()
			<-sem
		}()
	}
	wg.Wait()
}

func newSlots(cfg *Config) []*slot {
	slots := make([]*slot, cfg.Conns)
	for i := range slots {
		slots[i] = &slot{idx: i, id: fmt.Sprintf("%s%d", cfg.ClientPrefix, i)}
	}
	return slots
}

// runConn ramps the connections, holds them (churning if asked) and closes them.
func (r *runner) runConn(ctx context.Context, res *Result) error {
	slots := newSlots(&r.cfg)
	ramp := r.rampSlots(ctx, slots, nil)
	atRamp := r.connected.Load()
	defer func() { r.connStats(res, ramp.Seconds(), atRamp) }()
	if res.Proc != nil {
		_, res.Proc.RSSLoaded, _ = procStats(r.cfg.BrokerPID)
		if atRamp > 0 {
			res.Proc.RSSPerConnB = float64(res.Proc.RSSLoaded-res.Proc.RSSBefore) / float64(atRamp)
		}
	}
	res.Corrected = r.cfg.ConnRate > 0
	if atRamp == 0 {
		r.closeSlots(slots)
		return ErrNotConnected
	}
	r.setPhase("hold")
	hctx, cancel := context.WithTimeout(ctx, r.cfg.Hold)
	defer cancel()
	if r.cfg.Churn > 0 {
		r.churn(ctx, hctx, slots)
	} else {
		<-hctx.Done()
	}
	r.shutdown()
	r.closeSlots(slots)
	return nil
}

// churn closes and reopens a random connection at a steady pace until hold
// ends; a reopen under way then still completes (within ctx).
func (r *runner) churn(ctx, hold context.Context, slots []*slot) {
	every := time.Duration(float64(time.Minute) / (float64(len(slots)) * r.cfg.Churn / 100))
	next := time.Now()
	for {
		next = next.Add(every)
		if !pause(hold, time.Until(next)) {
			return
		}
		s := slots[rand.IntN(len(slots))]
		c := s.client()
		if c == nil {
			continue
		}
		s.leaving.Store(true)
		_ = c.Close()
		s.set(nil)
		s.leaving.Store(false)
		nc, _, err := r.connect(ctx, s.idx, s.id, time.Time{}, r.slotHandler(s, nil), connBufSize)
		if err == nil {
			s.set(nc)
			r.churned.Add(1)
		}
	}
}
