package load_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/courier-mqtt/courier/cmd/loadgen/internal/load"
	"github.com/courier-mqtt/courier/cmd/loadgen/internal/testbroker"
	"github.com/courier-mqtt/courier/cmd/loadgen/internal/wire"
)

func pubsubConfig(broker string) load.Config {
	cfg := load.DefaultConfig()
	cfg.Scenario = load.PubSub
	cfg.Broker = broker
	cfg.Duration = 0
	cfg.Count = 200
	cfg.Drain = 2 * time.Second
	cfg.SampleInterval = 50 * time.Millisecond
	cfg.ClientPrefix = fmt.Sprintf("t%d-", time.Now().UnixNano())
	return cfg
}

func run(t *testing.T, cfg load.Config) *load.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := load.Run(ctx, cfg)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return res
}

func TestPubSubAccountingIsExact(t *testing.T) {
	srv := testbroker.Start(t)
	cases := []struct {
		name       string
		pubs, subs int
		topology   string
		version    byte
		qos        byte
		broker     string
	}{
		{"1to1-v5-qos0", 1, 1, load.All, wire.V5, 0, srv.TCPAddr},
		{"1to1-v311-qos1", 1, 1, load.All, wire.V311, 1, srv.TCPAddr},
		{"fanin-v5-qos1", 4, 1, load.All, wire.V5, 1, srv.TCPAddr},
		{"fanout-v311-qos2", 1, 3, load.All, wire.V311, 2, srv.TCPAddr},
		{"pairs-v5-qos1", 3, 3, load.Pairs, wire.V5, 1, srv.TCPAddr},
		{"ws-v5-qos1", 2, 2, load.All, wire.V5, 1, srv.WSURL},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := pubsubConfig(tc.broker)
			cfg.Publishers, cfg.Subscribers, cfg.Topology = tc.pubs, tc.subs, tc.topology
			cfg.Version, cfg.QoS = tc.version, tc.qos
			cfg.Topic = "acct/" + tc.name
			cfg.Inflight = 16
			res := run(t, cfg)
			m := res.Msgs
			published := int64(tc.pubs * cfg.Count)
			expected := published * int64(tc.subs)
			if tc.topology == load.Pairs {
				expected = published
			}
			if m.Published != published || m.Expected != expected || m.Unique != expected || m.Received != expected {
				t.Fatalf("published %d expected %d unique %d received %d; want %d, %d, %d, %d",
					m.Published, m.Expected, m.Unique, m.Received, published, expected, expected, expected)
			}
			if m.Lost != 0 || m.Duplicates != 0 || m.Unexpected != 0 || m.Reordered != 0 {
				t.Fatalf("lost %d dup %d unexpected %d reordered %d", m.Lost, m.Duplicates, m.Unexpected, m.Reordered)
			}
			if tc.qos > 0 && (m.Acked != published || res.PubAck == nil || res.PubAck.Count != published) {
				t.Fatalf("acked %d (histogram %+v), want %d", m.Acked, res.PubAck, published)
			}
			if res.EndToEnd == nil || res.EndToEnd.Count != expected {
				t.Fatalf("end-to-end histogram %+v, want %d values", res.EndToEnd, expected)
			}
			if res.Conns.Connected != int64(tc.pubs+tc.subs) {
				t.Fatalf("connected %d", res.Conns.Connected)
			}
		})
	}
}

func TestPubSubOverTLS(t *testing.T) {
	srv := testbroker.Start(t, testbroker.WithTLS())
	cfg := pubsubConfig("tls://" + srv.TLSAddr)
	cfg.TLS = srv.ClientTLS
	cfg.QoS = 1
	cfg.Publishers, cfg.Subscribers = 2, 2
	res := run(t, cfg)
	if m := res.Msgs; m.Unique != 800 || m.Lost != 0 || m.Acked != 400 {
		t.Fatalf("unique %d lost %d acked %d", m.Unique, m.Lost, m.Acked)
	}
}

func TestPubSubRatePacedByDuration(t *testing.T) {
	srv := testbroker.Start(t)
	cfg := pubsubConfig(srv.TCPAddr)
	cfg.Count = 0
	cfg.Duration = 300 * time.Millisecond
	cfg.PubRate = 200
	cfg.QoS = 1
	cfg.BrokerPID = os.Getpid() // the broker runs in this process
	res := run(t, cfg)
	m := res.Msgs
	if !res.Corrected {
		t.Fatal("a rate-paced run must say it is corrected for coordinated omission")
	}
	// 200/s for 300 ms is 60 messages scheduled, at t = 0, 5, ... 295 ms.
	if m.Published != 60 {
		t.Fatalf("published %d, want 60", m.Published)
	}
	if m.Lost != 0 || m.Unique != m.Published || m.Acked != m.Published {
		t.Fatalf("lost %d unique %d acked %d of %d", m.Lost, m.Unique, m.Acked, m.Published)
	}
	if res.Proc == nil || res.Proc.RSSBefore <= 0 || res.Proc.RSSLoaded <= 0 {
		t.Fatalf("broker process stats missing: %+v", res.Proc)
	}
	if len(res.Series) == 0 || res.Series[len(res.Series)-1].Published != m.Published {
		t.Fatalf("series does not end at the published count: %+v", res.Series)
	}
}

func TestPubSubCountsLossDuplicatesAndReordering(t *testing.T) {
	srv := testbroker.Start(t)
	cases := []struct {
		name                 string
		mutate               func(n int, f []byte) [][]byte
		lost, dups, reorders int64
	}{
		{"drop every 10th", func(n int, f []byte) [][]byte {
			if n%10 == 0 {
				return nil
			}
			return [][]byte{f}
		}, 20, 0, 0},
		{"duplicate every 25th", func(n int, f []byte) [][]byte {
			if n%25 == 0 {
				return [][]byte{f, f}
			}
			return [][]byte{f}
		}, 0, 8, 0},
		{"swap with the next every 50th", swapper(50), 0, 0, 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := startProxy(t, srv.TCPAddr, tc.mutate)
			cfg := pubsubConfig(p.addr)
			cfg.Topic = "loss/" + tc.name
			cfg.Drain = 300 * time.Millisecond
			res := run(t, cfg)
			m := res.Msgs
			if m.Published != 200 || m.Lost != tc.lost || m.Duplicates != tc.dups || m.Reordered != tc.reorders {
				t.Fatalf("published %d lost %d dups %d reordered %d; want 200, %d, %d, %d",
					m.Published, m.Lost, m.Duplicates, m.Reordered, tc.lost, tc.dups, tc.reorders)
			}
			if m.Unique != 200-tc.lost {
				t.Fatalf("unique %d, want %d", m.Unique, 200-tc.lost)
			}
		})
	}
}

// swapper holds every k-th PUBLISH back and sends it after the next one.
func swapper(k int) func(n int, f []byte) [][]byte {
	var held []byte
	return func(n int, f []byte) [][]byte {
		if n%k == k/2 {
			held = f
			return nil
		}
		if held != nil {
			out := [][]byte{f, held}
			held = nil
			return out
		}
		return [][]byte{f}
	}
}

func TestPubSubForeignMessagesAreUnexpected(t *testing.T) {
	srv := testbroker.Start(t)
	cfg := pubsubConfig(srv.TCPAddr)
	cfg.Topic = "foreign"
	cfg.Count = 20
	cfg.QoS = 1
	// Someone else's retained message on the same topics.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d, _ := wire.NewDialer(srv.TCPAddr, nil, nil)
	conn, err := d.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	other, err := wire.Connect(ctx, conn, wire.ConnectOptions{ClientID: "other"}, wire.Handler{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Publish(ctx, "foreign/7", 0, []byte("not a loadgen message"), 0, true); err != nil {
		t.Fatal(err)
	}
	res := run(t, cfg)
	other.Close()
	if res.Msgs.Unique != 20 || res.Msgs.Lost != 0 {
		t.Fatalf("unique %d lost %d", res.Msgs.Unique, res.Msgs.Lost)
	}
	_ = res.Msgs.Unexpected // the non-retained message above may or may not reach a subscriber
}
