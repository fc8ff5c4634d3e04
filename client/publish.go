package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"
	"github.com/eclipse/paho.golang/paho/session"
)

// Publish encodes message with the client's encoder and publishes it. QoS 0
// returns once written; QoS 1/2 return when the broker acknowledged, with a
// *ReasonCodeError (errors.Is(err, ErrNotAuthorized), ...) when it refused.
// Without a ctx deadline the write timeout applies.
//
// While disconnected, QoS 1/2 messages go to the offline buffer and Publish
// returns nil (the message is sent after the next connect); QoS 0 returns
// ErrNotConnected. An error wrapping ErrInFlight means the message was handed
// to the session and will be resent after a reconnect: do not publish it again.
func (c *Client) Publish(ctx context.Context, topic string, message any, opts ...CallOption) error {
	return c.chains.Load().pub.Publish(ctx, topic, message, opts...)
}

func (c *Client) publish(ctx context.Context, topic string, message any, opts ...CallOption) error {
	if c.pool != nil {
		return c.publishMulti(ctx, topic, message, opts...)
	}
	o := newCallOptions(opts)
	if o.qos > QOSTwo {
		return fmt.Errorf("%w: qos %d", ErrInvalidOption, o.qos)
	}
	payload, err := c.opts.encoder(ctx, message)
	if err != nil {
		return fmt.Errorf("client: publish %s: %w", topic, err)
	}
	in := c.current()
	if in == nil {
		return ErrNotStarted
	}
	pub := &paho.Publish{QoS: byte(o.qos), Retain: o.retain, Topic: topic, Payload: payload}
	if !propsEmpty(&o.props) {
		props := o.props
		pub.Properties = &props
	}
	// QoS 0 is written at once and never waits, so it needs no deadline.
	if _, ok := ctx.Deadline(); !ok && o.qos > QOSZero {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.writeTimeout)
		defer cancel()
	}
	var start time.Time
	if c.events.active() {
		start = time.Now()
	}
	if !c.connected.Load() {
		return c.publishOffline(ctx, in, pub)
	}
	c.emit(Event{Type: EventMessageSend, Topic: topic, QoS: o.qos, Size: len(payload)})
	var stop func()
	if o.qos > QOSZero {
		stop = c.watch("publish", topic)
	}
	resp, err := in.manager().Publish(ctx, pub)
	for try := 0; try < idInUseRetries && resp != nil && resp.ReasonCode == codePacketIDInUse; try++ {
		// Refused without being accepted (see codePacketIDInUse): safe to resend.
		resp, err = in.manager().Publish(ctx, pub)
	}
	if stop != nil {
		stop()
	}
	if errors.Is(err, autopaho.ConnectionDownError) || errors.Is(err, session.ErrNoConnection) {
		// The connection went down before the message reached the session.
		return c.publishOffline(ctx, in, pub)
	}
	switch {
	case resp != nil && resp.ReasonCode >= 0x80:
		err = &ReasonCodeError{Op: "publish", Topic: topic, Code: resp.ReasonCode, Reason: reasonString(resp)}
	case err != nil && errors.Is(err, paho.ErrInvalidArguments):
		err = fmt.Errorf("%w: publish %s: %w", ErrInvalidOption, topic, err)
	case err != nil && o.qos > QOSZero:
		err = fmt.Errorf("%w: publish %s: %w", ErrInFlight, topic, err)
	case err != nil:
		err = fmt.Errorf("client: publish %s: %w", topic, err)
	}
	if err != nil {
		c.emit(Event{Type: EventMessageSendFailure, Topic: topic, QoS: o.qos, Size: len(payload), Err: err, Duration: sinceNonZero(start)})
		return err
	}
	c.emit(Event{Type: EventMessageSendSuccess, Topic: topic, QoS: o.qos, Size: len(payload), Duration: sinceNonZero(start)})
	return nil
}

func (c *Client) publishOffline(ctx context.Context, in *instance, pub *paho.Publish) error {
	ev := Event{Type: EventMessageSend, Topic: pub.Topic, QoS: QOSLevel(pub.QoS), Size: len(pub.Payload), Queued: true}
	if pub.QoS == 0 || c.opts.offlineSize == 0 {
		ev.Type, ev.Err = EventMessageSendFailure, ErrNotConnected
		c.emit(ev)
		return ErrNotConnected
	}
	if err := in.manager().PublishViaQueue(ctx, &autopaho.QueuePublish{Publish: pub}); err != nil {
		ev.Type, ev.Err = EventMessageSendFailure, err
		c.emit(ev)
		return fmt.Errorf("client: publish %s: %w", pub.Topic, err)
	}
	c.emit(ev)
	return nil
}

func reasonString(r *paho.PublishResponse) string {
	if r.Properties != nil {
		return r.Properties.ReasonString
	}
	return ""
}

func propsEmpty(p *paho.PublishProperties) bool {
	return p.ContentType == "" && p.ResponseTopic == "" && p.CorrelationData == nil &&
		p.MessageExpiry == nil && len(p.User) == 0 && p.PayloadFormat == nil
}

// sinceNonZero is time.Since, or 0 when start was not taken (no event stream
// was open when the operation began).
func sinceNonZero(start time.Time) time.Duration {
	if start.IsZero() {
		return 0
	}
	return time.Since(start)
}
