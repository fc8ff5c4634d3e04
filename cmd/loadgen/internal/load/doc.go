// Package load runs loadgen's scenarios against an MQTT broker and accounts
// for every connection and message.
//
// Scenarios: "conn" ramps N connections at a rate, holds them with keepalive
// (optionally churning a share of them per minute); "pubsub" runs P publishers
// to S subscribers (fan-in, fan-out, 1->1 or pairs) at a QoS, payload size and
// rate, counting loss, duplicates and reordering per (publisher, sequence)
// carried in each payload; "storm" connects N clients, lets the broker go away
// (an outage function runs, or loadgen waits for it) and times until all are
// back. Latencies go to HDR histograms; when a scenario is rate-paced they are
// measured from the intended send time, which corrects for coordinated
// omission. Every scenario stops by itself at its count or duration.
//
//	cfg := load.DefaultConfig()
//	cfg.Scenario, cfg.Broker = load.PubSub, "tcp://127.0.0.1:1883"
//	res, err := load.Run(ctx, cfg)
package load
