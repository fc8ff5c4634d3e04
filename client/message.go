package client

import (
	"context"
	"sync"
	"time"

	"github.com/eclipse/paho.golang/paho"
)

// QOSLevel is an MQTT quality of service; it is also a per-call option.
type QOSLevel uint8

const (
	// QOSZero is at most once.
	QOSZero QOSLevel = iota
	// QOSOne is at least once.
	QOSOne
	// QOSTwo is exactly once.
	QOSTwo
)

func (q QOSLevel) apply(o *callOptions) { o.qos = q }

// CallOption changes one Publish or Subscribe call.
type CallOption interface{ apply(*callOptions) }

type callOptionFunc func(*callOptions)

func (f callOptionFunc) apply(o *callOptions) { f(o) }

type callOptions struct {
	qos     QOSLevel
	retain  bool
	props   paho.PublishProperties
	noLocal bool
}

func newCallOptions(opts []CallOption) callOptions {
	var o callOptions
	for _, op := range opts {
		switch v := op.(type) {
		case QOSLevel: // the common case, without an interface call
			o.qos = v
		case nil:
		default:
			v.apply(&o)
		}
	}
	return o
}

// Retained sets the retain flag of a PUBLISH.
func Retained(on bool) CallOption { return callOptionFunc(func(o *callOptions) { o.retain = on }) }

// MessageExpiry sets the MQTT 5 message expiry interval (whole seconds).
func MessageExpiry(d time.Duration) CallOption {
	return callOptionFunc(func(o *callOptions) {
		s := uint32(d / time.Second)
		o.props.MessageExpiry = &s
	})
}

// ContentType sets the MQTT 5 content type.
func ContentType(ct string) CallOption {
	return callOptionFunc(func(o *callOptions) { o.props.ContentType = ct })
}

// ResponseTopic sets the MQTT 5 response topic (request/response).
func ResponseTopic(t string) CallOption {
	return callOptionFunc(func(o *callOptions) { o.props.ResponseTopic = t })
}

// CorrelationData sets the MQTT 5 correlation data.
func CorrelationData(b []byte) CallOption {
	return callOptionFunc(func(o *callOptions) { o.props.CorrelationData = append([]byte(nil), b...) })
}

// UserProperty adds an MQTT 5 user property (may be given several times).
func UserProperty(key, value string) CallOption {
	return callOptionFunc(func(o *callOptions) { o.props.User = append(o.props.User, paho.UserProperty{Key: key, Value: value}) })
}

// NoLocal asks the broker not to deliver the client's own publications on a
// subscription (MQTT 5).
func NoLocal(on bool) CallOption { return callOptionFunc(func(o *callOptions) { o.noLocal = on }) }

// Properties are the MQTT 5 properties of a received message.
type Properties struct {
	ContentType     string
	ResponseTopic   string
	CorrelationData []byte
	MessageExpiry   *time.Duration
	PayloadFormat   *byte
	User            map[string][]string
}

// Message is a received PUBLISH.
type Message struct {
	ID         uint16
	Topic      string
	QoS        QOSLevel
	Retained   bool
	Duplicate  bool
	Properties Properties

	payload []byte
	decode  DecoderFunc
	ctx     context.Context
	ack     func() error
	ackOnce sync.Once
	ackErr  error
}

// NewMessage builds a Message, for tests of handlers and middleware.
func NewMessage(topic string, payload []byte, qos QOSLevel) *Message {
	return &Message{Topic: topic, QoS: qos, payload: payload, decode: DefaultDecoder, ctx: context.Background()}
}

// Payload returns the raw payload (do not modify it).
func (m *Message) Payload() []byte { return m.payload }

// DecodePayload decodes the payload into v with the client's decoder.
func (m *Message) DecodePayload(v any) error { return m.decode(m.ctx, m.payload, v) }

// Ack acknowledges a QoS 1/2 message with WithManualAck; otherwise it does
// nothing. Calling it more than once is harmless.
func (m *Message) Ack() error {
	if m.ack == nil {
		return nil
	}
	m.ackOnce.Do(func() { m.ackErr = m.ack() })
	return m.ackErr
}

func messageFromPublish(ctx context.Context, p *paho.Publish, dec DecoderFunc) *Message {
	m := &Message{
		ID:        p.PacketID,
		Topic:     p.Topic,
		QoS:       QOSLevel(p.QoS),
		Retained:  p.Retain,
		Duplicate: p.Duplicate(),
		payload:   p.Payload,
		decode:    dec,
		ctx:       ctx,
	}
	if pp := p.Properties; pp != nil {
		m.Properties = Properties{
			ContentType:     pp.ContentType,
			ResponseTopic:   pp.ResponseTopic,
			CorrelationData: pp.CorrelationData,
			PayloadFormat:   pp.PayloadFormat,
		}
		if pp.MessageExpiry != nil {
			d := time.Duration(*pp.MessageExpiry) * time.Second
			m.Properties.MessageExpiry = &d
		}
		if len(pp.User) > 0 {
			m.Properties.User = make(map[string][]string, len(pp.User))
			for _, u := range pp.User {
				m.Properties.User[u.Key] = append(m.Properties.User[u.Key], u.Value)
			}
		}
	}
	return m
}
