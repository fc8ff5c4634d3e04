package store

import (
	"flag"
	"fmt"
	"io/fs"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/mochi-mqtt/server/v2/packets"
)

var longRun = flag.Bool("store.long", false, "run the 1,000,000-message disk-bound test")

// pump publishes n QoS 1 messages from pub to topic with up to window
// unacknowledged, and returns when all are acknowledged.
func pump(tb testing.TB, pub *rawClient, topic string, n, window int, payload []byte) {
	sem := make(chan struct{}, window)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for got := 0; got < n; {
			pk, ok := <-pub.in
			if !ok {
				return
			}
			if pk.FixedHeader.Type == packets.Puback {
				<-sem
				got++
			}
		}
	}()
	pid := uint16(0)
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		pid++
		if pid == 0 {
			pid = 1
		}
		pub.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, TopicName: topic, PacketID: pid, Payload: payload})
	}
	select {
	case <-done:
	case <-time.After(time.Minute):
		tb.Fatal("acks did not arrive")
	}
}

// drain waits until sub has received n PUBLISH packets.
func drain(tb testing.TB, sub *rawClient, n int) {
	deadline := time.After(time.Minute)
	for got := 0; got < n; {
		select {
		case pk, ok := <-sub.in:
			if !ok {
				tb.Fatal("subscriber closed")
			}
			if pk.FixedHeader.Type == packets.Publish {
				got++
			}
		case <-deadline:
			tb.Fatalf("received %d of %d", got, n)
		}
	}
}

func benchPairs(b *testing.B, pairs int, store bool) {
	br := startBroker(b, b.TempDir(), func(c *brokerCfg) { c.noStore = !store })
	payload := make([]byte, 64)
	subs := make([]*rawClient, pairs)
	pubs := make([]*rawClient, pairs)
	for i := range pairs {
		subs[i], _ = dial(b, br.addr, fmt.Sprintf("sub%d", i), connOpt{expiry: 300})
		subs[i].subscribe(1, packets.Subscription{Filter: fmt.Sprintf("bench/%d", i), Qos: 1})
		pubs[i], _ = dial(b, br.addr, fmt.Sprintf("pub%d", i), connOpt{clean: true, noAck: true})
	}
	per := b.N/pairs + 1
	b.SetBytes(int64(len(payload)))
	var ops0 int64
	if store {
		ops0 = br.st.badgerOps.Load()
	}
	cpu0 := cpuTime()
	b.ResetTimer()
	var wg sync.WaitGroup
	for i := range pairs {
		wg.Add(2)
		go func() { defer wg.Done(); pump(b, pubs[i], fmt.Sprintf("bench/%d", i), per, 256, payload) }()
		go func() { defer wg.Done(); drain(b, subs[i], per) }()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(per*pairs)/b.Elapsed().Seconds(), "msg/s")
	// CPU per message (broker, store and the in-process clients): steadier
	// than throughput on a shared machine.
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(per*pairs), "cpu-us/msg")
	if store {
		// Writes that reached Badger while the run lasted (records still
		// held at its end are not counted).
		b.ReportMetric(float64(br.st.badgerOps.Load()-ops0)/float64(per*pairs), "badger-ops/msg")
	}
}

// QoS 1, persistent subscriber online, 64-byte payloads, 256 in flight per
// publisher. Store on: write-ahead + group commit + delete on PUBACK.
func BenchmarkQoS1OneToOneStoreOn(b *testing.B)  { benchPairs(b, 1, true) }
func BenchmarkQoS1OneToOneStoreOff(b *testing.B) { benchPairs(b, 1, false) }
func BenchmarkQoS1TenToTenStoreOn(b *testing.B)  { benchPairs(b, 10, true) }
func BenchmarkQoS1TenToTenStoreOff(b *testing.B) { benchPairs(b, 10, false) }

// BenchmarkStoreBytesPerQueuedMessage queues messages for an offline
// persistent session and reports the stored bytes per message (keys +
// values as Badger accounts them) for a 64-byte payload.
func BenchmarkStoreBytesPerQueuedMessage(b *testing.B) {
	br := startBroker(b, b.TempDir())
	sub, _ := dial(b, br.addr, "offline-subscriber", connOpt{expiry: 3600})
	sub.subscribe(1, packets.Subscription{Filter: "queue/#", Qos: 1})
	sub.disconnect()
	pub, _ := dial(b, br.addr, "pub", connOpt{clean: true, noAck: true})
	n := min(b.N, 60000) // mochi caps a session's inflight at 8192 by default
	n = min(n, 8000)
	b.ResetTimer()
	pump(b, pub, "queue/device-42/temperature", n, 256, make([]byte, 64))
	b.StopTimer()
	if err := br.st.Sync(); err != nil {
		b.Fatal(err)
	}
	var total int64
	count := 0
	_ = br.st.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{kindOutbound}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			total += it.Item().EstimatedSize() + int64(len(it.Item().Key()))
			count++
		}
		return nil
	})
	if count != n {
		b.Fatalf("%d records for %d messages", count, n)
	}
	b.ReportMetric(float64(total)/float64(count), "stored-B/msg")
}

func dirSize(tb testing.TB, dir string) int64 {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			n += info.Size()
		}
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// Issue 3 item 7 (go test -run TestDiskStaysBounded -store.long): one
// million QoS 1 messages through a persistent session, all acknowledged; the
// data directory stays a small multiple of Badger's fixed files.
func TestDiskStaysBounded(t *testing.T) {
	if !*longRun {
		t.Skip("long run: pass -store.long")
	}
	dir := t.TempDir()
	br := startBroker(t, dir, func(c *brokerCfg) { c.opts.GCInterval = 5 * time.Second })
	sub, _ := dial(t, br.addr, "sub", connOpt{expiry: 3600})
	sub.subscribe(1, packets.Subscription{Filter: "disk/#", Qos: 1})
	pub, _ := dial(t, br.addr, "pub", connOpt{clean: true, noAck: true})
	const total, step = 1_000_000, 100_000
	payload := make([]byte, 64)
	start := time.Now()
	for sent := 0; sent < total; sent += step {
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); drain(t, sub, step) }()
		pump(t, pub, "disk/t", step, 256, payload)
		wg.Wait()
		if err := br.st.Sync(); err != nil {
			t.Fatal(err)
		}
		t.Logf("%7d messages: dir %5.1f MiB (wal %5.1f MiB, badger %5.1f MiB), %.0f msg/s",
			sent+step, float64(dirSize(t, dir))/(1<<20), float64(dirSize(t, filepath.Join(dir, "wal")))/(1<<20),
			float64(dirSize(t, filepath.Join(dir, "db")))/(1<<20), float64(sent+step)/time.Since(start).Seconds())
	}
	sub.disconnect()
	pub.disconnect()
	br.stop(t)
	size := dirSize(t, dir)
	t.Logf("after close: data dir %.1f MiB", float64(size)/(1<<20))
	if size > 64<<20 {
		t.Fatalf("data dir %d bytes after %d acknowledged messages", size, total)
	}
}
