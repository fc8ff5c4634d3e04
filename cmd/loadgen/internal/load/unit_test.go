package load_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/courier-mqtt/courier/cmd/loadgen/internal/load"
)

func TestTracker(t *testing.T) {
	tr := load.Tracker()
	for _, seq := range []uint64{0, 1, 3, 2, 3, 200, 5, 0} {
		tr.Observe(seq)
	}
	u, d, r := tr.Counts()
	if u != 6 || d != 2 || r != 2 { // 2 after 3, 5 after 200
		t.Fatalf("unique %d dups %d reordered %d", u, d, r)
	}
	if got := tr.UniqueBelow(4); got != 4 {
		t.Fatalf("unique below 4: %d", got)
	}
	if got := tr.UniqueBelow(200); got != 5 {
		t.Fatalf("unique below 200: %d", got)
	}
	if got := tr.UniqueBelow(1000); got != 6 {
		t.Fatalf("unique below 1000: %d", got)
	}
}

func TestScrapeMetrics(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, `# HELP go_goroutines Number of goroutines.
# TYPE go_goroutines gauge
go_goroutines 42
process_resident_memory_bytes 1.5e+07
courier_connections{listener="tcp"} 10
courier_connections{listener="ws"} 5
courier_connects_total 99
`)
	}))
	defer ts.Close()
	addr := strings.TrimPrefix(ts.URL, "http://")
	conns, g, mem, err := load.ScrapeMetrics(context.Background(), addr, "")
	if err != nil || conns != 15 || g != 42 || mem != 1.5e7 {
		t.Fatalf("conns %v goroutines %v memory %v err %v", conns, g, mem, err)
	}
	conns, _, _, err = load.ScrapeMetrics(context.Background(), addr, "courier_connects_total")
	if err != nil || conns != 99 {
		t.Fatalf("named metric: %v %v", conns, err)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	cfg := load.DefaultConfig()
	cfg.Scenario = load.PubSub
	cfg.Broker = "foo://x"
	cfg.PayloadSize = 8
	cfg.Duration, cfg.Count = 0, 0
	cfg.Topology = load.Pairs
	cfg.Publishers, cfg.Subscribers = 2, 1
	err := cfg.Validate()
	if !errors.Is(err, load.ErrConfig) {
		t.Fatalf("got %v", err)
	}
	for _, want := range []string{"broker", "payload size", "duration or a count", "pairs"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
	good := load.DefaultConfig()
	if err := good.Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
}

func TestCommandOutage(t *testing.T) {
	if err := load.CommandOutage("true")(context.Background()); err != nil {
		t.Fatalf("true: %v", err)
	}
	if err := load.CommandOutage("exit 3")(context.Background()); err == nil {
		t.Fatal("exit 3: no error")
	}
}
