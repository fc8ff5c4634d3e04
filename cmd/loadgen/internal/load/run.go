package load

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/courier-mqtt/courier/cmd/loadgen/internal/wire"
)

// Option changes how Run reports while it runs.
type Option func(*runner)

// WithProgress has fn called from one goroutine every SampleInterval with the live state.
func WithProgress(fn func(Progress)) Option { return func(r *runner) { r.progress = fn } }

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(r *runner) { r.log = l } }

type runner struct {
	cfg      Config
	start    time.Time
	nonce    uint32
	dialer   *wire.Dialer
	tokens   *tokenSource
	progress func(Progress)
	log      *slog.Logger
	httpc    *http.Client

	phase   atomic.Pointer[string]
	stopMu  sync.Mutex
	stopped string

	// connections
	target                                              atomic.Int64
	attempts, connects, connected, peak                 atomic.Int64
	authErr, refused, dialErr, timeouts, tokenErr       atomic.Int64
	dropped, churned                                    atomic.Int64
	connectH, connectSvcH, pubAckH, e2eH, e2eSvcH, recH *hist

	// messages
	published, acked, ackFailed, received, unique atomic.Int64
	lastRecv                                      atomic.Int64 // ns since start of the last delivery

	// lifetime of client goroutines started from callbacks (storm reconnects)
	lifeMu  sync.Mutex
	closing bool
	life    sync.WaitGroup

	sampleMu      sync.Mutex
	series        []Sample
	dropMu        sync.Mutex
	drops         map[string]int64
	tokenSecs     float64 // time spent prefetching tokens
	metricsErrors atomic.Int64
}

// Run runs cfg's scenario until it ends by itself (or ctx ends) and returns what it measured.
func Run(ctx context.Context, cfg Config, opts ...Option) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d, err := wire.NewDialer(cfg.Broker, cfg.TLS, cfg.SourceIPs)
	if err != nil {
		return nil, err
	}
	d.Timeout = cfg.ConnectTimeout
	r := &runner{
		cfg:         cfg,
		dialer:      d,
		nonce:       rand.Uint32(),
		log:         slog.New(slog.DiscardHandler),
		httpc:       &http.Client{Timeout: 2 * time.Second},
		connectH:    newHist(),
		connectSvcH: newHist(),
		pubAckH:     newHist(),
		e2eH:        newHist(),
		e2eSvcH:     newHist(),
		recH:        newHist(),
	}
	for _, o := range opts {
		o(r)
	}
	if cfg.TokenURL != "" {
		r.tokens = newTokenSource(cfg.TokenURL, cfg.TokenKey, cfg.ConnectTimeout)
	}
	r.setPhase("start")
	res := &Result{
		Scenario: cfg.Scenario,
		Broker:   cfg.Broker,
		Protocol: map[byte]string{wire.V311: "3.1.1", wire.V5: "5"}[cfg.Version],
		Params:   cfg.params(),
	}
	if cfg.BrokerPID > 0 {
		res.Proc = &BrokerStats{PID: cfg.BrokerPID}
		_, res.Proc.RSSBefore, _ = procStats(cfg.BrokerPID)
	}
	cpu0 := r.brokerCPU()
	r.start = time.Now()
	res.Started = r.start

	sctx, stopSampler := context.WithCancel(context.Background())
	var swg sync.WaitGroup
	swg.Add(1)
	go func() {
		defer swg.Done()
		r.sample(sctx)
	}()

	switch cfg.Scenario {
	case Conn:
		err = r.runConn(ctx, res)
	case Storm:
		err = r.runStorm(ctx, res)
	default:
		err = r.runPubSub(ctx, res)
	}
	r.takeSample() // the final point
	stopSampler()
	swg.Wait()

	res.Seconds = time.Since(r.start).Seconds()
	res.Stopped = r.stopReason()
	res.Connect = r.connectH.summary()
	res.ConnectService = r.connectSvcH.summary()
	res.PubAck = r.pubAckH.summary()
	res.EndToEnd = r.e2eH.summary()
	res.EndToEndSvc = r.e2eSvcH.summary()
	res.Series = r.series
	if res.Proc != nil {
		res.Proc.CPUSeconds = r.brokerCPU() - cpu0
		if res.Proc.RSSLoaded == 0 {
			_, res.Proc.RSSLoaded, _ = procStats(cfg.BrokerPID)
		}
		res.Proc.MetricsErrors = r.metricsErrors.Load()
		if res.Proc.CPUPerMsgUs == 0 && res.Msgs != nil && res.Msgs.Published > 0 {
			res.Proc.CPUPerMsgUs = res.Proc.CPUSeconds * 1e6 / float64(res.Msgs.Published)
		}
	}
	return res, err
}

func (c *Config) params() []string {
	p := []string{fmt.Sprintf("scenario=%s", c.Scenario), fmt.Sprintf("broker=%s", c.Broker), fmt.Sprintf("mqtt=%d", c.Version)}
	switch c.Scenario {
	case Conn, Storm:
		p = append(p, fmt.Sprintf("conns=%d", c.Conns), fmt.Sprintf("rate=%g/s", c.ConnRate), fmt.Sprintf("keepalive=%v", c.Keepalive))
		if c.Scenario == Conn {
			p = append(p, fmt.Sprintf("hold=%v", c.Hold), fmt.Sprintf("churn=%g%%/min", c.Churn))
		}
		p = append(p, fmt.Sprintf("persistent=%v", c.Persistent))
	default:
		p = append(p, fmt.Sprintf("publishers=%d", c.Publishers), fmt.Sprintf("subscribers=%d", c.Subscribers),
			fmt.Sprintf("topology=%s", c.Topology), fmt.Sprintf("qos=%d", c.QoS), fmt.Sprintf("payload=%dB", c.PayloadSize),
			fmt.Sprintf("rate=%g/s per publisher", c.PubRate), fmt.Sprintf("duration=%v", c.Duration), fmt.Sprintf("count=%d", c.Count))
	}
	if c.TokenURL != "" {
		p = append(p, "token-api=on")
	}
	return p
}

func (r *runner) now() int64 { return int64(time.Since(r.start)) }

func (r *runner) setPhase(p string) { r.phase.Store(&p) }

func (r *runner) stop(reason string) {
	r.stopMu.Lock()
	if r.stopped == "" {
		r.stopped = reason
	}
	r.stopMu.Unlock()
}

func (r *runner) stopReason() string {
	r.stopMu.Lock()
	defer r.stopMu.Unlock()
	return r.stopped
}

func (r *runner) brokerCPU() float64 {
	if r.cfg.BrokerPID <= 0 {
		return 0
	}
	cpu, _, _ := procStats(r.cfg.BrokerPID)
	return cpu
}

// goLife starts fn as a tracked goroutine unless the run is shutting down.
func (r *runner) goLife(fn func()) bool {
	r.lifeMu.Lock()
	defer r.lifeMu.Unlock()
	if r.closing {
		return false
	}
	r.life.Add(1)
	go func() {
		defer r.life.Done()
		fn()
	}()
	return true
}

// shutdown stops new tracked goroutines and waits for the running ones.
func (r *runner) shutdown() {
	r.lifeMu.Lock()
	r.closing = true
	r.lifeMu.Unlock()
	r.life.Wait()
}

func (r *runner) isClosing() bool {
	r.lifeMu.Lock()
	defer r.lifeMu.Unlock()
	return r.closing
}

// connect dials and handshakes one client. intended is when the schedule wanted
// it to start (zero: now); connect latency is recorded from it.
func (r *runner) connect(ctx context.Context, idx int, clientID string, intended time.Time, h wire.Handler, bufSize int) (*wire.Client, string, error) {
	r.attempts.Add(1)
	t0 := time.Now()
	if intended.IsZero() || intended.After(t0) {
		intended = t0
	}
	user, pass := r.cfg.Username, r.cfg.Password
	if r.tokens != nil {
		c, err := r.tokens.Get(ctx, clientID)
		if err != nil {
			r.tokenErr.Add(1)
			return nil, clientID, err
		}
		clientID, user, pass = c.ClientID, c.Username, c.Password
	}
	cctx, cancel := context.WithTimeout(ctx, r.cfg.ConnectTimeout)
	defer cancel()
	conn, err := r.dialer.Dial(cctx)
	if err != nil {
		if reason := limitReason(err); reason != "" {
			r.dialErr.Add(1)
			return nil, clientID, &limitError{reason: reason, err: err}
		}
		r.countErr(err, r.dialErr.Add)
		return nil, clientID, err
	}
	o := wire.ConnectOptions{
		Version:    r.cfg.Version,
		ClientID:   clientID,
		Username:   user,
		Password:   pass,
		Keepalive:  uint16(r.cfg.Keepalive / time.Second),
		CleanStart: !r.cfg.Persistent,
		Inflight:   r.cfg.Inflight,
		BufferSize: bufSize,
	}
	if r.cfg.Persistent {
		o.SessionExpiry = uint32(r.cfg.SessionExpiry / time.Second)
	}
	onClose := h.OnClose
	h.OnClose = func(err error) {
		r.connected.Add(-1)
		if onClose != nil {
			onClose(err)
		}
	}
	c, err := wire.Connect(cctx, conn, o, h)
	if err != nil {
		var ce *wire.ConnackError
		switch {
		case errors.As(err, &ce) && ce.Auth():
			r.authErr.Add(1)
			if r.tokens != nil {
				r.tokens.Invalidate(clientID)
			}
		case errors.As(err, &ce):
			r.refused.Add(1)
		default:
			r.countErr(err, r.dialErr.Add)
		}
		return nil, clientID, err
	}
	done := time.Now()
	r.connects.Add(1)
	n := r.connected.Add(1)
	for p := r.peak.Load(); n > p && !r.peak.CompareAndSwap(p, n); p = r.peak.Load() {
	}
	r.connectH.record(idx, done.Sub(intended))
	r.connectSvcH.record(idx, done.Sub(t0))
	return c, clientID, nil
}

func (r *runner) countErr(err error, other func(int64) int64) {
	if errors.Is(err, context.DeadlineExceeded) || os.IsTimeout(err) {
		r.timeouts.Add(1)
		return
	}
	other(1)
}

// limitError is a dial error caused by a local resource limit.
type limitError struct {
	reason string
	err    error
}

func (e *limitError) Error() string { return e.reason + ": " + e.err.Error() }
func (e *limitError) Unwrap() error { return e.err }

// sample appends a Sample every SampleInterval and reports progress.
func (r *runner) sample(ctx context.Context) {
	t := time.NewTicker(r.cfg.SampleInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.takeSample()
		}
	}
}

func (r *runner) takeSample() {
	r.sampleMu.Lock()
	defer r.sampleMu.Unlock()
	s := Sample{
		T:                time.Since(r.start).Seconds(),
		Connected:        r.connected.Load(),
		Connects:         r.connects.Load(),
		ConnErrors:       r.authErr.Load() + r.refused.Load() + r.dialErr.Load() + r.timeouts.Load() + r.tokenErr.Load(),
		Published:        r.published.Load(),
		Received:         r.received.Load(),
		BrokerConns:      -1,
		BrokerGoroutines: -1,
		BrokerMemory:     -1,
	}
	if r.cfg.OpsAddr != "" {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		m, err := scrapeMetrics(ctx, r.httpc, r.cfg.OpsAddr, r.cfg.ConnMetric)
		cancel()
		if err != nil {
			r.metricsErrors.Add(1)
		}
		s.BrokerConns, s.BrokerGoroutines, s.BrokerMemory = m.conns, m.goroutines, m.memory
	}
	if r.cfg.BrokerPID > 0 {
		s.BrokerCPU, s.BrokerRSS, _ = procStats(r.cfg.BrokerPID)
	}
	var prev Sample
	if n := len(r.series); n > 0 {
		prev = r.series[n-1]
	}
	r.series = append(r.series, s)
	if r.progress != nil {
		dt := s.T - prev.T
		p := Progress{
			Elapsed:    time.Since(r.start),
			Phase:      *r.phase.Load(),
			Connected:  s.Connected,
			Target:     r.target.Load(),
			ConnErrors: s.ConnErrors,
			Published:  s.Published,
			Received:   s.Received,
		}
		if dt > 0 {
			p.PubRate = float64(s.Published-prev.Published) / dt
			p.RecvRate = float64(s.Received-prev.Received) / dt
		}
		r.progress(p)
	}
}

// dropReason counts why the broker closed a connection.
func (r *runner) dropReason(err error) {
	reason := "connection closed"
	var se interface{ Timeout() bool }
	switch {
	case errors.Is(err, wire.ErrServerDisconnect):
		reason = err.Error() // carries the reason code
	case errors.Is(err, wire.ErrProtocol):
		reason = "protocol error"
	case errors.As(err, &se) && se.Timeout():
		reason = "timeout"
	}
	r.dropMu.Lock()
	if r.drops == nil {
		r.drops = map[string]int64{}
	}
	r.drops[reason]++
	r.dropMu.Unlock()
}

// seriesSnapshot returns the samples taken so far.
func (r *runner) seriesSnapshot() []Sample {
	r.sampleMu.Lock()
	defer r.sampleMu.Unlock()
	return append([]Sample(nil), r.series...)
}

// connStats fills the connection counters of res.
func (r *runner) connStats(res *Result, rampSecs float64, connectedAtRamp int64) {
	res.Conns = &ConnStats{
		Target:      r.cfg.Conns,
		Attempts:    r.attempts.Load(),
		Connected:   r.connects.Load(),
		Peak:        r.peak.Load(),
		AuthErrors:  r.authErr.Load(),
		Refused:     r.refused.Load(),
		DialErrors:  r.dialErr.Load(),
		Timeouts:    r.timeouts.Load(),
		TokenErrors: r.tokenErr.Load(),
		Dropped:     r.dropped.Load(),
		Churned:     r.churned.Load(),
		RampSeconds: rampSecs,
	}
	r.dropMu.Lock()
	if len(r.drops) > 0 {
		res.Conns.DropReasons = maps.Clone(r.drops)
	}
	r.dropMu.Unlock()
	if r.cfg.Scenario == PubSub {
		res.Conns.Target = r.cfg.Publishers + r.cfg.Subscribers
	}
	if rampSecs > 0 {
		res.Conns.ConnectRate = float64(connectedAtRamp) / rampSecs
	}
	if r.tokens != nil {
		res.Conns.TokenCalls = r.tokens.calls.Load()
		res.Conns.TokenSeconds = r.tokenSecs
	}
}

// waitUntil polls cond until it holds, ctx ends or the deadline passes.
func waitUntil(ctx context.Context, deadline time.Time, cond func() bool) bool {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		if cond() {
			return true
		}
		if !time.Now().Before(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return cond()
		case <-t.C:
		}
	}
}

// pause waits d or until ctx ends; it reports whether the full d passed.
func pause(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
