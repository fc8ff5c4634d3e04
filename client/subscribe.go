package client

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"
)

type subscription struct {
	filter  string
	qos     QOSLevel
	noLocal bool
	handler MessageHandler
	// sentOn is the connection generation this subscription was last sent on,
	// so the resubscribe after a connect skips what Subscribe already sent.
	sentOn atomic.Uint64
}

// subStore is the client's subscription store: every reconnect resubscribes
// from it, and received messages are routed by it.
type subStore struct {
	mu   sync.RWMutex
	subs map[string]*subscription
}

func newSubStore() *subStore { return &subStore{subs: map[string]*subscription{}} }

func (s *subStore) put(sub *subscription) {
	s.mu.Lock()
	s.subs[sub.filter] = sub
	s.mu.Unlock()
}

func (s *subStore) remove(filters ...string) {
	s.mu.Lock()
	for _, f := range filters {
		delete(s.subs, f)
	}
	s.mu.Unlock()
}

func (s *subStore) clear() {
	s.mu.Lock()
	clear(s.subs)
	s.mu.Unlock()
}

func (s *subStore) all() []*subscription {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := slices.Collect(maps.Values(s.subs))
	slices.SortFunc(out, func(a, b *subscription) int { return strings.Compare(a.filter, b.filter) })
	return out
}

func (s *subStore) matching(topic string) []*subscription {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*subscription
	for _, sub := range s.subs {
		if MatchTopic(sub.filter, topic) {
			out = append(out, sub)
		}
	}
	return out
}

// MatchTopic reports whether topic matches the filter, honouring + and #
// wildcards and $share/<group>/ prefixes. [MQTT-4.7.1-2] [MQTT-4.7.2-1]
func MatchTopic(filter, topic string) bool {
	if rest, ok := strings.CutPrefix(filter, "$share/"); ok {
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			filter = rest[i+1:]
		}
	}
	// Topics starting with $ do not match filters starting with a wildcard. [MQTT-4.7.2-1]
	if strings.HasPrefix(topic, "$") && (strings.HasPrefix(filter, "+") || strings.HasPrefix(filter, "#")) {
		return false
	}
	for {
		fl, frest, fmore := strings.Cut(filter, "/")
		tl, trest, tmore := strings.Cut(topic, "/")
		switch fl {
		case "#":
			return true
		case "+":
		default:
			if fl != tl {
				return false
			}
		}
		if !fmore || !tmore {
			// "a/#" also matches "a". [MQTT-4.7.1-2]
			return fmore == tmore || (fmore && frest == "#")
		}
		filter, topic = frest, trest
	}
}

// Subscribe subscribes to a topic filter (wildcards allowed) at the QoS given
// as an option (QOSZero by default). The subscription is kept in the client's
// store and renewed on every reconnect; before Start or while disconnected it
// is only stored and Subscribe returns nil. A refusal by the broker is a
// *ReasonCodeError and the subscription is not stored.
func (c *Client) Subscribe(ctx context.Context, topic string, callback MessageHandler, opts ...CallOption) error {
	return c.chains.Load().sub.Subscribe(ctx, topic, callback, opts...)
}

// SubscribeMultiple subscribes to several filters with one handler.
func (c *Client) SubscribeMultiple(ctx context.Context, topicsWithQos map[string]QOSLevel, callback MessageHandler) error {
	return c.chains.Load().sub.SubscribeMultiple(ctx, topicsWithQos, callback)
}

// Unsubscribe removes subscriptions from the store and the broker.
func (c *Client) Unsubscribe(ctx context.Context, topics ...string) error {
	return c.chains.Load().unsub.Unsubscribe(ctx, topics...)
}

func (c *Client) subscribe(ctx context.Context, topic string, callback MessageHandler, opts ...CallOption) error {
	o := newCallOptions(opts)
	return c.subscribeAll(ctx, []*subscription{{filter: topic, qos: o.qos, noLocal: o.noLocal, handler: callback}})
}

func (c *Client) subscribeMultiple(ctx context.Context, topicsWithQos map[string]QOSLevel, callback MessageHandler) error {
	subs := make([]*subscription, 0, len(topicsWithQos))
	for t, q := range topicsWithQos {
		subs = append(subs, &subscription{filter: t, qos: q, handler: callback})
	}
	slices.SortFunc(subs, func(a, b *subscription) int { return strings.Compare(a.filter, b.filter) })
	return c.subscribeAll(ctx, subs)
}

func (c *Client) subscribeAll(ctx context.Context, subs []*subscription) error {
	if len(subs) == 0 {
		return fmt.Errorf("%w: no topics", ErrInvalidOption)
	}
	for _, s := range subs {
		if s.filter == "" || s.qos > QOSTwo {
			return fmt.Errorf("%w: subscription %q qos %d", ErrInvalidOption, s.filter, s.qos)
		}
	}
	if c.pool != nil {
		return c.subscribeMulti(ctx, subs)
	}
	in := c.current()
	connected := in != nil && c.connected.Load()
	gen := c.connGen.Load()
	for _, s := range subs {
		if connected {
			// Sent below on this connection: the resubscribe must not send it too.
			s.sentOn.Store(gen)
		}
		c.subs.put(s)
	}
	if !connected {
		return nil
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.writeTimeout)
		defer cancel()
	}
	err := c.sendSubscribe(ctx, in, subs, false)
	if errors.Is(err, autopaho.ConnectionDownError) {
		return nil // stored; sent on the next connect
	}
	return err
}

// sendSubscribe sends one SUBSCRIBE for subs; refused filters are removed
// from the store.
func (c *Client) sendSubscribe(ctx context.Context, in *instance, subs []*subscription, renew bool) error {
	filters := make([]string, len(subs))
	req := &paho.Subscribe{Subscriptions: make([]paho.SubscribeOptions, len(subs))}
	for i, s := range subs {
		filters[i] = s.filter
		req.Subscriptions[i] = paho.SubscribeOptions{Topic: s.filter, QoS: byte(s.qos), NoLocal: s.noLocal}
		if renew {
			// Renewing must not replay retained messages the handler already saw.
			req.Subscriptions[i].RetainHandling = 1
		}
	}
	topic := strings.Join(filters, ",")
	c.emit(Event{Type: EventSubscribeAttempt, Topic: topic})
	start := time.Now()
	var ack *paho.Suback
	var err error
	for try := 0; ; try++ {
		stop := c.watch("subscribe", topic)
		ack, err = in.manager().Subscribe(ctx, req)
		stop()
		if try >= idInUseRetries || ack == nil || !allCodes(ack.Reasons, codePacketIDInUse) {
			break
		}
	}
	if ack == nil {
		c.emit(Event{Type: EventSubscribeFailure, Topic: topic, Err: err, Duration: time.Since(start)})
		return fmt.Errorf("client: subscribe %s: %w", topic, err)
	}
	var errs []error
	for i, code := range ack.Reasons {
		if i >= len(subs) || code < 0x80 {
			continue
		}
		c.subs.remove(subs[i].filter)
		reason := ""
		if ack.Properties != nil {
			reason = ack.Properties.ReasonString
		}
		errs = append(errs, &ReasonCodeError{Op: "subscribe", Topic: subs[i].filter, Code: code, Reason: reason})
	}
	if err := errors.Join(errs...); err != nil {
		c.emit(Event{Type: EventSubscribeFailure, Topic: topic, Err: err, Duration: time.Since(start)})
		return err
	}
	c.emit(Event{Type: EventSubscribeSuccess, Topic: topic, Duration: time.Since(start)})
	return nil
}

func (c *Client) resubscribe(in *instance) {
	gen := c.connGen.Load()
	var subs []*subscription
	for _, s := range c.subs.all() {
		// Claim it for this connection; a concurrent Subscribe may have sent it already.
		if old := s.sentOn.Load(); old != gen && s.sentOn.CompareAndSwap(old, gen) {
			subs = append(subs, s)
		}
	}
	const batch = 64
	for len(subs) > 0 {
		n := min(batch, len(subs))
		ctx, cancel := context.WithTimeout(in.ctx, c.opts.writeTimeout)
		err := c.sendSubscribe(ctx, in, subs[:n], true)
		cancel()
		if err != nil {
			c.log.Warn("resubscribe failed", "err", err)
			if in.ctx.Err() != nil || errors.Is(err, autopaho.ConnectionDownError) {
				return
			}
		}
		subs = subs[n:]
	}
}

func (c *Client) unsubscribe(ctx context.Context, topics ...string) error {
	if len(topics) == 0 {
		return fmt.Errorf("%w: no topics", ErrInvalidOption)
	}
	if c.pool != nil {
		return c.unsubscribeMulti(ctx, topics)
	}
	c.subs.remove(topics...)
	in := c.current()
	if in == nil || !c.connected.Load() {
		return nil
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.writeTimeout)
		defer cancel()
	}
	topic := strings.Join(topics, ",")
	c.emit(Event{Type: EventUnsubscribeAttempt, Topic: topic})
	start := time.Now()
	var ack *paho.Unsuback
	var err error
	for try := 0; ; try++ {
		stop := c.watch("unsubscribe", topic)
		ack, err = in.manager().Unsubscribe(ctx, &paho.Unsubscribe{Topics: topics})
		stop()
		if try >= idInUseRetries || ack == nil || !allCodes(ack.Reasons, codePacketIDInUse) {
			break
		}
	}
	if errors.Is(err, autopaho.ConnectionDownError) {
		return nil // the broker session still has them; a clean session will not
	}
	if ack == nil {
		c.emit(Event{Type: EventUnsubscribeFailure, Topic: topic, Err: err, Duration: time.Since(start)})
		return fmt.Errorf("client: unsubscribe %s: %w", topic, err)
	}
	var errs []error
	for i, code := range ack.Reasons {
		// 0x11 "no subscription existed" is a success code.
		if i < len(topics) && code >= 0x80 {
			errs = append(errs, &ReasonCodeError{Op: "unsubscribe", Topic: topics[i], Code: code})
		}
	}
	if err := errors.Join(errs...); err != nil {
		c.emit(Event{Type: EventUnsubscribeFailure, Topic: topic, Err: err, Duration: time.Since(start)})
		return err
	}
	c.emit(Event{Type: EventUnsubscribeSuccess, Topic: topic, Duration: time.Since(start)})
	return nil
}

// onPublishReceived is the only paho receive callback (set in ClientConfig, so
// it survives reconnects).
func (c *Client) onPublishReceived(in *instance, pr paho.PublishReceived) (bool, error) {
	msg := messageFromPublish(in.ctx, pr.Packet, c.opts.decoder)
	if c.opts.manualAck && pr.Packet.QoS > 0 {
		cli, pkt, sess := pr.Client, pr.Packet, in.session
		msg.ack = func() error {
			err := cli.Ack(pkt)
			if errors.Is(err, paho.ErrPacketNotFound) {
				// paho resets its ack tracker after starting the receive loop,
				// so a message redelivered right after CONNACK can be missing
				// from it; acknowledge it through the session directly.
				return sess.Ack(pkt.Packet())
			}
			return err
		}
	}
	c.emit(Event{Type: EventMessageReceive, Topic: msg.Topic, QoS: msg.QoS, Size: len(msg.payload)})
	owner := c
	if c.parent != nil {
		// A per-address client of a multi-connection client: the parent's
		// middleware, handlers and streams get the message.
		owner = c.parent
	}
	owner.chains.Load().recv(in.ctx, owner, msg)
	return true, nil
}

// route delivers a message to every matching subscription handler and stream.
func (c *Client) route(ctx context.Context, ps PubSub, msg *Message) {
	matched := false
	for _, s := range c.subs.matching(msg.Topic) {
		if s.handler != nil {
			matched = true
			c.callHandler(ctx, ps, s.handler, msg)
		}
	}
	if c.streams.deliver(msg, matched) {
		matched = true
	}
	if !matched {
		c.emit(Event{Type: EventMessageReceiveError, Topic: msg.Topic, QoS: msg.QoS, Size: len(msg.payload), Err: ErrNoHandler})
	}
}

func (c *Client) callHandler(ctx context.Context, ps PubSub, h MessageHandler, msg *Message) {
	defer func() {
		if r := recover(); r != nil {
			c.emit(Event{Type: EventMessageReceiveError, Topic: msg.Topic, Err: fmt.Errorf("client: handler panic: %v", r)})
		}
	}()
	h(ctx, ps, msg)
}

// codePacketIDInUse is reason code 0x91. mochi answers it when a client's
// packet identifier equals one of the broker's own in-flight identifiers
// towards that client, although the two directions are separate
// namespaces [MQTT-2.2.1-4]. Nothing was done, so the request is sent again
// (with the next identifier) up to idInUseRetries times.
const (
	codePacketIDInUse = 0x91
	idInUseRetries    = 3
)

func allCodes(codes []byte, code byte) bool {
	if len(codes) == 0 {
		return false
	}
	for _, c := range codes {
		if c != code {
			return false
		}
	}
	return true
}
