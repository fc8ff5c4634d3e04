package report_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/courier-mqtt/courier/cmd/loadgen/internal/load"
	"github.com/courier-mqtt/courier/cmd/loadgen/internal/report"
)

func sample() *load.Result {
	lat := &load.Latency{Count: 3, Min: 0.1, P50: 0.2, P99: 0.9, Max: 1,
		Percentiles: []load.PercentilePoint{{Percentile: 50, Millis: 0.2}, {Percentile: 99, Millis: 0.9}}}
	return &load.Result{
		Scenario: load.PubSub, Broker: "tcp://127.0.0.1:1883", Protocol: "5", Started: time.Unix(0, 0), Seconds: 1.5,
		Corrected: true, Stopped: "open-file limit reached",
		Conns:    &load.ConnStats{Target: 2, Attempts: 2, Connected: 2},
		Msgs:     &load.MsgStats{Published: 100, Expected: 100, Unique: 97, Lost: 3, Duplicates: 1},
		EndToEnd: lat, PubAck: lat,
		Series: []load.Sample{{T: 0.5, Published: 50, Received: 49, BrokerGoroutines: -1}, {T: 1, Published: 100, Received: 97, BrokerGoroutines: -1}},
	}
}

func TestTableShowsAccountingAndStopReason(t *testing.T) {
	var b bytes.Buffer
	if err := report.Table(&b, sample()); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"lost", "loss 3.000%", "STOPPED: open-file limit reached", "coordinated omission", "end to end"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if err := report.Table(&b, nil); !errors.Is(err, report.ErrNoResult) {
		t.Fatalf("nil result: %v", err)
	}
}

func TestJSONRoundTrips(t *testing.T) {
	var b bytes.Buffer
	if err := report.JSON(&b, sample()); err != nil {
		t.Fatal(err)
	}
	var got load.Result
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Msgs.Lost != 3 || got.EndToEnd.P99 != 0.9 || len(got.Series) != 2 {
		t.Fatalf("round trip: %+v", got)
	}
}

func TestHTMLHasCharts(t *testing.T) {
	var b bytes.Buffer
	if err := report.HTML(&b, sample()); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"<html", "echarts", "Latency by percentile", "Throughput over time", "end to end", "loss 3.000%"} {
		if !strings.Contains(out, want) {
			t.Errorf("html lacks %q", want)
		}
	}
}
