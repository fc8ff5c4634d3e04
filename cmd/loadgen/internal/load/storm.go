package load

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/courier-mqtt/courier/cmd/loadgen/internal/wire"
)

// runStorm connects N clients, triggers (or waits for) a broker outage, and
// reconnects every dropped client with jittered exponential backoff until all
// are back or StormTimeout passes.
func (r *runner) runStorm(ctx context.Context, res *Result) error {
	slots := newSlots(&r.cfg)
	st := &StormStats{AllBackSecs: -1}
	res.Storm = st
	var (
		mu        sync.Mutex
		firstDrop time.Time
		lastBack  time.Time
	)
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	onDrop := func(s *slot, _ error) {
		now := time.Now()
		mu.Lock()
		if firstDrop.IsZero() {
			firstDrop = now
		}
		mu.Unlock()
		s.set(nil)
		r.goLife(func() {
			if r.reconnect(sctx, s, now) {
				mu.Lock()
				lastBack = time.Now()
				mu.Unlock()
			}
		})
	}
	ramp := r.rampSlots(ctx, slots, onDrop)
	atRamp := r.connected.Load()
	res.Corrected = r.cfg.ConnRate > 0
	if res.Proc != nil {
		_, res.Proc.RSSLoaded, _ = procStats(r.cfg.BrokerPID)
	}
	if atRamp == 0 {
		r.connStats(res, ramp.Seconds(), atRamp)
		return ErrNotConnected
	}
	attempts0, auth0 := r.attempts.Load(), r.authErr.Load()
	errs0 := r.refused.Load() + r.dialErr.Load() + r.timeouts.Load() + r.tokenErr.Load()
	dropped0 := r.dropped.Load()

	r.setPhase("outage")
	outageStart := time.Now()
	deadline := outageStart.Add(r.cfg.StormTimeout)
	outageDone := make(chan error, 1)
	if r.cfg.Outage != nil {
		go func() { outageDone <- r.cfg.Outage(sctx) }()
	} else {
		outageDone <- nil
	}
	// Recovered means: something dropped, the outage action is over, and every
	// client that was connected after the ramp is connected again.
	var outageErr error
	outageOver := false
	recovered := waitUntil(ctx, deadline, func() bool {
		if !outageOver {
			select {
			case outageErr = <-outageDone:
				outageOver = true
				st.OutageSeconds = time.Since(outageStart).Seconds()
			default:
			}
		}
		if !outageOver || r.dropped.Load() == dropped0 {
			return false // the outage is still under way, or has not begun
		}
		r.setPhase("recover")
		return r.connected.Load() >= atRamp
	})
	cancel()
	if !outageOver {
		outageErr = <-outageDone
	}
	r.shutdown()
	if outageErr != nil {
		st.OutageError = outageErr.Error()
	}

	mu.Lock()
	if recovered && !firstDrop.IsZero() && !lastBack.IsZero() {
		st.AllBackSecs = lastBack.Sub(firstDrop).Seconds()
	}
	mu.Unlock()
	st.Dropped = r.dropped.Load() - dropped0
	st.NotBack = max(atRamp-r.connected.Load(), 0)
	st.Recovered = st.Dropped - st.NotBack
	st.Attempts = r.attempts.Load() - attempts0
	st.AuthErrors = r.authErr.Load() - auth0
	st.OtherErrors = r.refused.Load() + r.dialErr.Load() + r.timeouts.Load() + r.tokenErr.Load() - errs0
	st.Reconnect = r.recH.summary()
	r.takeSample()
	st.PeakRate = peakConnectRate(r.seriesSnapshot(), outageStart.Sub(r.start).Seconds())
	r.connStats(res, ramp.Seconds(), atRamp)
	r.closeSlots(slots)
	switch {
	case outageErr != nil:
		return fmt.Errorf("%w: %w", ErrOutage, outageErr)
	case st.Dropped == 0:
		r.stop(fmt.Sprintf("no connection dropped within %v", r.cfg.StormTimeout))
	case !recovered:
		r.stop(fmt.Sprintf("%d of %d clients not back within %v", st.NotBack, atRamp, r.cfg.StormTimeout))
	}
	return nil
}

// reconnect brings one dropped slot back, retrying with full-jitter exponential
// backoff until it connects or ctx ends. It reports whether it connected.
func (r *runner) reconnect(ctx context.Context, s *slot, dropped time.Time) bool {
	backoff := r.cfg.ReconnectMin
	for ctx.Err() == nil {
		if !pause(ctx, time.Duration(rand.Int64N(int64(backoff))+1)) {
			return false
		}
		c, _, err := r.connect(ctx, s.idx, s.id, time.Time{}, r.slotHandler(s, r.stormRedrop(ctx)), connBufSize)
		if err == nil {
			s.set(c)
			r.recH.record(s.idx, time.Since(dropped))
			return true
		}
		var ce *wire.ConnackError
		if errors.As(err, &ce) && ce.Auth() && r.tokens == nil {
			// Static credentials the broker refuses will not get better: keep
			// counting, but back off as far as allowed.
			backoff = r.cfg.ReconnectMax
		}
		backoff = min(backoff*2, r.cfg.ReconnectMax)
	}
	return false
}

// stormRedrop handles a client that drops again after it came back.
func (r *runner) stormRedrop(ctx context.Context) func(*slot, error) {
	return func(s *slot, _ error) {
		now := time.Now()
		s.set(nil)
		r.goLife(func() { r.reconnect(ctx, s, now) })
	}
}

// peakConnectRate is the highest connects per second between samples after from.
func peakConnectRate(series []Sample, from float64) float64 {
	var peak float64
	for i := 1; i < len(series); i++ {
		a, b := series[i-1], series[i]
		if b.T < from || b.T <= a.T {
			continue
		}
		peak = max(peak, float64(b.Connects-a.Connects)/(b.T-a.T))
	}
	return peak
}
