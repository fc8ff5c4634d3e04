package report

import (
	"fmt"
	"io"
	"strings"

	"github.com/go-echarts/go-echarts/v2/charts"
	"github.com/go-echarts/go-echarts/v2/components"
	"github.com/go-echarts/go-echarts/v2/opts"

	"github.com/courier-mqtt/courier/cmd/loadgen/internal/load"
)

// HTML writes a page with a latency-percentile chart and throughput and
// connections over time. The page loads the ECharts script from go-echarts'
// assets host when opened.
func HTML(w io.Writer, res *load.Result) error {
	if res == nil {
		return ErrNoResult
	}
	title := fmt.Sprintf("loadgen %s: %s", res.Scenario, res.Broker)
	page := components.NewPage()
	page.SetPageTitle(title)
	page.AddCharts(percentileChart(res), throughputChart(res), connectionsChart(res))
	var sb strings.Builder
	if err := Table(&sb, res); err != nil {
		return err
	}
	if err := page.Render(w); err != nil {
		return fmt.Errorf("render html: %w", err)
	}
	_, err := fmt.Fprintf(w, "\n<pre style=\"margin:2em\">%s</pre>\n", htmlEscape(sb.String()))
	return err
}

func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func percentileChart(res *load.Result) *charts.Line {
	line := charts.NewLine()
	line.SetGlobalOptions(
		charts.WithAnimation(false),
		charts.WithInitializationOpts(opts.Initialization{PageTitle: "loadgen", Width: "1100px", Height: "500px"}),
		charts.WithTitleOpts(opts.Title{Title: "Latency by percentile (ms)"}),
		charts.WithTooltipOpts(opts.Tooltip{Trigger: "axis"}),
		charts.WithLegendOpts(opts.Legend{Top: "30px"}),
		charts.WithXAxisOpts(opts.XAxis{Name: "percentile", Type: "category"}),
		charts.WithYAxisOpts(opts.YAxis{Name: "ms", Type: "log"}),
	)
	var x []string
	add := func(name string, l *load.Latency) {
		if l == nil {
			return
		}
		if x == nil {
			for _, p := range l.Percentiles {
				x = append(x, fmt.Sprintf("%g", p.Percentile))
			}
			line.SetXAxis(x)
		}
		data := make([]opts.LineData, len(l.Percentiles))
		for i, p := range l.Percentiles {
			data[i] = opts.LineData{Value: max(p.Millis, 0.001)}
		}
		line.AddSeries(name, data)
	}
	add("connect", res.Connect)
	add("publish->ack", res.PubAck)
	add("end to end", res.EndToEnd)
	if res.Storm != nil {
		add("reconnect", res.Storm.Reconnect)
	}
	return line
}

func rateSeries(res *load.Result, get func(load.Sample) float64) []opts.LineData {
	out := make([]opts.LineData, len(res.Series))
	for i, s := range res.Series {
		var v float64
		if i > 0 {
			p := res.Series[i-1]
			if dt := s.T - p.T; dt > 0 {
				v = (get(s) - get(p)) / dt
			}
		}
		out[i] = opts.LineData{Value: fmt.Sprintf("%.0f", v)}
	}
	return out
}

func timeAxis(res *load.Result) []string {
	x := make([]string, len(res.Series))
	for i, s := range res.Series {
		x[i] = fmt.Sprintf("%.1f", s.T)
	}
	return x
}

func throughputChart(res *load.Result) *charts.Line {
	line := charts.NewLine()
	line.SetGlobalOptions(
		charts.WithAnimation(false),
		charts.WithInitializationOpts(opts.Initialization{Width: "1100px", Height: "400px"}),
		charts.WithTitleOpts(opts.Title{Title: "Throughput over time (per second)"}),
		charts.WithTooltipOpts(opts.Tooltip{Trigger: "axis"}),
		charts.WithLegendOpts(opts.Legend{Top: "30px"}),
		charts.WithXAxisOpts(opts.XAxis{Name: "s", Type: "category"}),
		charts.WithYAxisOpts(opts.YAxis{Name: "per s"}),
	)
	line.SetXAxis(timeAxis(res))
	line.AddSeries("published/s", rateSeries(res, func(s load.Sample) float64 { return float64(s.Published) }))
	line.AddSeries("received/s", rateSeries(res, func(s load.Sample) float64 { return float64(s.Received) }))
	line.AddSeries("connects/s", rateSeries(res, func(s load.Sample) float64 { return float64(s.Connects) }))
	return line
}

func connectionsChart(res *load.Result) *charts.Line {
	line := charts.NewLine()
	line.SetGlobalOptions(
		charts.WithAnimation(false),
		charts.WithInitializationOpts(opts.Initialization{Width: "1100px", Height: "400px"}),
		charts.WithTitleOpts(opts.Title{Title: "Connections over time"}),
		charts.WithTooltipOpts(opts.Tooltip{Trigger: "axis"}),
		charts.WithLegendOpts(opts.Legend{Top: "30px"}),
		charts.WithXAxisOpts(opts.XAxis{Name: "s", Type: "category"}),
	)
	line.SetXAxis(timeAxis(res))
	conn := make([]opts.LineData, len(res.Series))
	errs := make([]opts.LineData, len(res.Series))
	broker := make([]opts.LineData, len(res.Series))
	hasBroker := false
	for i, s := range res.Series {
		conn[i] = opts.LineData{Value: s.Connected}
		errs[i] = opts.LineData{Value: s.ConnErrors}
		if s.BrokerConns >= 0 {
			broker[i] = opts.LineData{Value: s.BrokerConns}
			hasBroker = true
		} else {
			broker[i] = opts.LineData{Value: "-"} // ECharts: no point
		}
	}
	line.AddSeries("connected (loadgen)", conn)
	line.AddSeries("connect errors (cumulative)", errs)
	if hasBroker {
		line.AddSeries("connections (broker /metrics)", broker)
	}
	return line
}
