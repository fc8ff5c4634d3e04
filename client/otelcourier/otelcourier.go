package otelcourier

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/courier-mqtt/courier/client"
)

const scope = "github.com/courier-mqtt/courier/client/otelcourier"

// Option configures New.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	tp        trace.TracerProvider
	mp        metric.MeterProvider
	prop      propagation.TextMapPropagator
	topicAttr func(topic string) string
}

// WithTracerProvider sets the tracer provider (default: the global one).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(c *config) { c.tp = tp })
}

// WithMeterProvider sets the meter provider (default: the global one).
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) { c.mp = mp })
}

// WithPropagator sets the propagator carried in user properties (default W3C
// trace context and baggage).
func WithPropagator(p propagation.TextMapPropagator) Option {
	return optionFunc(func(c *config) { c.prop = p })
}

// WithTopicAttribute adds a messaging.destination.name attribute to spans and
// metrics with the value f(topic); return "" to omit it. Map topics to a small
// set of values (e.g. the first level) to bound metric cardinality. By default
// metrics carry no topic, spans carry the full topic.
func WithTopicAttribute(f func(topic string) string) Option {
	return optionFunc(func(c *config) { c.topicAttr = f })
}

// OTel holds the instruments; one OTel may instrument many clients.
type OTel struct {
	service string
	cfg     config
	tracer  trace.Tracer
	flows   map[string]*flow
	gauge   metric.Int64ObservableGauge
	mu      sync.Mutex
	clients map[*client.Client]struct{}
}

type flow struct {
	attempts, failures metric.Int64Counter
	latency            metric.Float64Histogram
}

// New creates the instruments for service.
func New(service string, opts ...Option) (*OTel, error) {
	cfg := config{tp: otel.GetTracerProvider(), mp: otel.GetMeterProvider(),
		prop: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})}
	for _, o := range opts {
		o.apply(&cfg)
	}
	o := &OTel{service: service, cfg: cfg, tracer: cfg.tp.Tracer(scope), flows: map[string]*flow{}, clients: map[*client.Client]struct{}{}}
	meter := cfg.mp.Meter(scope)
	for _, name := range []string{"publish", "subscribe", "unsubscribe", "callback"} {
		var f flow
		var err error
		if f.attempts, err = meter.Int64Counter("courier."+name+".attempts", metric.WithDescription(name+" attempts")); err != nil {
			return nil, fmt.Errorf("otelcourier: %w", err)
		}
		if f.failures, err = meter.Int64Counter("courier."+name+".failures", metric.WithDescription(name+" failures")); err != nil {
			return nil, fmt.Errorf("otelcourier: %w", err)
		}
		if f.latency, err = meter.Float64Histogram("courier."+name+".latency", metric.WithUnit("s"), metric.WithDescription(name+" latency")); err != nil {
			return nil, fmt.Errorf("otelcourier: %w", err)
		}
		o.flows[name] = &f
	}
	g, err := meter.Int64ObservableGauge("courier.client.connected", metric.WithDescription("1 while the client is connected, per client id"))
	if err != nil {
		return nil, fmt.Errorf("otelcourier: %w", err)
	}
	o.gauge = g
	if _, err := meter.RegisterCallback(o.observe, g); err != nil {
		return nil, fmt.Errorf("otelcourier: %w", err)
	}
	return o, nil
}

func (o *OTel) observe(_ context.Context, obs metric.Observer) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	for c := range o.clients {
		v := int64(0)
		if c.IsConnected() {
			v = 1
		}
		obs.ObserveInt64(o.gauge, v, metric.WithAttributes(
			attribute.String("service.name", o.service),
			attribute.String("messaging.client.id", c.Info().ClientID)))
	}
	return nil
}

// Instrument adds the middleware to c and includes it in the connected gauge.
func (o *OTel) Instrument(c *client.Client) error {
	if c == nil {
		return ErrNilClient
	}
	o.mu.Lock()
	o.clients[c] = struct{}{}
	o.mu.Unlock()
	c.UsePublisherMiddleware(o.publisher)
	c.UseSubscriberMiddleware(o.subscriber)
	c.UseUnsubscriberMiddleware(o.unsubscriber)
	c.UseReceiverMiddleware(o.receiver)
	return nil
}

// Forget removes c from the connected gauge (its middleware stays).
func (o *OTel) Forget(c *client.Client) {
	o.mu.Lock()
	delete(o.clients, c)
	o.mu.Unlock()
}

func (o *OTel) metricAttrs(topic string) metric.MeasurementOption {
	attrs := []attribute.KeyValue{attribute.String("service.name", o.service)}
	if o.cfg.topicAttr != nil {
		if v := o.cfg.topicAttr(topic); v != "" {
			attrs = append(attrs, attribute.String("messaging.destination.name", v))
		}
	}
	return metric.WithAttributes(attrs...)
}

// record runs fn as one flow: span, attempt, latency, failure.
func (o *OTel) record(ctx context.Context, name, spanName string, kind trace.SpanKind, topic string, attrs []attribute.KeyValue, fn func(context.Context) error) error {
	f := o.flows[name]
	spanAttrs := append([]attribute.KeyValue{attribute.String("messaging.system", "mqtt"), attribute.String("messaging.destination.name", topic)}, attrs...)
	ctx, span := o.tracer.Start(ctx, spanName, trace.WithSpanKind(kind), trace.WithAttributes(spanAttrs...))
	defer span.End()
	mattrs := o.metricAttrs(topic)
	f.attempts.Add(ctx, 1, mattrs)
	start := time.Now()
	err := fn(ctx)
	f.latency.Record(ctx, time.Since(start).Seconds(), mattrs)
	if err != nil {
		f.failures.Add(ctx, 1, mattrs)
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	return err
}

// userPropCarrier injects into publish user properties.
type userPropCarrier struct{ opts *[]client.CallOption }

func (u userPropCarrier) Get(string) string { return "" }
func (u userPropCarrier) Keys() []string    { return nil }
func (u userPropCarrier) Set(k, v string)   { *u.opts = append(*u.opts, client.UserProperty(k, v)) }

// messageCarrier extracts from a received message's user properties.
type messageCarrier struct{ m *client.Message }

func (c messageCarrier) Get(k string) string {
	if v := c.m.Properties.User[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (c messageCarrier) Keys() []string {
	keys := make([]string, 0, len(c.m.Properties.User))
	for k := range c.m.Properties.User {
		keys = append(keys, k)
	}
	return keys
}

func (c messageCarrier) Set(string, string) {}

func (o *OTel) publisher(next client.Publisher) client.Publisher {
	return client.PublisherFunc(func(ctx context.Context, topic string, msg any, opts ...client.CallOption) error {
		return o.record(ctx, "publish", "Publish", trace.SpanKindProducer, topic, nil, func(ctx context.Context) error {
			all := append([]client.CallOption(nil), opts...)
			o.cfg.prop.Inject(ctx, userPropCarrier{&all})
			return next.Publish(ctx, topic, msg, all...)
		})
	})
}

func (o *OTel) subscriber(next client.Subscriber) client.Subscriber {
	return client.SubscriberFuncs{
		SubscribeFunc: func(ctx context.Context, topic string, cb client.MessageHandler, opts ...client.CallOption) error {
			return o.record(ctx, "subscribe", "Subscribe", trace.SpanKindClient, topic, nil, func(ctx context.Context) error {
				return next.Subscribe(ctx, topic, cb, opts...)
			})
		},
		SubscribeMultipleFunc: func(ctx context.Context, topics map[string]client.QOSLevel, cb client.MessageHandler) error {
			return o.record(ctx, "subscribe", "Subscribe", trace.SpanKindClient, "", []attribute.KeyValue{attribute.Int("messaging.batch.message_count", len(topics))}, func(ctx context.Context) error {
				return next.SubscribeMultiple(ctx, topics, cb)
			})
		},
	}
}

func (o *OTel) unsubscriber(next client.Unsubscriber) client.Unsubscriber {
	return client.UnsubscriberFunc(func(ctx context.Context, topics ...string) error {
		topic := ""
		if len(topics) == 1 {
			topic = topics[0]
		}
		return o.record(ctx, "unsubscribe", "Unsubscribe", trace.SpanKindClient, topic, nil, func(ctx context.Context) error {
			return next.Unsubscribe(ctx, topics...)
		})
	})
}

func (o *OTel) receiver(next client.MessageHandler) client.MessageHandler {
	return func(ctx context.Context, ps client.PubSub, m *client.Message) {
		ctx = o.cfg.prop.Extract(ctx, messageCarrier{m})
		_ = o.record(ctx, "callback", "Receive", trace.SpanKindConsumer, m.Topic,
			[]attribute.KeyValue{attribute.Int("messaging.mqtt.qos", int(m.QoS))},
			func(ctx context.Context) error {
				next(ctx, ps, m)
				return nil
			})
	}
}
