package report

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/courier-mqtt/courier/cmd/loadgen/internal/load"
)

// JSON writes res as indented JSON.
func JSON(w io.Writer, res *load.Result) error {
	if res == nil {
		return ErrNoResult
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}

// Table writes a human summary of res.
func Table(w io.Writer, res *load.Result) error {
	if res == nil {
		return ErrNoResult
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	p := func(format string, a ...any) { fmt.Fprintf(tw, format, a...) }
	fmt.Fprintf(w, "loadgen %s against %s (MQTT %s), %.1f s\n", res.Scenario, res.Broker, res.Protocol, res.Seconds)
	fmt.Fprintf(w, "  %s\n", strings.Join(res.Params, "  "))
	if res.Corrected {
		fmt.Fprintln(w, "  latencies are measured from the scheduled time (corrected for coordinated omission)")
	}
	if c := res.Conns; c != nil {
		p("\nconnections\ttarget\tattempts\tconnected\tpeak\tauth err\trefused\tdial err\ttimeouts\ttoken err\tdropped\tchurned\tconnects/s\t\n")
		p("\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%.0f\t\n", c.Target, c.Attempts, c.Connected, c.Peak,
			c.AuthErrors, c.Refused, c.DialErrors, c.Timeouts, c.TokenErrors, c.Dropped, c.Churned, c.ConnectRate)
	}
	var drops string
	if c := res.Conns; c != nil && len(c.DropReasons) > 0 {
		reasons := make([]string, 0, len(c.DropReasons))
		for k, v := range c.DropReasons {
			reasons = append(reasons, fmt.Sprintf("%s: %d", k, v))
		}
		sort.Strings(reasons)
		drops = strings.Join(reasons, ", ")
	}
	if m := res.Msgs; m != nil {
		p("\nmessages\tpublished\tacked\tack fail\texpected\tunique\tlost\tduplicates\treordered\tunexpected\tpublished/s\treceived/s\tdelivered/s\t\n")
		p("\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%.0f\t%.0f\t%.0f\t\n", m.Published, m.Acked, m.AckFailed, m.Expected,
			m.Unique, m.Lost, m.Duplicates, m.Reordered, m.Unexpected, m.PubRate, m.RecvRate, m.DeliveredRate)
		if m.Expected > 0 {
			p("\tloss %.3f%%\t\t\t\t\t\t\t\t\t\t\t\t\n", 100*float64(m.Lost)/float64(m.Expected))
		}
	}
	if s := res.Storm; s != nil {
		back := "never"
		if s.AllBackSecs >= 0 {
			back = fmt.Sprintf("%.2f s", s.AllBackSecs)
		}
		p("\nstorm\tdropped\trecovered\tnot back\tall back after\tattempts\tauth err\tother err\tpeak connects/s\t\n")
		p("\t%d\t%d\t%d\t%s\t%d\t%d\t%d\t%.0f\t\n", s.Dropped, s.Recovered, s.NotBack, back, s.Attempts, s.AuthErrors, s.OtherErrors, s.PeakRate)
	}
	lat := []struct {
		name string
		l    *load.Latency
	}{
		{"connect", res.Connect}, {"connect (service)", res.ConnectService},
		{"publish->ack", res.PubAck}, {"end to end", res.EndToEnd}, {"end to end (service)", res.EndToEndSvc},
	}
	if res.Storm != nil {
		lat = append(lat, struct {
			name string
			l    *load.Latency
		}{"reconnect", res.Storm.Reconnect})
	}
	header := false
	for _, x := range lat {
		if x.l == nil {
			continue
		}
		if !header {
			p("\nlatency ms\tcount\tmin\tp50\tp90\tp99\tp99.9\tp99.99\tmax\t\n")
			header = true
		}
		l := x.l
		p("%s\t%d\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t\n", x.name, l.Count, l.Min, l.P50, l.P90, l.P99, l.P999, l.P9999, l.Max)
	}
	if b := res.Proc; b != nil {
		p("\nbroker pid %d\tcpu s\tcpu us/msg\trss before MB\trss loaded MB\trss/conn KB\t\n", b.PID)
		p("\t%.2f\t%s\t%.1f\t%.1f\t%s\t\n", b.CPUSeconds, orDash(b.CPUPerMsgUs, "%.2f"), float64(b.RSSBefore)/1e6, float64(b.RSSLoaded)/1e6, orDash(b.RSSPerConnB/1e3, "%.2f"))
	}
	if n := len(res.Series); n > 0 && res.Series[n-1].BrokerGoroutines >= 0 {
		last := res.Series[n-1]
		p("\nbroker /metrics\tconnections\tgoroutines\tmemory MB\t\n")
		p("\t%.0f\t%.0f\t%.1f\t\n", last.BrokerConns, last.BrokerGoroutines, last.BrokerMemory/1e6)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if drops != "" {
		fmt.Fprintf(w, "\ndropped connections by reason: %s\n", drops)
	}
	if res.Stopped != "" {
		fmt.Fprintf(w, "\nSTOPPED: %s\n", res.Stopped)
	}
	return nil
}

func orDash(v float64, format string) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf(format, v)
}

// Line is the one-line live status for a terminal.
func Line(p load.Progress) string {
	s := fmt.Sprintf("%6.1fs %-8s conns %d/%d", p.Elapsed.Seconds(), p.Phase, p.Connected, p.Target)
	if p.ConnErrors > 0 {
		s += fmt.Sprintf(" errors %d", p.ConnErrors)
	}
	if p.Published > 0 || p.Received > 0 {
		s += fmt.Sprintf("  pub %d (%.0f/s)  recv %d (%.0f/s)", p.Published, p.PubRate, p.Received, p.RecvRate)
	}
	return s
}
