// Package otelcourier instruments a courier client with OpenTelemetry: spans
// and metrics for publish, subscribe, unsubscribe and every received message,
// as client middleware, plus a connected gauge that stays correct with several
// clients in one process.
//
//	otc, err := otelcourier.New("checkout",
//		otelcourier.WithTracerProvider(tp), otelcourier.WithMeterProvider(mp))
//	if err != nil { ... }
//	if err := otc.Instrument(c); err != nil { ... }
//
// Metrics: courier.<flow>.attempts and courier.<flow>.failures (counters) and
// courier.<flow>.latency (histogram, seconds) for flow publish, subscribe,
// unsubscribe and callback; courier.client.connected (gauge, 0 or 1 per
// client id). Topics become attributes only through WithTopicAttribute, which
// controls their cardinality. The W3C trace context travels in MQTT 5 user
// properties, so a receive span continues the publisher's trace.
package otelcourier
