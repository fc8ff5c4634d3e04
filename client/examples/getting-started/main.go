// Command getting-started is courier-go's getting-started program, unchanged
// except for the import: it connects with a user name and password, publishes
// {"time": <unix nanos>} at QoS 1 every second and stops the client on
// interrupt. Run a broker on localhost:1883 first (cmd/broker).
//
// As upstream, the loop keeps running after the interrupt (it never returns);
// press Ctrl-C to stop the client, then end the process with SIGTERM or Ctrl-\.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"time"

	courier "github.com/courier-mqtt/courier/client"
)

func main() {
	c, err := courier.NewClient(
		courier.WithUsername("username"),
		courier.WithPassword("password"),
		courier.WithTCPAddress("localhost", 1883),
	)

	if err != nil {
		panic(err)
	}

	if err := c.Start(); err != nil {
		panic(err)
	}

	ctx, _ := signal.NotifyContext(context.Background(), os.Interrupt, os.Kill)

	tick := time.NewTicker(time.Second)
	for {
		select {
		case t := <-tick.C:
			msg := map[string]interface{}{
				"time": t.UnixNano(),
			}
			if err := c.Publish(context.Background(), "topic", msg, courier.QOSOne); err != nil {
				fmt.Printf("Publish() error = %s\n", err)
			} else {
				fmt.Println("Publish() success")
			}
		case <-ctx.Done():
			tick.Stop()
			c.Stop()
		}
	}
}
