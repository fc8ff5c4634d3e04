package client

import "context"

// MessageHandler handles a received message. It runs on the client's receive
// goroutine: messages are handled one at a time, in order. A handler may call
// Publish through ps but must not block for long.
type MessageHandler func(ctx context.Context, ps PubSub, msg *Message)

// Publisher publishes messages.
type Publisher interface {
	Publish(ctx context.Context, topic string, message any, opts ...CallOption) error
}

// Subscriber subscribes to topic filters.
type Subscriber interface {
	Subscribe(ctx context.Context, topic string, callback MessageHandler, opts ...CallOption) error
	SubscribeMultiple(ctx context.Context, topicsWithQos map[string]QOSLevel, callback MessageHandler) error
}

// Unsubscriber removes subscriptions.
type Unsubscriber interface {
	Unsubscribe(ctx context.Context, topics ...string) error
}

// PubSub is what handlers get to reply with.
type PubSub interface {
	Publisher
	Subscriber
	Unsubscriber
}

// PublisherFunc adapts a function to Publisher.
type PublisherFunc func(ctx context.Context, topic string, message any, opts ...CallOption) error

// Publish calls f.
func (f PublisherFunc) Publish(ctx context.Context, topic string, message any, opts ...CallOption) error {
	return f(ctx, topic, message, opts...)
}

// SubscriberFuncs adapts two functions to Subscriber.
type SubscriberFuncs struct {
	SubscribeFunc         func(ctx context.Context, topic string, callback MessageHandler, opts ...CallOption) error
	SubscribeMultipleFunc func(ctx context.Context, topicsWithQos map[string]QOSLevel, callback MessageHandler) error
}

// Subscribe calls s.SubscribeFunc.
func (s SubscriberFuncs) Subscribe(ctx context.Context, topic string, callback MessageHandler, opts ...CallOption) error {
	return s.SubscribeFunc(ctx, topic, callback, opts...)
}

// SubscribeMultiple calls s.SubscribeMultipleFunc.
func (s SubscriberFuncs) SubscribeMultiple(ctx context.Context, topicsWithQos map[string]QOSLevel, callback MessageHandler) error {
	return s.SubscribeMultipleFunc(ctx, topicsWithQos, callback)
}

// UnsubscriberFunc adapts a function to Unsubscriber.
type UnsubscriberFunc func(ctx context.Context, topics ...string) error

// Unsubscribe calls f.
func (f UnsubscriberFunc) Unsubscribe(ctx context.Context, topics ...string) error {
	return f(ctx, topics...)
}

// PublisherMiddlewareFunc wraps a Publisher.
type PublisherMiddlewareFunc func(Publisher) Publisher

// SubscriberMiddlewareFunc wraps a Subscriber.
type SubscriberMiddlewareFunc func(Subscriber) Subscriber

// UnsubscriberMiddlewareFunc wraps an Unsubscriber.
type UnsubscriberMiddlewareFunc func(Unsubscriber) Unsubscriber

// ReceiverMiddlewareFunc wraps the handling of every received message (before
// it is routed to subscription handlers and streams).
type ReceiverMiddlewareFunc func(MessageHandler) MessageHandler

type middlewares struct {
	pub   []PublisherMiddlewareFunc
	sub   []SubscriberMiddlewareFunc
	unsub []UnsubscriberMiddlewareFunc
	recv  []ReceiverMiddlewareFunc
}

type chains struct {
	pub   Publisher
	sub   Subscriber
	unsub Unsubscriber
	recv  MessageHandler
}

// build composes the chains; the first registered middleware runs outermost.
func (m *middlewares) build(c *Client) *chains {
	ch := &chains{
		pub:   PublisherFunc(c.publish),
		sub:   SubscriberFuncs{SubscribeFunc: c.subscribe, SubscribeMultipleFunc: c.subscribeMultiple},
		unsub: UnsubscriberFunc(c.unsubscribe),
		recv:  c.route,
	}
	for i := len(m.pub) - 1; i >= 0; i-- {
		ch.pub = m.pub[i](ch.pub)
	}
	for i := len(m.sub) - 1; i >= 0; i-- {
		ch.sub = m.sub[i](ch.sub)
	}
	for i := len(m.unsub) - 1; i >= 0; i-- {
		ch.unsub = m.unsub[i](ch.unsub)
	}
	for i := len(m.recv) - 1; i >= 0; i-- {
		ch.recv = m.recv[i](ch.recv)
	}
	return ch
}

// UsePublisherMiddleware adds publish middleware (first added runs outermost).
func (c *Client) UsePublisherMiddleware(mw ...PublisherMiddlewareFunc) {
	c.mwMu.Lock()
	defer c.mwMu.Unlock()
	c.mw.pub = append(c.mw.pub, mw...)
	c.chains.Store(c.mw.build(c))
}

// UseSubscriberMiddleware adds subscribe middleware (first added runs outermost).
func (c *Client) UseSubscriberMiddleware(mw ...SubscriberMiddlewareFunc) {
	c.mwMu.Lock()
	defer c.mwMu.Unlock()
	c.mw.sub = append(c.mw.sub, mw...)
	c.chains.Store(c.mw.build(c))
}

// UseUnsubscriberMiddleware adds unsubscribe middleware (first added runs outermost).
func (c *Client) UseUnsubscriberMiddleware(mw ...UnsubscriberMiddlewareFunc) {
	c.mwMu.Lock()
	defer c.mwMu.Unlock()
	c.mw.unsub = append(c.mw.unsub, mw...)
	c.chains.Store(c.mw.build(c))
}

// UseReceiverMiddleware adds receive middleware (first added runs outermost).
func (c *Client) UseReceiverMiddleware(mw ...ReceiverMiddlewareFunc) {
	c.mwMu.Lock()
	defer c.mwMu.Unlock()
	c.mw.recv = append(c.mw.recv, mw...)
	c.chains.Store(c.mw.build(c))
}
