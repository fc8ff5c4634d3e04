package client

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
)

// connectionMode is the type of UseMultiConnectionMode.
type connectionMode int

func (m connectionMode) apply(o *options) { o.multiConn = m == multiConnection }

const multiConnection connectionMode = 1

// UseMultiConnectionMode (courier-go's option, used as a value:
// NewClient(WithResolver(r), UseMultiConnectionMode)) opens one connection per
// address of the resolver's latest list instead of one connection to the first
// address that answers. Publishes go round-robin over the connected
// connections; a shared subscription (see SharedSubscriptionPredicate) is made
// on every connection, any other on one (the first address's, until that
// address leaves the list). Connections follow the resolver: an address that
// leaves the list is disconnected, a new one is connected and given the
// subscriptions. Every connection uses the same client id (they go to
// different brokers). It needs WithResolver and conflicts with WithTokenAPI
// and WithPersistence.
const UseMultiConnectionMode = multiConnection

// WithPoolSize caps the connections of UseMultiConnectionMode at n (n >= 1):
// only the first n addresses of the resolver's list are connected. Without it
// every address is.
func WithPoolSize(n int) Option {
	return optionFunc(func(o *options) { o.poolSize, o.poolSizeSet = n, true })
}

// SharedSubscriptionPredicate decides which subscriptions UseMultiConnectionMode
// makes on every connection (default IsSharedSubscription).
func SharedSubscriptionPredicate(p func(topic string) bool) Option {
	return optionFunc(func(o *options) { o.sharedPred, o.sharedPredOn = p, true })
}

// IsSharedSubscription reports whether filter is an MQTT 5 shared subscription
// ($share/<group>/<filter>). [MQTT-4.8.2-1]
func IsSharedSubscription(filter string) bool { return strings.HasPrefix(filter, "$share/") }

// connPool holds the per-address clients of a multi-connection client.
type connPool struct {
	mu      sync.Mutex
	conns   []*poolConn // in the resolver's order
	primary *poolConn   // holds the subscriptions that are not shared
	closed  bool        // set by Stop; no connection is added afterwards
	next    atomic.Uint64
}

type poolConn struct {
	addr    string
	c       *Client
	removed atomic.Bool
}

func (p *connPool) snapshot() []*poolConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conns
}

func (c *Client) startMulti() error {
	c.lifeMu.Lock()
	defer c.lifeMu.Unlock()
	if c.run.Load() != nil {
		return ErrAlreadyStarted
	}
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{ctx: ctx, cancel: cancel}
	c.pool.mu.Lock()
	c.pool.closed = false
	c.pool.mu.Unlock()
	c.run.Store(in)
	in.wg.Add(1)
	go c.followResolverMulti(in)
	return nil
}

func (c *Client) stopMulti(in *instance) {
	in.cancel()
	c.pool.mu.Lock()
	conns := c.pool.conns
	c.pool.conns, c.pool.primary, c.pool.closed = nil, nil, true
	c.pool.mu.Unlock()
	var wg sync.WaitGroup
	for _, pc := range conns {
		pc.removed.Store(true)
		wg.Go(pc.c.Stop)
	}
	wg.Wait()
	in.wg.Wait() // the resolver loop and connections still starting
	c.refreshConnected()
}

func (c *Client) followResolverMulti(in *instance) {
	defer in.wg.Done()
	r := c.opts.resolver
	for {
		select {
		case <-in.ctx.Done():
			return
		case <-r.Done():
			return
		case list, ok := <-r.UpdateChan():
			if !ok {
				return
			}
			c.reconcile(in, list)
		}
	}
}

// reconcile makes the pool's connections match the address list.
func (c *Client) reconcile(in *instance, list []TCPAddress) {
	var addrs []string
	seen := map[string]bool{}
	for _, a := range list {
		if s := a.String(); !seen[s] {
			seen[s] = true
			addrs = append(addrs, s)
		}
	}
	if c.opts.poolSizeSet && len(addrs) > c.opts.poolSize {
		addrs = addrs[:c.opts.poolSize]
	}

	p := c.pool
	p.mu.Lock()
	if p.closed || in.ctx.Err() != nil {
		p.mu.Unlock()
		return
	}
	old := map[string]*poolConn{}
	for _, pc := range p.conns {
		old[pc.addr] = pc
	}
	conns := make([]*poolConn, 0, len(addrs))
	var added []*poolConn
	for _, a := range addrs {
		if pc, ok := old[a]; ok {
			conns = append(conns, pc)
			delete(old, a)
			continue
		}
		pc := &poolConn{addr: a, c: c.newPoolClient(a)}
		conns = append(conns, pc)
		added = append(added, pc)
	}
	p.conns = conns
	var promoted *poolConn // an already running connection that became primary
	if p.primary == nil || p.primary.removed.Load() || old[p.primary.addr] == p.primary {
		p.primary = nil
		if len(conns) > 0 {
			p.primary = conns[0]
			if !contains(added, conns[0]) {
				promoted = conns[0]
			}
		}
	}
	// Seed the new connections (and a promoted one) from the store while
	// holding p.mu: a concurrent Subscribe either is in the store already or
	// sees the new connection among its targets.
	var promotedSubs []*subscription
	for _, s := range c.subs.all() {
		shared := c.opts.sharedPred(s.filter)
		for _, pc := range added {
			if shared || pc == p.primary {
				pc.c.subs.put(s.copyForPool())
			}
		}
		if promoted != nil && !shared {
			promotedSubs = append(promotedSubs, s.copyForPool())
		}
	}
	for _, pc := range old {
		pc.removed.Store(true)
	}
	p.mu.Unlock()

	c.refreshConnected()
	for _, pc := range old {
		c.log.Info("address left the resolver list", "remote", pc.addr)
		pc.c.Stop()
	}
	for _, pc := range added {
		in.wg.Go(func() {
			if err := pc.c.Start(); err != nil {
				c.log.Warn("connect failed", "remote", pc.addr, "err", err)
			}
			if in.ctx.Err() != nil || pc.removed.Load() {
				pc.c.Stop() // removed or stopped while starting
			}
		})
	}
	if len(promotedSubs) > 0 {
		ctx, cancel := context.WithTimeout(in.ctx, c.opts.writeTimeout)
		if err := promoted.c.subscribeAll(ctx, promotedSubs); err != nil {
			c.log.Warn("moving subscriptions failed", "remote", promoted.addr, "err", err)
		}
		cancel()
	}
}

func contains(list []*poolConn, pc *poolConn) bool {
	for _, x := range list {
		if x == pc {
			return true
		}
	}
	return false
}

func (s *subscription) copyForPool() *subscription {
	// The parent's store holds the handler; a pool client only sends and
	// renews the subscription.
	return &subscription{filter: s.filter, qos: s.qos, noLocal: s.noLocal}
}

// newPoolClient builds the client for one address of a multi-connection
// client: the parent's options with that address, and the parent's event hub
// (its events carry the address in Conn.Address).
func (c *Client) newPoolClient(addr string) *Client {
	o := c.opts
	o.addresses = []*url.URL{{Scheme: "mqtt", Host: addr}}
	o.resolver, o.multiConn = nil, false
	o.logger = c.opts.logger.With("remote", addr)
	parent := c
	if f := c.opts.onConnect; f != nil {
		o.onConnect = func(PubSub) { f(parent) }
	}
	if f := c.opts.onReconnect; f != nil {
		o.onReconnect = func(PubSub) { f(parent) }
	}
	child := newClient(o)
	child.events = c.events
	child.state.address = addr // events before the first dial carry it too
	child.parent = c
	return child
}

// refreshConnected sets a multi-connection client's state: connected while
// at least one pool client is.
func (c *Client) refreshConnected() {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	up := false
	c.pool.mu.Lock()
	for _, pc := range c.pool.conns {
		if pc.c.IsConnected() {
			up = true
			break
		}
	}
	c.pool.mu.Unlock()
	if up == c.connected.Load() {
		return
	}
	c.connected.Store(up)
	if up {
		c.connGen.Add(1)
		close(c.connCh)
	} else {
		c.connCh = make(chan struct{})
	}
}

// publishMulti publishes on the next connected pool client, round-robin (or,
// when none is connected, through the next one's offline buffer).
func (c *Client) publishMulti(ctx context.Context, topic string, message any, opts ...CallOption) error {
	if c.current() == nil {
		return ErrNotStarted
	}
	conns := c.pool.snapshot()
	if len(conns) == 0 {
		return ErrNotConnected
	}
	n := c.pool.next.Add(1)
	target := conns[n%uint64(len(conns))]
	for i := range uint64(len(conns)) {
		if pc := conns[(n+i)%uint64(len(conns))]; pc.c.IsConnected() {
			target = pc
			break
		}
	}
	err := target.c.publish(ctx, topic, message, opts...)
	if errors.Is(err, ErrNotStarted) {
		return ErrNotConnected // removed from the pool meanwhile
	}
	return err
}

// subscribeMulti stores subs for routing and sends them on the pool clients:
// shared ones on all, the others on the primary.
func (c *Client) subscribeMulti(ctx context.Context, subs []*subscription) error {
	p := c.pool
	p.mu.Lock()
	for _, s := range subs {
		c.subs.put(s)
	}
	type target struct {
		pc   *poolConn
		subs []*subscription
	}
	var targets []target
	for _, pc := range p.conns {
		t := target{pc: pc}
		for _, s := range subs {
			if pc == p.primary || c.opts.sharedPred(s.filter) {
				t.subs = append(t.subs, s.copyForPool())
			}
		}
		if len(t.subs) > 0 {
			targets = append(targets, t)
		}
	}
	p.mu.Unlock()
	var errs []error
	for _, t := range targets {
		if err := t.pc.c.subscribeAll(ctx, t.subs); err != nil {
			errs = append(errs, err)
		}
	}
	err := errors.Join(errs...)
	// A filter a broker refused is not kept.
	for _, s := range subs {
		if err != nil && refused(err, s.filter) {
			c.subs.remove(s.filter)
		}
	}
	return err
}

// refused reports whether err holds a *ReasonCodeError for filter.
func refused(err error, filter string) bool {
	if rc, ok := err.(*ReasonCodeError); ok {
		return rc.Topic == filter
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if refused(e, filter) {
				return true
			}
		}
	}
	return false
}

// unsubscribeMulti removes topics from the store and every pool client.
func (c *Client) unsubscribeMulti(ctx context.Context, topics []string) error {
	c.subs.remove(topics...)
	var errs []error
	for _, pc := range c.pool.snapshot() {
		if err := pc.c.unsubscribe(ctx, topics...); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
