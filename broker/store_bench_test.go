package broker_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/courier-mqtt/courier/broker/brokertest"
	"github.com/eclipse/paho.golang/paho"
)

// benchBroker measures QoS 1 throughput through the real broker: pairs of
// paho.golang publishers and persistent subscribers (session expiry set, so
// the store keeps their queues), 64-byte payloads, each publisher keeping
// 64 publishes in flight.
func benchBroker(b *testing.B, pairs int, withStore bool) {
	var opts []brokertest.Option
	if !withStore {
		opts = append(opts, brokertest.WithoutStore())
	}
	srv := brokertest.Start(b, opts...)
	per := b.N/pairs + 1
	var received atomic.Int64
	done := make(chan struct{})
	total := int64(per * pairs)
	pubs := make([]*stV5, pairs)
	stop := make(chan struct{})
	var counters sync.WaitGroup
	defer func() { close(stop); counters.Wait() }()
	for i := range pairs {
		sub, _ := stDialV5(b, srv.TCPAddr, fmt.Sprintf("bench-sub-%d", i), false, 600)
		sub.subscribe(b, fmt.Sprintf("bench/%d", i), 1)
		counters.Add(1)
		go func() {
			defer counters.Done()
			for {
				select {
				case <-sub.msgs:
					if received.Add(1) == total {
						close(done)
					}
				case <-stop:
					return
				}
			}
		}()
		pubs[i], _ = stDialV5(b, srv.TCPAddr, fmt.Sprintf("bench-pub-%d", i), true, 0)
	}
	payload := make([]byte, 64)
	b.SetBytes(int64(len(payload)))
	b.ResetTimer()
	var wg sync.WaitGroup
	for i := range pairs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var inflight sync.WaitGroup
			sem := make(chan struct{}, 64)
			for range per {
				sem <- struct{}{}
				inflight.Add(1)
				go func() {
					defer inflight.Done()
					defer func() { <-sem }()
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					defer cancel()
					if _, err := pubs[i].c.Publish(ctx, &paho.Publish{Topic: fmt.Sprintf("bench/%d", i), QoS: 1, Payload: payload}); err != nil {
						b.Error(err)
					}
				}()
			}
			inflight.Wait()
		}()
	}
	wg.Wait()
	select {
	case <-done:
	case <-time.After(time.Minute):
		b.Fatalf("received %d of %d", received.Load(), total)
	}
	b.StopTimer()
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "msg/s")
}

func BenchmarkBrokerQoS1OneToOneStoreOn(b *testing.B)  { benchBroker(b, 1, true) }
func BenchmarkBrokerQoS1OneToOneStoreOff(b *testing.B) { benchBroker(b, 1, false) }
func BenchmarkBrokerQoS1TenToTenStoreOn(b *testing.B)  { benchBroker(b, 10, true) }
func BenchmarkBrokerQoS1TenToTenStoreOff(b *testing.B) { benchBroker(b, 10, false) }
