// Package broker is an embeddable MQTT broker speaking MQTT 3.1, 3.1.1 and 5
// over TCP, TLS, WebSocket and unix sockets, built on mochi-mqtt/server with
// fixes for its known defects.
//
// A Config holds everything that can come from a file or flags; Options
// supply what only code can (a logger, extra hooks, an auth hook):
//
//	cfg := broker.DefaultConfig()
//	cfg.Listeners = []broker.ListenerConfig{{Name: "tcp", Type: broker.ListenerTCP, Addr: "127.0.0.1:1883"}}
//	b, err := broker.New(cfg, broker.WithLogger(logger))
//	if err != nil { ... }                    // every config problem, joined
//	if err := b.Start(ctx); err != nil { ... } // returns once listeners are bound
//	defer b.Shutdown(context.Background())    // idempotent, ordered, bounded by ctx
//
// Observe returns a non-blocking stream of events (connections, disconnects,
// subscriptions, drops, expiries, auth denials) for tests and operators; a
// slow observer loses events and the loss is counted, never slowing the
// broker. The ops listener serves /healthz, /readyz and Prometheus /metrics.
//
// For tests, package brokertest starts a real broker on 127.0.0.1:0.
package broker
