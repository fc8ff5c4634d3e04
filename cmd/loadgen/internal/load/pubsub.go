package load

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/courier-mqtt/courier/cmd/loadgen/internal/wire"
)

// msgBufSize is the read and write buffer of pubsub clients.
const msgBufSize = 64 << 10

// flushEvery bounds how many publishes a publisher buffers before writing them out.
const flushEvery = 64

// subscriber is one receiving client and its accounting. Its trackers are only
// touched by its reader goroutine until it is closed.
type subscriber struct {
	idx      int
	c        *wire.Client
	trackers []seqTracker // by publisher index
	expect   func(pub int) bool
	foreign  int64
}

type publisher struct {
	idx   int
	c     *wire.Client
	topic string
	sent  atomic.Int64
}

func (r *runner) onMessage(s *subscriber, m *wire.Message) {
	now := r.now()
	r.received.Add(1)
	r.lastRecv.Store(now)
	h, ok := getHeader(m.Payload)
	if !ok || h.nonce != r.nonce || int(h.publisher) >= len(s.trackers) {
		s.foreign++
		return
	}
	if s.trackers[h.publisher].observe(h.seq) {
		return // duplicate: counted by the tracker
	}
	if s.expect(int(h.publisher)) {
		r.unique.Add(1)
	}
	r.e2eH.record(s.idx, time.Duration(now-h.intended))
	r.e2eSvcH.record(s.idx, time.Duration(now-h.sent))
}

// runPubSub connects the subscribers, then the publishers, publishes until the
// count or duration, waits for stragglers and accounts for every message.
func (r *runner) runPubSub(ctx context.Context, res *Result) error {
	cfg := &r.cfg
	r.target.Store(int64(cfg.Publishers + cfg.Subscribers))
	r.setPhase("connect")
	connStart := time.Now()
	subs := make([]*subscriber, cfg.Subscribers)
	pubs := make([]*publisher, cfg.Publishers)
	defer func() {
		r.shutdown()
		r.setPhase("close")
		for _, s := range subs {
			if s != nil && s.c != nil {
				_ = s.c.Close()
			}
		}
		for _, p := range pubs {
			if p != nil && p.c != nil {
				_ = p.c.Close()
			}
		}
		r.connStats(res, time.Since(connStart).Seconds(), int64(cfg.Publishers+cfg.Subscribers))
		if res.Msgs != nil {
			r.account(res.Msgs, subs, pubs)
		}
	}()

	filter := func(i int) string {
		if cfg.Topology == Pairs {
			return cfg.Topic + "/" + strconv.Itoa(i)
		}
		return cfg.Topic + "/+"
	}
	err := r.parallel(ctx, cfg.Subscribers, func(i int) error {
		s := &subscriber{idx: i, trackers: make([]seqTracker, cfg.Publishers)}
		s.expect = func(p int) bool { return cfg.Topology == All || p == i }
		h := wire.Handler{OnPublish: func(m *wire.Message) { r.onMessage(s, m) }}
		c, _, err := r.connect(ctx, i, fmt.Sprintf("%ssub-%d", cfg.ClientPrefix, i), time.Time{}, h, msgBufSize)
		if err != nil {
			return fmt.Errorf("connect subscriber %d: %w", i, err)
		}
		s.c = c
		subs[i] = s
		if err := c.Subscribe(ctx, cfg.QoS, filter(i)); err != nil {
			return fmt.Errorf("subscribe %d: %w", i, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	err = r.parallel(ctx, cfg.Publishers, func(i int) error {
		p := &publisher{idx: i, topic: cfg.Topic + "/" + strconv.Itoa(i)}
		h := wire.Handler{OnAck: func(_ uint16, stamp int64, reason byte) {
			if reason >= 0x80 {
				r.ackFailed.Add(1)
				return
			}
			r.acked.Add(1)
			r.pubAckH.record(i, time.Duration(r.now()-stamp))
		}}
		c, _, err := r.connect(ctx, cfg.Subscribers+i, fmt.Sprintf("%spub-%d", cfg.ClientPrefix, i), time.Time{}, h, msgBufSize)
		if err != nil {
			return fmt.Errorf("connect publisher %d: %w", i, err)
		}
		p.c = c
		pubs[i] = p
		return nil
	})
	if err != nil {
		return err
	}

	res.Msgs = &MsgStats{}
	res.Corrected = cfg.PubRate > 0
	r.setPhase("publish")
	pctx := ctx
	if cfg.Duration > 0 {
		// Paced publishers send every message scheduled within Duration, even
		// late ones (so the count is exact); the deadline only bounds a stall.
		limit := cfg.Duration
		if cfg.PubRate > 0 {
			limit = 2*cfg.Duration + 5*time.Second
		}
		var cancel context.CancelFunc
		pctx, cancel = context.WithTimeout(ctx, limit)
		defer cancel()
	}
	cpu0 := r.brokerCPU()
	pubStart := r.now()
	var wg sync.WaitGroup
	errs := make(chan error, len(pubs))
	for _, p := range pubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.publish(pctx, p, pubStart); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	pubEnd := r.now()
	res.Msgs.PubSeconds = time.Duration(pubEnd - pubStart).Seconds()
	close(errs)
	for e := range errs {
		r.stop(fmt.Sprintf("a publisher stopped: %v", e))
		break
	}

	// Wait for acks and deliveries; give up after Drain with no progress.
	r.setPhase("drain")
	var published, expected int64
	for _, p := range pubs {
		n := p.sent.Load()
		published += n
		if cfg.Topology == All {
			expected += n * int64(cfg.Subscribers)
		} else {
			expected += n
		}
	}
	r.drain(ctx, func() int64 { return r.unique.Load() + r.acked.Load() + r.ackFailed.Load() }, func() bool {
		return r.unique.Load() >= expected && (cfg.QoS == 0 || r.acked.Load()+r.ackFailed.Load() >= published)
	})
	if res.Proc != nil && published > 0 {
		res.Proc.CPUPerMsgUs = (r.brokerCPU() - cpu0) * 1e6 / float64(published)
	}
	if secs := res.Msgs.PubSeconds; secs > 0 {
		res.Msgs.PubRate = float64(published) / secs
	}
	if secs := time.Duration(r.lastRecv.Load() - pubStart).Seconds(); secs > 0 {
		res.Msgs.RecvRate = float64(r.received.Load()) / secs
		res.Msgs.DeliveredRate = float64(r.unique.Load()) / secs
	}
	res.Msgs.Expected = expected
	return nil
}

// drain waits until done holds, or progress stops moving for Drain.
func (r *runner) drain(ctx context.Context, progress func() int64, done func() bool) {
	last, lastMove := progress(), time.Now()
	waitUntil(ctx, time.Now().Add(24*time.Hour), func() bool {
		if done() {
			return true
		}
		if p := progress(); p != last {
			last, lastMove = p, time.Now()
		}
		return time.Since(lastMove) >= r.cfg.Drain
	})
}

// publish sends one publisher's messages until its count or ctx ends.
func (r *runner) publish(ctx context.Context, p *publisher, start int64) error {
	cfg := &r.cfg
	buf := make([]byte, cfg.PayloadSize)
	var interval int64
	if cfg.PubRate > 0 {
		interval = int64(float64(time.Second) / cfg.PubRate)
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	unflushed := 0
	defer func() { _ = p.c.Flush() }()
	for seq := uint64(0); cfg.Count == 0 || seq < uint64(cfg.Count); seq++ {
		if ctx.Err() != nil {
			return nil
		}
		intended := r.now()
		if cfg.Duration > 0 && interval == 0 && intended-start >= int64(cfg.Duration) {
			return nil
		}
		if interval > 0 {
			intended = start + int64(seq)*interval
			if cfg.Duration > 0 && intended-start >= int64(cfg.Duration) {
				return nil
			}
			if wait := intended - r.now(); wait > 0 {
				if unflushed > 0 {
					if err := p.c.Flush(); err != nil {
						return err
					}
					unflushed = 0
				}
				timer.Reset(time.Duration(wait))
				select {
				case <-timer.C:
				case <-ctx.Done():
					return nil
				}
			}
		}
		var id uint16
		if cfg.QoS > 0 {
			var err error
			if id, err = p.c.Reserve(ctx); err != nil {
				if ctx.Err() != nil {
					return nil // the window was full when time ran out: this one was never sent
				}
				return err
			}
		}
		sent := r.now()
		if interval == 0 {
			// Unthrottled: measure from after the wait for a window slot (the
			// broker's service time under saturation, not our queue).
			intended = sent
		}
		putHeader(buf, header{nonce: r.nonce, publisher: uint32(p.idx), seq: seq, intended: intended, sent: sent})
		unflushed++
		flush := unflushed >= flushEvery
		if err := p.c.PublishReserved(id, p.topic, cfg.QoS, buf, intended, flush); err != nil {
			return err
		}
		if flush {
			unflushed = 0
		}
		p.sent.Add(1)
		r.published.Add(1)
	}
	return nil
}

// parallel runs fn for 0..n-1, Parallel at a time, and returns the first error.
func (r *runner) parallel(ctx context.Context, n int, fn func(i int) error) error {
	sem := make(chan struct{}, r.cfg.Parallel)
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(i); err != nil {
				once.Do(func() { first = err })
			}
		}()
	}
	wg.Wait()
	return first
}

// account adds up the per-(subscriber, publisher) trackers. It runs after every
// client is closed, so the trackers are no longer written.
func (r *runner) account(m *MsgStats, subs []*subscriber, pubs []*publisher) {
	m.Published = r.published.Load()
	m.Acked = r.acked.Load()
	m.AckFailed = r.ackFailed.Load()
	m.Received = r.received.Load()
	for _, s := range subs {
		if s == nil {
			continue
		}
		m.Unexpected += s.foreign
		for pi := range s.trackers {
			t := &s.trackers[pi]
			m.Duplicates += int64(t.dups)
			m.Reordered += int64(t.reordered)
			var sent uint64
			if pi < len(pubs) && pubs[pi] != nil {
				sent = uint64(pubs[pi].sent.Load())
			}
			if !s.expect(pi) {
				m.Unexpected += int64(t.unique)
				continue
			}
			got := t.uniqueBelow(sent)
			m.Unique += int64(got)
			m.Lost += int64(sent - got)
			m.Unexpected += int64(t.unique - got) // sequences never published
		}
	}
}
