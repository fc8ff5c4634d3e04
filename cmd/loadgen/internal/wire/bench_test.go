package wire_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	pahov3 "github.com/eclipse/paho.mqtt.golang"

	"github.com/courier-mqtt/courier/cmd/loadgen/internal/testbroker"
	"github.com/courier-mqtt/courier/cmd/loadgen/internal/wire"
)

// BenchmarkPublishQoS1 compares this codec with paho.golang on the same
// in-process broker: b.N QoS 1 publishes of 64 bytes, all acknowledged. It is
// why loadgen drives brokers with its own codec.
func BenchmarkPublishQoS1(b *testing.B) {
	srv := testbroker.Start(b)
	payload := make([]byte, 64)
	b.Run("wire", func(b *testing.B) {
		ctx := context.Background()
		acked := make(chan struct{})
		n := 0
		c := connect2(b, srv.TCPAddr, wire.Handler{OnAck: func(uint16, int64, byte) {
			n++
			if n == b.N {
				close(acked)
			}
		}})
		defer c.Close()
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			if _, err := c.Publish(ctx, "bench/wire", 1, payload, 0, i%64 == 63); err != nil {
				b.Fatal(err)
			}
		}
		if err := c.Flush(); err != nil {
			b.Fatal(err)
		}
		select {
		case <-acked:
		case <-time.After(time.Minute):
			b.Fatal("acks missing")
		}
	})
	b.Run("paho", func(b *testing.B) {
		ctx := context.Background()
		conn, err := net.Dial("tcp", srv.TCPAddr)
		if err != nil {
			b.Fatal(err)
		}
		c := paho.NewClient(paho.ClientConfig{Conn: conn})
		if _, err := c.Connect(ctx, &paho.Connect{ClientID: "bench-paho", CleanStart: true, KeepAlive: 30}); err != nil {
			b.Fatal(err)
		}
		defer c.Disconnect(&paho.Disconnect{})
		// paho's Publish waits for its PUBACK: run the same window (256) of
		// publishes concurrently.
		const window = 256
		var wg sync.WaitGroup
		work := make(chan struct{}, b.N)
		for range b.N {
			work <- struct{}{}
		}
		close(work)
		b.ReportAllocs()
		b.ResetTimer()
		for range window {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range work {
					if _, err := c.Publish(ctx, &paho.Publish{Topic: "bench/paho", QoS: 1, Payload: payload}); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
	})
}

// BenchmarkPublishQoS1V311 is the same for MQTT 3.1.1: this codec against
// eclipse/paho.mqtt.golang.
func BenchmarkPublishQoS1V311(b *testing.B) {
	srv := testbroker.Start(b)
	payload := make([]byte, 64)
	b.Run("wire", func(b *testing.B) {
		acked := make(chan struct{})
		n := 0
		conn, err := net.Dial("tcp", srv.TCPAddr)
		if err != nil {
			b.Fatal(err)
		}
		c, err := wire.Connect(context.Background(), conn, wire.ConnectOptions{Version: wire.V311, ClientID: "bench-wire3", CleanStart: true},
			wire.Handler{OnAck: func(uint16, int64, byte) {
				if n++; n == b.N {
					close(acked)
				}
			}})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			if _, err := c.Publish(context.Background(), "bench/wire3", 1, payload, 0, i%64 == 63); err != nil {
				b.Fatal(err)
			}
		}
		if err := c.Flush(); err != nil {
			b.Fatal(err)
		}
		select {
		case <-acked:
		case <-time.After(time.Minute):
			b.Fatal("acks missing")
		}
	})
	b.Run("paho.mqtt.golang", func(b *testing.B) {
		opts := pahov3.NewClientOptions().AddBroker("tcp://" + srv.TCPAddr).SetClientID("bench-pahov3").
			SetCleanSession(true).SetAutoReconnect(false).SetProtocolVersion(4)
		c := pahov3.NewClient(opts)
		if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			b.Fatalf("connect: %v", tok.Error())
		}
		defer c.Disconnect(100)
		toks := make([]pahov3.Token, b.N)
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			toks[i] = c.Publish("bench/pahov3", 1, false, payload)
		}
		for _, tok := range toks {
			if !tok.WaitTimeout(time.Minute) || tok.Error() != nil {
				b.Fatalf("publish: %v", tok.Error())
			}
		}
	})
}

func connect2(b *testing.B, addr string, h wire.Handler) *wire.Client {
	b.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	c, err := wire.Connect(context.Background(), conn, wire.ConnectOptions{ClientID: "bench-wire", CleanStart: true}, h)
	if err != nil {
		b.Fatal(err)
	}
	return c
}
