package integration_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/courier-mqtt/courier/broker/brokertest"
	"github.com/courier-mqtt/courier/client"
)

// scaleClients is the number of clients in the scale test.
const scaleClients = 1000

// scaleKey names one message: publisher, QoS, and which of its peers.
type scaleKey struct {
	from, qos, peer int
}

// TestThousandClientsExchangeCrossTrafficWithExactAccounting connects 1,000 of
// our clients to one broker in this process. Each subscribes to its own
// topic, then publishes one message at each QoS to two peers (the next
// client and the one half-way round), 6,000 messages in all. Every receiver
// accounts for every message by publisher, QoS and peer: no QoS 1 or 2
// message is lost, none at QoS 2 (or 0) arrives twice, and nothing arrives
// that was not sent to it.
func TestThousandClientsExchangeCrossTrafficWithExactAccounting(t *testing.T) {
	t.Parallel()
	srv := brokertest.Start(t, brokertest.WithoutStore())
	n := scaleClients
	peers := func(i int) [2]int { return [2]int{(i + 1) % n, (i + n/2) % n} }

	var mu sync.Mutex
	got := make([]map[scaleKey]int, n)
	var stray []string
	allIn := make(chan struct{})
	want := n * 2 * 2 // QoS 1 and 2 messages to wait for
	received := 0
	handlerFor := func(me int) client.MessageHandler {
		return func(_ context.Context, _ client.PubSub, m *client.Message) {
			var k scaleKey
			_, err := fmt.Sscanf(string(m.Payload()), "%d/%d/%d", &k.from, &k.qos, &k.peer)
			mu.Lock()
			defer mu.Unlock()
			if err != nil || peers(k.from)[k.peer] != me || k.qos != int(m.QoS) {
				stray = append(stray, fmt.Sprintf("%d got %q qos %d", me, m.Payload(), m.QoS))
				return
			}
			got[me][k]++
			if k.qos > 0 && got[me][k] == 1 {
				received++
				if received == want {
					close(allIn)
				}
			}
		}
	}

	// Connect and subscribe, 50 at a time.
	clients := make([]*client.Client, n)
	start := time.Now()
	sem := make(chan struct{}, 50)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		got[i] = map[scaleKey]int{}
		c := newClient(t, srv.TCPAddr, client.WithClientID(fmt.Sprintf("scale-%d", i)), client.WithCleanSession(true))
		clients[i] = c
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := c.Start(); err != nil {
				errs <- err
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			defer cancel()
			if err := c.AwaitConnection(ctx); err != nil {
				errs <- fmt.Errorf("client %d: %w", i, err)
				return
			}
			if err := c.Subscribe(ctx, fmt.Sprintf("scale/%d", i), handlerFor(i), client.QOSTwo); err != nil {
				errs <- fmt.Errorf("client %d subscribe: %w", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("%d clients connected and subscribed in %v", n, time.Since(start))

	// Cross traffic: every client publishes QoS 0, 1, 2 to each of its peers.
	start = time.Now()
	pubErrs := make(chan error, n*6)
	for i, c := range clients {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			defer cancel()
			for p, peer := range peers(i) {
				for qos := range 3 {
					payload := fmt.Sprintf("%d/%d/%d", i, qos, p)
					if err := c.Publish(ctx, fmt.Sprintf("scale/%d", peer), payload, client.QOSLevel(qos)); err != nil {
						pubErrs <- fmt.Errorf("client %d publish %s: %w", i, payload, err)
					}
				}
			}
		}()
	}
	wg.Wait()
	close(pubErrs)
	var failed []string
	for err := range pubErrs {
		failed = append(failed, err.Error())
	}
	if len(failed) > 0 {
		t.Errorf("%d publishes failed, e.g. %s", len(failed), strings.Join(failed[:min(3, len(failed))], "; "))
	}
	select {
	case <-allIn:
	case <-time.After(waitFor):
	}
	t.Logf("%d messages published and accounted in %v", n*6, time.Since(start))

	// Stop everyone in parallel rather than one by one in Cleanup; handlers
	// are done once Stop returns.
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Stop()
		}()
	}
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	if len(stray) > 0 {
		t.Errorf("%d misrouted messages, first: %s", len(stray), stray[0])
	}
	var lost []string
	lostQoS0 := 0
	for me := range n {
		for from := range n {
			for p, peer := range peers(from) {
				if peer != me {
					continue
				}
				for qos := range 3 {
					c := got[me][scaleKey{from, qos, p}]
					switch {
					case qos == 0 && c == 0:
						lostQoS0++
					case qos > 0 && c == 0:
						lost = append(lost, fmt.Sprintf("%d->%d qos %d", from, me, qos))
					case qos != 1 && c > 1:
						t.Errorf("%d->%d qos %d delivered %d times", from, me, qos, c)
					}
				}
			}
		}
	}
	if len(lost) > 0 {
		t.Errorf("%d QoS 1/2 messages lost, e.g. %s", len(lost), strings.Join(lost[:min(5, len(lost))], ", "))
	}
	t.Logf("QoS 0 messages lost: %d of %d (allowed)", lostQoS0, n*2)

}
