package otelcourier_test

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/courier-mqtt/courier/broker/brokertest"
	"github.com/courier-mqtt/courier/client"
	"github.com/courier-mqtt/courier/client/otelcourier"
)

func newClient(t *testing.T, addr, id string) *client.Client {
	t.Helper()
	h, p, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(p)
	c, err := client.NewClient(client.WithAddress(h, uint16(port)), client.WithClientID(id),
		client.WithBackoff(func(int) time.Duration { return 20 * time.Millisecond }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c
}

func start(t *testing.T, c *client.Client) {
	t.Helper()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.AwaitConnection(ctx); err != nil {
		t.Fatal(err)
	}
}

func gaugeValues(t *testing.T, r *sdkmetric.ManualReader) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					id, _ := p.Attributes.Value("messaging.client.id")
					out[m.Name+"/"+id.AsString()] = p.Value
				}
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					topic, _ := p.Attributes.Value("messaging.destination.name")
					out[m.Name+"/"+topic.AsString()] += p.Value
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					out[m.Name] += int64(p.Count)
				}
			}
		}
	}
	return out
}

func TestTracesMetricsAndConnectedGauge(t *testing.T) {
	srv := brokertest.Start(t, brokertest.WithoutStore())
	spans := &notifyingRecorder{SpanRecorder: tracetest.NewSpanRecorder(), ended: make(chan string, 64)}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })

	otc, err := otelcourier.New("svc", otelcourier.WithTracerProvider(tp), otelcourier.WithMeterProvider(mp),
		otelcourier.WithTopicAttribute(func(topic string) string { first, _, _ := strings.Cut(topic, "/"); return first }))
	if err != nil {
		t.Fatal(err)
	}
	pub, sub := newClient(t, srv.TCPAddr, "otel-pub"), newClient(t, srv.TCPAddr, "otel-sub")
	for _, c := range []*client.Client{pub, sub} {
		if err := otc.Instrument(c); err != nil {
			t.Fatal(err)
		}
		start(t, c)
	}
	got := make(chan *client.Message, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sub.Subscribe(ctx, "orders/+", func(_ context.Context, _ client.PubSub, m *client.Message) { got <- m }, client.QOSOne); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(ctx, "orders/1", "x", client.QOSOne); err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("no message")
	}
	// The Receive span ends when the handler has returned.
	for name := ""; name != "Receive"; {
		select {
		case name = <-spans.ended:
		case <-time.After(10 * time.Second):
			t.Fatal("receive span never ended")
		}
	}
	if err := pub.Publish(ctx, "", "no topic", client.QOSOne); err == nil {
		t.Fatal("publish with empty topic succeeded")
	}

	byName := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range spans.Ended() {
		if _, seen := byName[s.Name()]; !seen {
			byName[s.Name()] = s
		}
	}
	p, r := byName["Publish"], byName["Receive"]
	if p == nil || r == nil || byName["Subscribe"] == nil {
		t.Fatalf("spans %v", byName)
	}
	if r.Parent().TraceID() != p.SpanContext().TraceID() {
		t.Fatal("receive span does not continue the publisher's trace")
	}

	v := gaugeValues(t, reader)
	if v["courier.publish.attempts/orders"] != 1 || v["courier.publish.failures/"] != 1 || v["courier.callback.attempts/orders"] != 1 {
		t.Fatalf("counters %v", v)
	}
	if v["courier.client.connected/otel-pub"] != 1 || v["courier.client.connected/otel-sub"] != 1 {
		t.Fatalf("gauge %v", v)
	}
	sub.Stop()
	v = gaugeValues(t, reader)
	if v["courier.client.connected/otel-pub"] != 1 || v["courier.client.connected/otel-sub"] != 0 {
		t.Fatalf("gauge after one client stopped %v", v)
	}
}

// notifyingRecorder records spans and reports each ended span's name.
type notifyingRecorder struct {
	*tracetest.SpanRecorder
	ended chan string
}

func (r *notifyingRecorder) OnEnd(s sdktrace.ReadOnlySpan) {
	r.SpanRecorder.OnEnd(s)
	select {
	case r.ended <- s.Name():
	default:
	}
}
