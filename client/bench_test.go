package client_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"

	"github.com/courier-mqtt/courier/broker/brokertest"
	"github.com/courier-mqtt/courier/client"
)

var benchPayload = make([]byte, 64)

// BenchmarkPublish compares this client with bare autopaho against the same
// in-process broker: sequential publishes (QoS 1 waits for each PUBACK) and
// parallel ones (many goroutines sharing one connection).
func BenchmarkPublish(b *testing.B) {
	srv := brokertest.Start(b, brokertest.WithoutStore())
	for _, qos := range []client.QOSLevel{client.QOSZero, client.QOSOne} {
		name := map[client.QOSLevel]string{client.QOSZero: "qos0", client.QOSOne: "qos1"}[qos]
		b.Run("courier/"+name, func(b *testing.B) {
			c := startClient(b, srv, client.WithClientID("bench-courier-"+name), client.WithCleanSession(true))
			ctx := context.Background()
			b.SetBytes(int64(len(benchPayload)))
			b.ResetTimer()
			for b.Loop() {
				if err := c.Publish(ctx, "bench/"+name, benchPayload, qos); err != nil {
					b.Fatal(err)
				}
			}
			// Barrier: the broker handles a connection's packets in order, so
			// this PUBACK means every QoS 0 message before it was consumed.
			if err := c.Publish(ctx, "bench/"+name, benchPayload, client.QOSOne); err != nil {
				b.Fatal(err)
			}
		})
		b.Run("autopaho/"+name, func(b *testing.B) {
			cm := startAutopaho(b, srv.TCPAddr, "bench-paho-"+name)
			ctx := context.Background()
			b.SetBytes(int64(len(benchPayload)))
			b.ResetTimer()
			for b.Loop() {
				if err := pahoPublish(ctx, cm, name, qos); err != nil {
					b.Fatal(err)
				}
			}
			if _, err := cm.Publish(ctx, &paho.Publish{Topic: "bench/" + name, QoS: 1, Payload: benchPayload}); err != nil {
				b.Fatal(err)
			}
		})
		b.Run("courier-parallel/"+name, func(b *testing.B) {
			c := startClient(b, srv, client.WithClientID("bench-courier-par-"+name), client.WithCleanSession(true))
			b.SetBytes(int64(len(benchPayload)))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := c.Publish(context.Background(), "bench/"+name, benchPayload, qos); err != nil {
						b.Error(err)
						return
					}
				}
			})
			if err := c.Publish(context.Background(), "bench/"+name, benchPayload, client.QOSOne); err != nil {
				b.Fatal(err)
			}
		})
		b.Run("autopaho-parallel/"+name, func(b *testing.B) {
			cm := startAutopaho(b, srv.TCPAddr, "bench-paho-par-"+name)
			b.SetBytes(int64(len(benchPayload)))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := pahoPublish(context.Background(), cm, name, qos); err != nil {
						b.Error(err)
						return
					}
				}
			})
			if _, err := cm.Publish(context.Background(), &paho.Publish{Topic: "bench/" + name, QoS: 1, Payload: benchPayload}); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// pahoPublish is what a careful autopaho user writes: a deadline for QoS 1
// (as client.Publish applies its write timeout), none for QoS 0.
func pahoPublish(ctx context.Context, cm *autopaho.ConnectionManager, name string, qos client.QOSLevel) error {
	p := &paho.Publish{Topic: "bench/" + name, QoS: byte(qos), Payload: benchPayload}
	if qos == client.QOSZero {
		_, err := cm.Publish(ctx, p)
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := cm.Publish(ctx, p)
	return err
}

func startAutopaho(b *testing.B, addr, id string) *autopaho.ConnectionManager {
	b.Helper()
	u, _ := url.Parse("mqtt://" + addr)
	ctx, cancel := context.WithCancel(context.Background())
	cm, err := autopaho.NewConnection(ctx, autopaho.ClientConfig{
		ServerUrls: []*url.URL{u}, KeepAlive: 60, CleanStartOnInitialConnection: true,
		ClientConfig: paho.ClientConfig{ClientID: id},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer dcancel()
		_ = cm.Disconnect(dctx)
		cancel()
	})
	actx, acancel := context.WithTimeout(ctx, 10*time.Second)
	defer acancel()
	if err := cm.AwaitConnection(actx); err != nil {
		b.Fatal(err)
	}
	return cm
}
