package client

import (
	"context"
	"time"
)

// StartOption configures ExponentialStartStrategy.
type StartOption interface{ applyStart(*startOptions) }

type startOptionFunc func(*startOptions)

func (f startOptionFunc) applyStart(o *startOptions) { f(o) }

type startOptions struct {
	initial, max time.Duration
	onRetry      func(error)
}

// WithStartIntervals sets the first and the largest wait between Start
// attempts (default 100 ms doubling up to 30 s).
func WithStartIntervals(initial, maxInterval time.Duration) StartOption {
	return startOptionFunc(func(o *startOptions) { o.initial, o.max = initial, maxInterval })
}

// WithOnRetry is called with each failed Start's error (from the strategy's
// goroutine; it must not block for long).
func WithOnRetry(f func(error)) StartOption {
	return startOptionFunc(func(o *startOptions) { o.onRetry = f })
}

// Starter is what ExponentialStartStrategy starts; *Client is one.
type Starter interface{ Start() error }

// ExponentialStartStrategy calls c.Start in the background until it succeeds
// or ctx ends, waiting a full-jitter backoff between attempts (courier-go's
// strategy; with auto-reconnect on, Start already keeps trying by itself, so
// this matters for clients built WithAutoReconnect(false)). The returned
// channel receives nil once started, or ctx's error, and is then closed.
func ExponentialStartStrategy(ctx context.Context, c Starter, opts ...StartOption) <-chan error {
	o := startOptions{initial: 100 * time.Millisecond, max: 30 * time.Second}
	for _, op := range opts {
		op.applyStart(&o)
	}
	if o.initial <= 0 {
		o.initial = 100 * time.Millisecond
	}
	if o.max < o.initial {
		o.max = o.initial
	}
	backoff := FullJitterBackoff(o.initial, o.max)
	done := make(chan error, 1)
	go func() {
		defer close(done)
		for attempt := 1; ; attempt++ {
			err := c.Start()
			if err == nil {
				done <- nil
				return
			}
			if o.onRetry != nil {
				o.onRetry(err)
			}
			t := time.NewTimer(backoff(attempt))
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				done <- ctx.Err()
				return
			}
		}
	}()
	return done
}
