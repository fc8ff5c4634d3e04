// Package client is the Courier MQTT client for Go: courier-go's API on
// eclipse/paho.golang's autopaho, speaking MQTT 5.
//
// It keeps a long-running connection: reconnects with full-jitter backoff
// (1 s to 30 s), resubscribes from its own subscription store on every
// connect, buffers QoS 1/2 messages while offline (bounded, with a drop
// policy) and, with WithPersistence, keeps unacknowledged messages on disk
// across restarts. Credentials can come from a CredentialFetcher or a Courier
// token API (cached until the broker rejects them, single-flighted). An ack
// watchdog (WithAckTimeout) declares a silent connection dead. Every step is
// visible as a typed event (Events) named as in the Courier mobile clients.
//
//	c, err := client.NewClient(
//		client.WithAddress("localhost", 1883),
//		client.WithUsername("user"),
//		client.WithPassword("secret"),
//	)
//	if err != nil { ... }
//	if err := c.Start(); err != nil { ... }
//	defer c.Stop()
//	err = c.Subscribe(ctx, "orders/+", func(ctx context.Context, ps client.PubSub, m *client.Message) {
//		var o Order
//		_ = m.DecodePayload(&o)
//	}, client.QOSOne)
//	err = c.Publish(ctx, "orders/42", order, client.QOSOne, client.Retained(false))
//
// Publish, Subscribe and Unsubscribe go through middleware chains
// (UsePublisherMiddleware, ...), and received messages through
// UseReceiverMiddleware before they reach handlers and streams. A Client is
// safe for concurrent use. Handlers run one at a time on the receive
// goroutine and must not block for long.
//
// With WithResolver and UseMultiConnectionMode the client keeps one
// connection per resolved broker address (capped by WithPoolSize): publishes
// go round-robin over the connected ones, shared subscriptions
// (SharedSubscriptionPredicate, default the $share/ prefix) are made on every
// connection and the others on the first, and connections follow the
// resolver's list. Events carry the connection's address in Conn.Address.
//
// Subpackage otelcourier adds OpenTelemetry tracing and metrics as
// middleware; examples/getting-started is courier-go's getting-started
// program running on this package.
package client
