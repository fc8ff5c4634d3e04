package client_test

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/courier-mqtt/courier/broker"
	"github.com/courier-mqtt/courier/client"
)

// exampleBroker starts an in-process broker on 127.0.0.1:0 for the examples.
func exampleBroker() (b *broker.Broker, host string, port uint16, stop func()) {
	cfg := broker.DefaultConfig()
	cfg.Listeners = []broker.ListenerConfig{{Name: "tcp", Type: broker.ListenerTCP, Addr: "127.0.0.1:0"}}
	cfg.Ops.Addr = ""
	b, err := broker.New(cfg)
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	if err := b.Start(ctx); err != nil {
		panic(err)
	}
	h, p, _ := net.SplitHostPort(b.Addr("tcp"))
	n, _ := strconv.Atoi(p)
	return b, h, uint16(n), func() {
		_ = b.Shutdown(ctx)
		cancel()
	}
}

// The getting-started flow of courier-go: connect with a user name and
// password, publish {"time": <unix nanos>} at QoS 1 on a tick, stop.
func Example() {
	_, host, port, stopBroker := exampleBroker()
	defer stopBroker()

	c, err := client.NewClient(
		client.WithUsername("username"),
		client.WithPassword("password"),
		client.WithTCPAddress(host, port),
	)
	if err != nil {
		panic(err)
	}
	if err := c.Start(); err != nil {
		panic(err)
	}

	tick := time.NewTicker(10 * time.Millisecond)
	for range 3 {
		t := <-tick.C
		msg := map[string]interface{}{
			"time": t.UnixNano(),
		}
		if err := c.Publish(context.Background(), "topic", msg, client.QOSOne); err != nil {
			fmt.Printf("Publish() error = %s\n", err)
		} else {
			fmt.Println("Publish() success")
		}
	}
	tick.Stop()
	c.Stop()
	// Output:
	// Publish() success
	// Publish() success
	// Publish() success
}

// Subscribe with a wildcard filter, publish a JSON object and decode it in the
// handler; handlers registered before Start never miss a message delivered at
// connect.
func ExampleClient_Subscribe() {
	_, host, port, stopBroker := exampleBroker()
	defer stopBroker()

	c, err := client.NewClient(client.WithTCPAddress(host, port), client.WithClientID("example"))
	if err != nil {
		panic(err)
	}
	got := make(chan string, 1)
	err = c.Subscribe(context.Background(), "sensors/+/value", func(ctx context.Context, ps client.PubSub, m *client.Message) {
		var v struct {
			Value int `json:"value"`
		}
		if err := m.DecodePayload(&v); err != nil {
			got <- err.Error()
			return
		}
		got <- fmt.Sprintf("%s: %d (qos %d)", m.Topic, v.Value, m.QoS)
	}, client.QOSOne)
	if err != nil {
		panic(err)
	}
	events := c.Events(16)
	defer events.Close()
	if err := c.Start(); err != nil {
		panic(err)
	}
	defer c.Stop()
	for e := range events.C {
		if e.Type == client.EventSubscribeSuccess {
			fmt.Println(e.Type, e.Topic)
			break
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Publish(ctx, "sensors/kitchen/value", map[string]int{"value": 42}, client.QOSOne); err != nil {
		panic(err)
	}
	fmt.Println(<-got)
	// Output:
	// MqttSubscribeSuccess sensors/+/value
	// sensors/kitchen/value: 42 (qos 1)
}

// Streams are wildcard-aware and may be opened before Start; Messages is the
// global stream.
func ExampleClient_Stream() {
	_, host, port, stopBroker := exampleBroker()
	defer stopBroker()

	c, err := client.NewClient(client.WithTCPAddress(host, port), client.WithClientID("streams"))
	if err != nil {
		panic(err)
	}
	temps := c.Stream("sensors/+/temp", 8)
	defer temps.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Start(); err != nil {
		panic(err)
	}
	defer c.Stop()
	if err := c.AwaitConnection(ctx); err != nil {
		panic(err)
	}
	// Connected, so Subscribe waits for the SUBACK. A nil handler: messages
	// go to streams only.
	if err := c.Subscribe(ctx, "sensors/#", nil, client.QOSOne); err != nil {
		panic(err)
	}
	for _, topic := range []string{"sensors/a/humidity", "sensors/b/temp"} {
		if err := c.Publish(ctx, topic, "21.5", client.QOSOne); err != nil {
			panic(err)
		}
	}
	m := <-temps.C
	fmt.Println(m.Topic, string(m.Payload()))
	// Output:
	// sensors/b/temp 21.5
}
