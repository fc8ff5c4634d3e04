package broker_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"time"

	"github.com/courier-mqtt/courier/broker"
)

// Embed a broker, connect a client to it, and shut it down.
func Example() {
	cfg := broker.DefaultConfig()
	cfg.Listeners = []broker.ListenerConfig{{Name: "tcp", Type: broker.ListenerTCP, Addr: "127.0.0.1:0"}}
	cfg.Ops.Addr = "" // no ops listener

	b, err := broker.New(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	defer b.Shutdown(ctx)

	events := b.Observe(8, broker.EventClientConnected)

	// Any MQTT client works; here, a bare MQTT 3.1.1 CONNECT.
	conn, err := net.Dial("tcp", b.Addr("tcp"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	conn.Write([]byte{0x10, 13, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 30, 0, 1, 'x'})
	connack := make([]byte, 4)
	if _, err := bufio.NewReader(conn).Read(connack); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("CONNACK return code %d\n", connack[3])
	ev := <-events.C
	fmt.Println(ev.Kind, ev.ClientID)
	// Output:
	// CONNACK return code 0
	// client_connected x
}
